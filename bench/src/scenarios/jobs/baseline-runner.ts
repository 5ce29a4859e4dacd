/**
 * Child process: the same jobs workload on pg-boss used directly, as its documentation shows:
 * `insert` (a batch in one statement) or `send` (one job) with the `db` option of a transaction,
 * `work` with batches and `burstWhenBatchFull`, NOTIFY on the queue; `fromPglite` on PGlite.
 */
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { type Db, fromPglite, PgBoss } from 'pg-boss';
import { BATCH_SIZE, FETCH_LOOPS, handlerHooks, runJobsChild } from './workload.js';

const QUEUE = 'noop';
const SCHEMA = 'pgboss_baseline';

runJobsChild(async (settings) => {
  let boss: PgBoss;
  let inTransaction: (work: (db: Db) => Promise<void>) => Promise<void>;
  let closeDatabase: () => Promise<void>;
  if (settings.databaseUrl !== undefined) {
    const pool = new pg.Pool({ connectionString: settings.databaseUrl, max: 2 });
    boss = new PgBoss({
      connectionString: settings.databaseUrl,
      schema: SCHEMA,
      max: 4,
      useListenNotify: true,
    });
    inTransaction = async (work) => {
      const client = await pool.connect();
      try {
        await client.query('begin');
        await work({ executeSql: (text, values) => client.query(text, values) });
        await client.query('commit');
      } finally {
        client.release();
      }
    };
    closeDatabase = () => pool.end();
  } else {
    const pglite = await PGlite.create();
    boss = new PgBoss({ db: fromPglite(pglite), backend: 'pglite', schema: SCHEMA, useListenNotify: true });
    inTransaction = (work) =>
      pglite.transaction(async (transaction) => {
        await work({ executeSql: (text, values) => transaction.query(text, values) });
      });
    closeDatabase = () => pglite.close();
  }
  boss.on('error', (error) => console.error(error));
  await boss.start();
  await boss.createQueue(QUEUE, { notify: true });
  await boss.work(
    QUEUE,
    {
      batchSize: BATCH_SIZE,
      localConcurrency: FETCH_LOOPS,
      burstWhenBatchFull: true,
      pollingIntervalSeconds: 1,
      notifyPollingIntervalSeconds: 1,
    },
    async (jobs) => {
      for (const _job of jobs) handlerHooks.onStart();
    },
  );
  return {
    async enqueueBatch(count) {
      await inTransaction(async (db) => {
        await boss.insert(
          QUEUE,
          Array.from({ length: count }, () => ({ data: {} })),
          { db },
        );
      });
    },
    async enqueueEach(count) {
      await inTransaction(async (db) => {
        for (let index = 0; index < count; index++) await boss.send(QUEUE, {}, { db });
      });
    },
    async enqueueOne() {
      await boss.send(QUEUE, {});
    },
    async close() {
      await boss.stop({ graceful: false, close: true });
      await closeDatabase();
    },
  };
});
