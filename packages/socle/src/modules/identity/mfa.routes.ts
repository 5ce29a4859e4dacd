import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { requireUser } from './authentication.hooks.js';
import type { MfaService } from './mfa.service.js';
import { clientOf, Tokens } from './sessions.routes.js';

/** A TOTP code (`123456`, spaces allowed) or a recovery code (`7k2m-q9xd-4hfn`). */
const Code = Type.String({ minLength: 1, maxLength: 64, examples: ['123456', '7k2m-q9xd-4hfn'] });
const CodeBody = Type.Object({ code: Code }, { additionalProperties: false });
const RecoveryCodes = Type.Object({
  recoveryCodes: Type.Array(Type.String(), {
    minItems: 10,
    maxItems: 10,
    description: 'Single-use codes that replace the authenticator app; shown this once',
  }),
});

export interface MfaRouteServices {
  readonly mfa: MfaService;
}

/** TOTP enrolment, confirmation and removal, recovery codes, and the second step of sign-in. */
export function registerMfaRoutes(app: HttpServer, services: MfaRouteServices): void {
  const { mfa } = services;
  const tags = ['identity'];

  app.post(
    '/auth/mfa/totp/enroll',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Start (or restart) enrolling an authenticator app',
        description:
          'Returns a new TOTP secret, its otpauth URI and a QR code. Two-factor authentication is on only after POST /auth/mfa/totp/confirm.',
        response: {
          200: Type.Object({
            secret: Type.String({ description: 'Base32 secret, for entering by hand' }),
            otpauthUri: Type.String(),
            qrCodeDataUrl: Type.String({ description: 'PNG data URL of the otpauth URI' }),
          }),
        },
      },
    },
    async (request) => mfa.enroll(requireUser(request).userId),
  );

  app.post(
    '/auth/mfa/totp/confirm',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Turn two-factor authentication on with a first code from the app',
        description:
          'Signs out every other session of the user (they were opened with the password alone); the calling session stays.',
        body: CodeBody,
        response: {
          200: Type.Object({
            ...RecoveryCodes.properties,
            otherSessionsRevoked: Type.Integer({ minimum: 0, description: 'Other sessions signed out' }),
          }),
        },
      },
    },
    async (request) => {
      const { userId, sessionId } = requireUser(request);
      return mfa.confirm(userId, request.body.code, sessionId);
    },
  );

  app.post(
    '/auth/mfa/totp/disable',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Turn two-factor authentication off (needs a code or a recovery code)',
        body: CodeBody,
      },
    },
    async (request, reply) => {
      await mfa.disable(requireUser(request).userId, request.body.code);
      return reply.code(204).send();
    },
  );

  app.post(
    '/auth/mfa/recovery-codes',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Replace all recovery codes with new ones (needs a code or a recovery code)',
        body: CodeBody,
        response: { 200: RecoveryCodes },
      },
    },
    async (request) => mfa.regenerateRecoveryCodes(requireUser(request).userId, request.body.code),
  );

  app.post(
    '/auth/sign-in/mfa',
    {
      schema: {
        tags,
        summary: 'Finish signing in with the mfaToken of auth.mfa_required and a code',
        body: Type.Object(
          { mfaToken: Type.String({ minLength: 1, maxLength: 200 }), code: Code },
          { additionalProperties: false },
        ),
        response: { 200: Tokens },
      },
    },
    async (request) => mfa.completeSignIn(request.body.mfaToken, request.body.code, clientOf(request)),
  );
}
