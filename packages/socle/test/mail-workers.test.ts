import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMailModule, type MailServices, type MailTables } from '../src/modules/mail/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase, postgresTarget } from './support/each-database.js';
import {
  createCapturingLogger,
  FROM,
  outboxRowOf,
  uniqueAddress,
  useSmtpServer,
} from './support/mail-fixtures.js';

const smtp = useSmtpServer();
const { receivedFor } = smtp;

describeEachDatabase('Mail: delivered by the workers of the server', (target) => {
  it('logs the mail (recipient, subject, body) when SMTP is not configured, without anyone draining', async () => {
    const { log, lines } = createCapturingLogger();
    const embedded = await createTestSocle(target, {
      modules: [createMailModule()],
      config: { jobsPollIntervalMs: 500 },
      settings: { mail: { smtpUrl: undefined } },
      log,
    });
    try {
      expect(lines.some((line) => String(line.msg).includes('SMTP_URL is not set'))).toBe(true);
      const to = uniqueAddress();
      const link = 'http://localhost:8080/reset-password?token=s3cr3t-t0ken';
      const { id } = await embedded.db.transaction((trx) =>
        embedded.servicesOf<MailServices>('mail').outbox.enqueue(trx, {
          to,
          subject: 'Reset your password',
          text: `Reset it: ${link}`,
        }),
      );
      // Nobody calls runDueJobs(): the server's workers (JOBS_QUEUES defaults to all) deliver it.
      await vi.waitFor(
        async () => {
          const row = await outboxRowOf(embedded, id);
          expect(row.sent_at).toBeInstanceOf(Date);
        },
        { timeout: 10_000, interval: 20 },
      );
      const line = lines.find((entry) => entry.mailId === id);
      expect(line).toMatchObject({ level: 30, to, subject: 'Reset your password' });
      expect(line?.text).toContain(link);
    } finally {
      await embedded.dispose();
    }
  });
});

describe.skipIf(!postgresTarget.available)(
  'Mail: two nodes working one outbox [postgres: several sessions]',
  () => {
    let first: TestSocle;
    let second: TestSocle;

    beforeAll(async () => {
      const config = { jobsPollIntervalMs: 500 };
      const settings = { mail: { smtpUrl: smtp.url, from: FROM } };
      first = await createTestSocle(postgresTarget, { modules: [createMailModule()], config, settings });
      second = await createTestSocle(postgresTarget, {
        modules: [createMailModule()],
        config,
        settings,
        database: first.database,
      });
    });
    afterAll(async () => {
      await second?.dispose();
      await first?.dispose();
    });

    it('sends each mail exactly once while both nodes work the queue', async () => {
      const { outbox } = first.servicesOf<MailServices>('mail');
      const ids = await first.db.transaction(async (trx) => {
        const queued: string[] = [];
        for (let index = 0; index < 100; index++) {
          const result = await outbox.enqueue(trx, {
            to: uniqueAddress(),
            subject: `Race ${index}`,
            text: `Message ${index}`,
          });
          queued.push(result.id);
        }
        return queued;
      });
      const rows = first.db.withTables<MailTables>().kysely.selectFrom('mail.outbox');
      await vi.waitFor(
        async () => {
          const pending = await rows
            .select((eb) => eb.fn.countAll<string>().as('count'))
            .where('sent_at', 'is', null)
            .executeTakeFirstOrThrow();
          expect(pending.count).toBe('0');
        },
        { timeout: 20_000, interval: 50 },
      );
      for (const id of ids) expect(receivedFor(id)).toHaveLength(1);
      const attempts = await rows.select('attempts').where('id', 'in', ids).execute();
      expect(attempts.every((row) => row.attempts === 1)).toBe(true);
    });
  },
);
