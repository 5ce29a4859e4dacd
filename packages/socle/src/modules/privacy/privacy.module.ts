import { defineModule, type ModuleContext } from '../../kernel/modules/index.js';
import { requireUser } from '../identity/index.js';
import { createPrivacyService, type PrivacyService } from './privacy.service.js';

/** GDPR export (`GET /me/export`, `socle privacy export`) and erasure (`socle privacy erase`). */
export function createPrivacyModule() {
  let service: PrivacyService | undefined;
  const serviceOf = (context: ModuleContext) => {
    service ??= createPrivacyService(context);
    return service;
  };
  return defineModule({
    name: 'privacy',
    dependsOn: ['identity'],
    migrations: new URL('./migrations/', import.meta.url),
    globalTables: { erasure_runs: 'an erasure is about a person across every organization they belong to' },
    routes(app, context) {
      app.get(
        '/me/export',
        {
          schema: {
            tags: ['privacy'],
            summary: 'Everything Socle holds about you, as one JSON archive (GDPR art. 15, 20)',
          },
        },
        async (request, reply) => {
          const { userId } = requireUser(request);
          const privacy = serviceOf(context);
          const archive = await privacy.export(await privacy.findSubject(userId));
          return reply
            .header('content-disposition', `attachment; filename="socle-export-${userId}.json"`)
            .header('cache-control', 'no-store')
            .send(archive);
        },
      );
    },
  });
}
