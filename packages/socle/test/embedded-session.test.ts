import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { createJobsFixtureModule } from './fixtures/jobs-module.js';
import { databaseTargets } from './support/each-database.js';

const pglite = databaseTargets.find((target) => target.dialect === 'pglite');

/** Settles `promise`, or fails when it has not settled within 5 s (a wait on the session). */
async function settledPromptly<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('still waiting after 5 s: the session deadlocked')), 5000);
  });
  try {
    return await Promise.race([promise.then((value) => ({ value })), stuck]).catch((error: unknown) => {
      if (error instanceof Error && error.message.startsWith('still waiting')) throw error;
      return { error };
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * PGlite is one session, held by a transaction from BEGIN to COMMIT. Work that escapes the
 * transaction it runs in (a query on `db.kysely` instead of `trx`, an enqueue given the wrong
 * executor) would wait for that session forever: it fails at once instead, naming the mistake.
 */
describe.skipIf(pglite === undefined)('The embedded session held by a transaction [pglite]', () => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(pglite as NonNullable<typeof pglite>, {
      modules: [createJobsFixtureModule().module],
    });
  });
  afterAll(() => socle?.dispose());

  const heldSession = {
    code: 'db.embedded_session_held',
    message: expect.stringMatching(/transaction .* holds the embedded database's only session/),
  };

  it('refuses at once a statement that escapes the transaction it runs in', async () => {
    const outcome = await settledPromptly(
      socle.db.transaction(async () => {
        await sql`select 1`.execute(socle.db.kysely);
      }),
    );
    expect(outcome.error).toMatchObject(heldSession);
  });

  it('refuses at once an enqueue or a connection that escapes the transaction', async () => {
    const enqueue = await settledPromptly(
      socle.db.transaction(async () => {
        await socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.ordered', { label: 'escaped' });
      }),
    );
    expect(enqueue.error).toMatchObject(heldSession);
    const connection = await settledPromptly(
      socle.db.transaction(async () => {
        await socle.db.withConnection((session) => session.query('select 1'));
      }),
    );
    expect(connection.error).toMatchObject(heldSession);
    // Nothing was left behind: the session serves the next caller.
    expect((await sql<{ one: number }>`select 1 as one`.execute(socle.db.kysely)).rows).toEqual([{ one: 1 }]);
  });

  it('lets unrelated work wait its turn, and work through the transaction run', async () => {
    const both = await settledPromptly(
      Promise.all([
        socle.db.transaction(async (trx) => {
          await socle.jobs.enqueue(trx, 'jobs_fixture.ordered', { label: 'inside' });
          return (await sql<{ n: number }>`select 2 as n`.execute(trx)).rows[0]?.n;
        }),
        socle.db.transaction(
          async (trx) => (await sql<{ n: number }>`select 3 as n`.execute(trx)).rows[0]?.n,
        ),
        sql<{ n: number }>`select 4 as n`.execute(socle.db.kysely).then((result) => result.rows[0]?.n),
      ]),
    );
    expect(both).toEqual({ value: [2, 3, 4] });
  });
});
