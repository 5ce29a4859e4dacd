/**
 * Child process: the jobs workload through Socle's API (`defineModule({ jobs })`, `jobs.enqueueMany`
 * for the batch, `jobs.enqueue` for single jobs).
 */
import { createSilentLogger, createSocle, defineJob, defineModule } from 'socle';
import { benchSocleConfig } from '../shared/socle-setup.js';
import { BATCH_SIZE, FETCH_LOOPS, handlerHooks, runJobsChild } from './workload.js';

runJobsChild(async (settings) => {
  const module = defineModule({
    name: 'bench_jobs',
    jobs: {
      noop: defineJob({
        async handler() {
          handlerHooks.onStart();
        },
      }),
    },
  });
  const config = benchSocleConfig(settings, {
    jobsQueues: ['default'],
    jobsBatchSize: BATCH_SIZE,
    jobsConcurrency: FETCH_LOOPS,
    jobsPollIntervalMs: 1000,
  });
  const socle = await createSocle({
    config,
    modules: [module],
    log: createSilentLogger(),
    ...(settings.dialect === 'pglite' ? { inMemory: true } : {}),
  });
  const { db, jobs } = socle;
  return {
    async enqueueBatch(count) {
      await db.transaction(async (trx) => {
        await jobs.enqueueMany(
          trx,
          'bench_jobs.noop',
          Array.from({ length: count }, () => ({ payload: {} })),
        );
      });
    },
    async enqueueEach(count) {
      await db.transaction(async (trx) => {
        for (let index = 0; index < count; index++) await jobs.enqueue(trx, 'bench_jobs.noop', {});
      });
    },
    async enqueueOne() {
      await jobs.enqueue(db.kysely, 'bench_jobs.noop', {});
    },
    async close() {
      await socle.close();
    },
  };
});
