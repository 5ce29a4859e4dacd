import { defineJob, defineModule, type ModuleDefinition } from '../../kernel/index.js';
import { purgeEffectsOlderThan } from './effects.store.js';
import { registerOperatorJobRoutes, registerOrgJobRoutes } from './jobs.routes.js';

/** As long as the engine keeps finished jobs (30 days), plus a margin. */
const EFFECTS_KEPT_DAYS = 31;

const ENGINE_TABLE =
  "the job engine's (pg-boss) own table; only the kernel's job engine reads it, filtering every admin read by the job's tenant";

/**
 * The jobs module: owns the `jobs` schema where the kernel's job engine (pg-boss) keeps its
 * tables, and serves the admin API: `/org/jobs` (an organization's admins see only its jobs) and
 * `/operator/jobs` (every job, with the identity module's `OPERATOR_TOKEN`).
 *
 * Job rows hold tenant payloads without row-level security: pg-boss's fetch must see every
 * tenant's jobs. Isolation is the engine's: tenant reads filter by the tenant the job carries,
 * handlers run in that tenant's scope (so their own transactions are under RLS), and the
 * application role reaches these tables only through the engine.
 */
export function createJobsModule(): ModuleDefinition {
  return defineModule({
    name: 'jobs',
    dependsOn: ['identity', 'tenancy'],
    globalTables: {
      job: ENGINE_TABLE,
      job_common: ENGINE_TABLE,
      queue: ENGINE_TABLE,
      schedule: ENGINE_TABLE,
      subscription: ENGINE_TABLE,
      version: ENGINE_TABLE,
      bam: ENGINE_TABLE,
      warning: ENGINE_TABLE,
      queue_stats: ENGINE_TABLE,
      job_dependency: ENGINE_TABLE,
      instance: ENGINE_TABLE,
      effects:
        'keys of job effects already applied (job ids), no tenant data: a handler checks it inside its own tenant transaction',
    },
    jobs: {
      // Finished jobs are deleted after 30 days; a marker outliving its job protects nothing.
      purgeEffects: defineJob({
        cron: '17 3 * * *',
        queue: 'low',
        async handler({ db, log }) {
          const purged = await purgeEffectsOlderThan(db, EFFECTS_KEPT_DAYS);
          if (purged > 0) log.info({ purged }, 'Purged old job effect markers');
        },
      }),
    },
    routes(app, { jobs }) {
      registerOrgJobRoutes(app, jobs);
      registerOperatorJobRoutes(app, jobs);
    },
  });
}
