import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import type { AccountService } from './accounts.service.js';
import { requireUser } from './authentication.hooks.js';
import { clientOf, Tokens } from './sessions.routes.js';

/** A user as the API shows it. */
export const User = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  emailVerified: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
});
/** An email address in a request body (normalized by the service). */
export const Email = Type.String({ minLength: 3, maxLength: 254, examples: ['ada@example.com'] });
/** A password in a request body (the policy is checked by the service). */
export const Password = Type.String({ minLength: 1, maxLength: 1024 });

/** Sign-up, sign-in and the signed-in user. */
export function registerAccountRoutes(app: HttpServer, accounts: AccountService): void {
  const tags = ['identity'];

  app.post(
    '/auth/sign-up',
    {
      schema: {
        tags,
        summary: 'Create an account with email and password, and sign in',
        body: Type.Object(
          { email: Email, password: Password, name: Type.Optional(Type.String({ maxLength: 200 })) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ user: User, tokens: Tokens }) },
      },
    },
    async (request, reply) => reply.code(201).send(await accounts.signUp(request.body, clientOf(request))),
  );

  app.post(
    '/auth/sign-in',
    {
      schema: {
        tags,
        summary: 'Sign in with email and password',
        description:
          'With two-factor authentication on, a correct password answers 401 `auth.mfa_required` with an `mfaToken` member: send it with a code to POST /auth/sign-in/mfa.',
        body: Type.Object({ email: Email, password: Password }, { additionalProperties: false }),
        response: { 200: Tokens },
      },
    },
    async (request) => accounts.signIn(request.body, clientOf(request)),
  );

  app.get(
    '/me',
    {
      schema: { tags, security: routeSecurity.user, summary: 'The signed-in user', response: { 200: User } },
    },
    async (request) => accounts.me(requireUser(request).userId),
  );
}
