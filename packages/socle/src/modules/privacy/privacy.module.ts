import { Type } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { defineModule, routeSecurity } from '../../kernel/index.js';
import { ReauthenticationFields, requireOperator, requireUser } from '../identity/index.js';
import { createPrivacyService } from './privacy.service.js';

const UserParams = Type.Object({ userId: Type.String({ format: 'uuid' }) });
const ErasureResult = Type.Object({
  runId: Type.String({ format: 'uuid' }),
  erasedModules: Type.Array(Type.String()),
});

/**
 * GDPR export (`GET /me/export`, `socle privacy export`) and erasure (`POST /me/erase` after
 * re-authentication, `socle privacy erase`); for operators, of any account
 * (`POST /operator/users/:userId/export` and `/erase`, the latter confirmed by the account's email).
 */
export function createPrivacyModule() {
  return defineModule({
    name: 'privacy',
    // An erasure run is about a person across every organization: stays on the primary with SHARDS.
    placement: 'primary',
    dependsOn: ['identity'],
    migrations: new URL('./migrations/', import.meta.url),
    globalTables: { erasure_runs: 'an erasure is about a person across every organization they belong to' },
    setup: (context) => ({ privacy: createPrivacyService(context) }),
    routes(app, { services: { privacy } }) {
      app.get(
        '/me/export',
        {
          schema: {
            tags: ['privacy'],
            security: routeSecurity.user,
            summary: 'Everything Socle holds about you, as one JSON archive (GDPR art. 15, 20)',
          },
        },
        async (request, reply) => {
          const { userId } = requireUser(request);
          return sendArchive(reply, userId, await privacy.export(await privacy.findSubject(userId)));
        },
      );

      app.post(
        '/me/erase',
        {
          schema: {
            tags: ['privacy'],
            security: routeSecurity.user,
            summary: 'Erase your account and everything about you (GDPR art. 17)',
            description:
              'Needs the password, and a TOTP or recovery code when two-factor authentication is on. Every module deletes or pseudonymizes what it holds about you; the account and its sessions are gone afterwards. Irreversible.',
            body: Type.Object(ReauthenticationFields, { additionalProperties: false }),
            response: { 200: ErasureResult },
          },
        },
        async (request) => {
          const { userId } = requireUser(request);
          await request.confirmIdentity(request.body);
          const result = await privacy.erase(await privacy.findSubject(userId));
          return { runId: result.runId, erasedModules: [...result.erasedNow] };
        },
      );

      // An operator reading someone's data leaves a trace: a POST, so the audit log records it.
      app.post(
        '/operator/users/:userId/export',
        {
          schema: {
            tags: ['privacy'],
            security: routeSecurity.operator,
            summary: 'Everything Socle holds about an account, as one JSON archive (operator token; audited)',
            params: UserParams,
          },
        },
        async (request, reply) => {
          requireOperator(request);
          const { userId } = request.params;
          return sendArchive(reply, userId, await privacy.export(await privacy.findSubject(userId)));
        },
      );

      app.post(
        '/operator/users/:userId/erase',
        {
          schema: {
            tags: ['privacy'],
            security: routeSecurity.operator,
            summary: 'Erase an account and everything about it (operator token; GDPR art. 17)',
            description:
              "Confirmed by the account's email typed again (`confirmEmail`): an operator erasing the wrong person gets 400 `privacy.confirmation_mismatch`. The person's sessions and tokens stop working, then every module deletes or pseudonymizes what it holds. Irreversible; audited.",
            params: UserParams,
            body: Type.Object(
              { confirmEmail: Type.String({ minLength: 1, maxLength: 254 }) },
              { additionalProperties: false },
            ),
            response: { 200: ErasureResult },
          },
        },
        async (request) => {
          requireOperator(request);
          const result = await privacy.eraseConfirmed(request.params.userId, request.body.confirmEmail);
          return { runId: result.runId, erasedModules: [...result.erasedNow] };
        },
      );
    },
  });
}

/** A person's export as a download that no cache keeps. */
function sendArchive(reply: FastifyReply, userId: string, archive: unknown) {
  return reply
    .header('content-disposition', `attachment; filename="socle-export-${userId}.json"`)
    .header('cache-control', 'no-store')
    .send(archive);
}
