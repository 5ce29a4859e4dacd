export {
  defineJob,
  JOB_QUEUES,
  type JobBackoff,
  type JobContext,
  type JobDefinition,
  type JobQueue,
  type RunningJob,
} from './job-definition.js';
export {
  collectJobDefinitions,
  createJobEngine,
  type Enqueued,
  type EnqueueOptions,
  type JobEngine,
  type JobEngineOptions,
  type JobExecutor,
  type Jobs,
  type JobToEnqueue,
  keyedJobId,
} from './job-engine.js';
export { jobErrors } from './jobs.errors.js';
export { JOB_STATES, JOBS_SCHEMA, type JobListFilter, type JobRecord, type JobState } from './jobs.store.js';
