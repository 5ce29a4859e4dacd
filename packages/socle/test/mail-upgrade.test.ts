import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { defineModule, sql } from '../src/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createTestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { deliveryJobsOf, FROM, uniqueAddress, useSmtpServer } from './support/mail-fixtures.js';

const smtp = useSmtpServer();
const { receivedFor } = smtp;

describeEachDatabase('Mail: upgrade from the delivery loop', (target) => {
  it('delivers mail the previous version left pending, once, from the first start after the upgrade', async () => {
    const database = await target.create();
    try {
      // The previous version: the outbox of migration 0001 only, with two pending rows and one sent.
      const previous = await createTestSocle(target, {
        database,
        modules: [
          defineModule({
            name: 'mail',
            migrations: [
              {
                name: '0001_outbox.sql',
                sql: readFileSync(
                  new URL('../src/modules/mail/migrations/0001_outbox.sql', import.meta.url),
                  'utf8',
                ),
              },
            ],
          }),
        ],
      });
      const pending = [crypto.randomUUID(), crypto.randomUUID()];
      const alreadySent = crypto.randomUUID();
      await previous.db.withConnection(async (connection) => {
        for (const id of pending)
          await connection.query(
            `insert into mail.outbox (id, recipient, subject, text_body, attempts, next_attempt_at)
             values ($1, $2, 'Left pending', 'Body', 2, now() + interval '1 hour')`,
            [id, uniqueAddress()],
          );
        await connection.query(
          `insert into mail.outbox (id, recipient, subject, text_body, attempts, sent_at)
           values ($1, $2, 'Sent before', 'Body', 1, now())`,
          [alreadySent, uniqueAddress()],
        );
      }, 'owner');
      await previous.close();

      // This version: migration 0002, then the start-up sweep enqueues the missing jobs.
      const upgraded = await createTestSocle(target, {
        database,
        modules: [createMailModule()],
        config: { jobsQueues: [] },
        settings: { mail: { smtpUrl: smtp.url, from: FROM } },
      });
      try {
        for (const id of pending) expect(await deliveryJobsOf(upgraded, id)).toHaveLength(1);
        expect(await deliveryJobsOf(upgraded, alreadySent)).toEqual([]);
        expect(await upgraded.jobs.runDueJobs()).toEqual({ completed: 2, failed: 0 });
        for (const id of pending) expect(receivedFor(id)).toHaveLength(1);
        expect(receivedFor(alreadySent)).toEqual([]);
        const { rows } = await sql<{ id: string; needs_delivery_job: boolean; sent: boolean }>`
          select id, needs_delivery_job, sent_at is not null as sent from mail.outbox order by id`.execute(
          upgraded.db.kysely,
        );
        expect(rows.every((row) => row.sent && !row.needs_delivery_job)).toBe(true);

        // A row written without a job later (an old node during a rolling upgrade) gets one from
        // the daily job; sweeping again adds no second job for a row that has one.
        const late = crypto.randomUUID();
        await upgraded.db.withConnection(
          (connection) =>
            connection.query(
              `insert into mail.outbox (id, recipient, subject, text_body) values ($1, $2, 'Late', 'Body')`,
              [late, uniqueAddress()],
            ),
          'owner',
        );
        await upgraded.jobs.enqueue(upgraded.db.kysely, 'mail.purgeFinished', {});
        await upgraded.jobs.enqueue(upgraded.db.kysely, 'mail.purgeFinished', {});
        await upgraded.jobs.runDueJobs();
        expect(await deliveryJobsOf(upgraded, late)).toHaveLength(1);
        expect(receivedFor(late)).toHaveLength(1);
      } finally {
        await upgraded.close();
      }
    } finally {
      await database.drop();
    }
  });
});
