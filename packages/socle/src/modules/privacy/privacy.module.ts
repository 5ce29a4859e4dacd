import { Type } from '@fastify/type-provider-typebox';
import { defineModule, routeSecurity } from '../../kernel/index.js';
import { ReauthenticationFields, requireUser } from '../identity/index.js';
import { createPrivacyService } from './privacy.service.js';

/**
 * GDPR export (`GET /me/export`, `socle privacy export`) and erasure (`POST /me/erase` after
 * re-authentication, `socle privacy erase`).
 */
export function createPrivacyModule() {
  return defineModule({
    name: 'privacy',
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
          const archive = await privacy.export(await privacy.findSubject(userId));
          return reply
            .header('content-disposition', `attachment; filename="socle-export-${userId}.json"`)
            .header('cache-control', 'no-store')
            .send(archive);
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
            response: {
              200: Type.Object({
                runId: Type.String({ format: 'uuid' }),
                erasedModules: Type.Array(Type.String()),
              }),
            },
          },
        },
        async (request) => {
          const { userId } = requireUser(request);
          await request.confirmIdentity(request.body);
          const result = await privacy.erase(await privacy.findSubject(userId));
          return { runId: result.runId, erasedModules: [...result.erasedNow] };
        },
      );
    },
  });
}
