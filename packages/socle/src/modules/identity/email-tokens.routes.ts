import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { Email, Password, User } from './accounts.routes.js';
import { requireUser } from './authentication.hooks.js';
import type { EmailTokenService } from './email-tokens.service.js';
import { clientOf, Tokens } from './sessions.routes.js';

const Token = Type.String({ minLength: 1, maxLength: 200, examples: ['ev_3q2x…'] });
const Accepted = Type.Object({ message: Type.String() });

/** The answer to every password reset request: the same whether or not the account exists. */
const PASSWORD_RESET_ACCEPTED = {
  message: 'If an account uses this email address, a message to reset its password is on its way.',
} as const;

export interface EmailTokenRouteServices {
  readonly emailTokens: EmailTokenService;
}

/** Email verification and password reset by mailed single-use tokens. */
export function registerEmailTokenRoutes(app: HttpServer, services: EmailTokenRouteServices): void {
  const { emailTokens } = services;
  const tags = ['identity'];

  app.post(
    '/auth/email-verification',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Send the signed-in user a new email verification mail',
        description:
          'The previous verification mail stops working. Answers 409 `auth.email_already_verified` once the address is verified.',
        response: { 202: Accepted },
      },
    },
    async (request, reply) => {
      await emailTokens.requestVerification(requireUser(request).userId);
      return reply.code(202).send({ message: 'A verification message is on its way.' });
    },
  );

  app.post(
    '/auth/email-verification/confirm',
    {
      schema: {
        tags,
        summary: 'Verify an email address with the token of its verification mail',
        body: Type.Object({ token: Token }, { additionalProperties: false }),
        response: { 200: User },
      },
    },
    async (request) => emailTokens.confirmVerification(request.body.token),
  );

  app.post(
    '/auth/password-reset',
    {
      schema: {
        tags,
        summary: 'Mail a password reset token to an account',
        description:
          'Answers 202 with the same body whether or not an account uses the address, so it does not reveal who has an account.',
        body: Type.Object({ email: Email }, { additionalProperties: false }),
        response: { 202: Accepted },
      },
    },
    async (request, reply) => {
      await emailTokens.requestPasswordReset(request.body.email);
      return reply.code(202).send(PASSWORD_RESET_ACCEPTED);
    },
  );

  app.post(
    '/auth/password-reset/confirm',
    {
      schema: {
        tags,
        summary: 'Set a new password with a reset token, sign out everywhere and sign in',
        description:
          'Every existing session of the account is revoked. With two-factor authentication on, answers 401 `auth.mfa_required` with an `mfaToken` like a sign-in: finish with POST /auth/sign-in/mfa.',
        body: Type.Object({ token: Token, password: Password }, { additionalProperties: false }),
        response: { 200: Tokens },
      },
    },
    async (request) =>
      emailTokens.confirmPasswordReset(request.body.token, request.body.password, clientOf(request)),
  );
}
