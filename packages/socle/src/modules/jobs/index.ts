/** The jobs module: the job engine's schema and its admin API. Jobs themselves: `socle` exports. */
export { createJobsModule, type JobsServices, type JobsSettings, jobsSettings } from './jobs.module.js';
