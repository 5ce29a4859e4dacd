import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineJob, defineModule, sql } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { postgresTarget } from './support/each-database.js';

/** Longer than every configured timeout: an answer still pending then was queued behind the work. */
const BOUND_MS = 10_000;

/** Handlers and requests that hold a database connection until the test lets them go. */
function createFixture() {
  let release: () => void = () => undefined;
  let released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const state = {
    jobsHolding: 0,
    requestsHolding: 0,
    release: () => release(),
    reset: () => {
      released = new Promise<void>((resolve) => {
        release = resolve;
      });
    },
  };
  const module = defineModule({
    name: 'background_probe',
    jobs: {
      /** Like a webhook delivery that keeps its transaction open while the receiver is slow. */
      hold: defineJob({
        maxAttempts: 1,
        async handler({ db }) {
          await db.transaction(async (trx) => {
            await sql`select 1`.execute(trx);
            state.jobsHolding++;
            await released;
            state.jobsHolding--;
          });
        },
      }),
    },
    routes(app, context) {
      app.get('/probe/db', async () => {
        await sql`select 1`.execute(context.db.kysely);
        return { ok: true };
      });
      app.get('/probe/hold', async () => {
        await context.db.transaction(async (trx) => {
          await sql`select 1`.execute(trx);
          state.requestsHolding++;
          await released;
          state.requestsHolding--;
        });
        return { ok: true };
      });
    },
  });
  return { module, state };
}

async function waitFor(condition: () => boolean): Promise<boolean> {
  for (let attempt = 0; attempt < 200 && !condition(); attempt++) await sleep(25);
  return condition();
}

async function withinBound<T>(work: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([work, sleep(BOUND_MS).then(() => 'pending' as const)]);
}

// Pools of several connections and a job engine on its own pool: Postgres only. When Postgres is
// required (CI) and missing, loading the targets fails instead of skipping.
describe.skipIf(!postgresTarget.available)(
  'background work does not starve requests or readiness [postgres]',
  () => {
    let socle: TestSocle;
    const fixture = createFixture();

    beforeAll(async () => {
      socle = await createTestSocle(postgresTarget, {
        modules: [fixture.module],
        config: {
          databasePoolMax: 3,
          databaseBackgroundPoolMax: 2,
          databaseConnectTimeoutMs: 1000,
          jobsQueues: ['default'],
          jobsConcurrency: 2,
          jobsBatchSize: 10,
          jobsPollIntervalMs: 500,
        },
      });
    });
    afterAll(async () => {
      fixture.state.release();
      await socle?.dispose();
    });

    it('answers /readyz and a request while every background connection is held by jobs', async () => {
      try {
        // In one transaction, so the worker claims them in one batch and runs them at once.
        await socle.db.transaction(async (trx) => {
          for (let index = 0; index < 10; index++) {
            await socle.jobs.enqueue(trx, 'background_probe.hold', {});
          }
        });
        expect(await waitFor(() => fixture.state.jobsHolding >= 2), 'the jobs did not start').toBe(true);
        // Give the other jobs of the batch time to queue for a connection too.
        await sleep(200);

        const [ready, request] = await Promise.all([
          withinBound(socle.app.inject({ method: 'GET', url: '/readyz' })),
          withinBound(socle.app.inject({ method: 'GET', url: '/probe/db' })),
        ]);
        expect(ready, '/readyz queued behind the jobs').not.toBe('pending');
        expect(request, 'the request queued behind the jobs').not.toBe('pending');
        if (ready === 'pending' || request === 'pending') return;
        expect(ready.statusCode, ready.body).toBe(200);
        expect(request.statusCode, request.body).toBe(200);
      } finally {
        fixture.state.release();
      }
      expect(await waitFor(() => fixture.state.jobsHolding === 0)).toBe(true);
    }, 60_000);

    it('answers /readyz while every request connection is held', async () => {
      fixture.state.reset();
      const holding = Array.from({ length: 3 }, () =>
        socle.app.inject({ method: 'GET', url: '/probe/hold' }),
      );
      try {
        expect(await waitFor(() => fixture.state.requestsHolding >= 3), 'the requests did not start').toBe(
          true,
        );
        const ready = await withinBound(socle.app.inject({ method: 'GET', url: '/readyz' }));
        expect(ready, '/readyz queued behind the requests').not.toBe('pending');
        if (ready === 'pending') return;
        expect(ready.statusCode, ready.body).toBe(200);
      } finally {
        fixture.state.release();
        await Promise.all(holding);
      }
    }, 60_000);
  },
);
