import type { FastifyRequest } from 'fastify';
import {
  defineJob,
  defineModule,
  defineSettings,
  type ModuleDefinition,
  type SettingValues,
  setting,
} from '../../kernel/index.js';
import { purgeEffectsOlderThan } from './effects.store.js';
import { operatorCheck, registerOperatorJobRoutes, registerOrgJobRoutes } from './jobs.routes.js';

/** The jobs module's settings (the engine's own, JOBS_*, are the kernel's). */
export const jobsSettings = defineSettings({
  operatorToken: setting.secret({
    env: 'OPERATOR_TOKEN',
    description: 'Token of the operator API (/operator/jobs, X-Operator-Token header); unset disables it',
    minLength: 32,
  }),
});

export type JobsSettings = SettingValues<typeof jobsSettings>;

/** What the jobs module gives other modules: the operator check, for their own operator routes. */
export interface JobsServices {
  /**
   * Throws unless the request carries `OPERATOR_TOKEN` in `X-Operator-Token` (404
   * `jobs.operator_api_disabled` without the setting, 401 `jobs.not_operator` otherwise).
   */
  requireOperator(request: FastifyRequest): void;
}

/** As long as the engine keeps finished jobs (30 days), plus a margin. */
const EFFECTS_KEPT_DAYS = 31;

const ENGINE_TABLE =
  "the job engine's (pg-boss) own table; only the kernel's job engine reads it, filtering every admin read by the job's tenant";

/**
 * The jobs module: owns the `jobs` schema where the kernel's job engine (pg-boss) keeps its
 * tables, and serves the admin API: `/org/jobs` (an organization's admins see only its jobs) and
 * `/operator/jobs` (every job, with `OPERATOR_TOKEN`).
 *
 * Job rows hold tenant payloads without row-level security: pg-boss's fetch must see every
 * tenant's jobs. Isolation is the engine's: tenant reads filter by the tenant the job carries,
 * handlers run in that tenant's scope (so their own transactions are under RLS), and the
 * application role reaches these tables only through the engine.
 */
export function createJobsModule(): ModuleDefinition<unknown, JobsServices, JobsSettings> {
  return defineModule({
    name: 'jobs',
    dependsOn: ['tenancy'],
    settings: jobsSettings,
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
    setup: ({ settings }) => ({ requireOperator: operatorCheck(settings.operatorToken) }),
    routes(app, { jobs, services }) {
      registerOrgJobRoutes(app, jobs);
      registerOperatorJobRoutes(app, jobs, services.requireOperator);
    },
  });
}
