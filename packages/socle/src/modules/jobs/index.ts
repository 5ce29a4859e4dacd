/** The jobs module: the job engine's schema and its admin API. Jobs themselves: `socle` exports. */
export { createJobsModule } from './jobs.module.js';
