export { connectionExecutor } from './engine-database.js';
export {
  collectJobDefinitions,
  defineJob,
  JOB_QUEUES,
  type JobBackoff,
  type JobContext,
  type JobDeclaringModule,
  type JobDefinition,
  type JobQueue,
  MIN_POSTPONE_MS,
  postponeJob,
  postponementOf,
  type RunningJob,
} from './job-definition.js';
export { createJobEngine, type JobEngine, type JobEngineOptions } from './job-engine.js';
export { keyedJobId } from './job-rows.js';
export { jobErrors } from './jobs.errors.js';
export type { Enqueued, EnqueueOptions, JobExecutor, Jobs, JobToEnqueue } from './jobs.js';
export {
  JOB_STATES,
  JOBS_SCHEMA,
  type JobListFilter,
  type JobQueueCounts,
  type JobRecord,
  type JobState,
} from './jobs.store.js';
