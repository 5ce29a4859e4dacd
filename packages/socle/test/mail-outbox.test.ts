import type { Transaction } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createMailModule,
  MAIL_DELIVERY_JOB,
  type MailMessage,
  type MailModule,
  type MailOutbox,
  type MailTables,
} from '../src/modules/mail/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import {
  deliveryJobsOf,
  FROM,
  outboxRowOf,
  SMTP_PASSWORD,
  SMTP_USER,
  uniqueAddress,
  useSmtpServer,
} from './support/mail-fixtures.js';

const smtp = useSmtpServer();
const { receivedFor } = smtp;

describeEachDatabase('Mail: outbox delivered by jobs', (target) => {
  let socle: TestSocle;
  let mail: MailModule;
  let outbox: MailOutbox;
  const outboxRows = () => socle.db.withTables<MailTables>().kysely.selectFrom('mail.outbox');
  const rowOf = (id: string) => outboxRowOf(socle, id);
  const queue = (message: MailMessage) => socle.db.transaction((trx) => outbox.enqueue(trx, message));

  beforeAll(async () => {
    mail = createMailModule();
    socle = await createTestSocle(target, {
      modules: [mail],
      // No worker in this process: the test runs due jobs itself (socle.jobs.runDueJobs), so it
      // sees every outcome when that call returns.
      config: { jobsQueues: [] },
      settings: { mail: { smtpUrl: smtp.url, from: FROM, maxAttempts: 3 } },
    });
    outbox = socle.servicesOf(mail).outbox;
  });
  afterAll(() => socle?.dispose());

  it('writes the row and its delivery job only when the business transaction commits', async () => {
    const to = uniqueAddress();
    let rolledBack: string | undefined;
    await expect(
      socle.db.transaction(async (trx) => {
        rolledBack = (await outbox.enqueue(trx, { to, subject: 'Welcome', text: 'Hello' })).id;
        throw new Error('the business change failed');
      }),
    ).rejects.toThrow('the business change failed');
    expect(await outboxRows().select('id').where('recipient', '=', to).execute()).toEqual([]);
    expect(await deliveryJobsOf(socle, rolledBack as string)).toEqual([]);
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 0 });
    expect(smtp.received.filter((received) => received.envelopeTo.includes(to))).toEqual([]);

    const queued = await queue({ to, subject: 'Welcome', text: 'Hello', html: '<p>Hello</p>' });
    expect(queued.created).toBe(true);
    expect(await rowOf(queued.id)).toMatchObject({
      recipient: to,
      subject: 'Welcome',
      text_body: 'Hello',
      html_body: '<p>Hello</p>',
      attempts: 0,
      sent_at: null,
      failed_at: null,
      needs_delivery_job: false,
    });
    const [job, ...others] = await deliveryJobsOf(socle, queued.id);
    expect(others).toEqual([]);
    // The payload is the row's id only: the body (tokens, links) stays in the outbox.
    expect(job).toMatchObject({
      queue: 'high',
      state: 'created',
      maxAttempts: 3,
      payload: { outboxId: queued.id },
    });
    await socle.jobs.runDueJobs();
    expect(receivedFor(queued.id)).toHaveLength(1);
  });

  it('adds no second mail nor job for an idempotency key already used, in the same or a later transaction', async () => {
    const to = uniqueAddress();
    const message = { to, subject: 'Reset your password', text: 'Link', idempotencyKey: `reset:${to}` };
    const [first, again] = await socle.db.transaction(async (trx) => [
      await outbox.enqueue(trx, message),
      await outbox.enqueue(trx, message),
    ]);
    const later = await queue({ ...message, text: 'Other link' });
    expect(first?.created).toBe(true);
    expect(again).toEqual({ id: first?.id, created: false });
    expect(later).toEqual({ id: first?.id, created: false });
    const rows = await outboxRows().select(['id', 'text_body']).where('recipient', '=', to).execute();
    expect(rows).toEqual([{ id: first?.id, text_body: 'Link' }]);
    expect(await deliveryJobsOf(socle, first?.id as string)).toHaveLength(1);
    await socle.jobs.runDueJobs();
    expect(receivedFor(first?.id as string)).toHaveLength(1);
  });

  it('refuses a message that cannot be sent, naming each field, and a mail queued outside a transaction', async () => {
    const attempt = queue({
      to: 'not an address',
      subject: 'Line one\r\nBcc: victim@example.com',
      text: 'x',
    });
    await expect(attempt).rejects.toMatchObject({
      code: 'mail.invalid_message',
      errors: [
        { field: 'to', message: expect.any(String) },
        { field: 'subject', message: expect.any(String) },
      ],
    });
    const to = uniqueAddress();
    // The type refuses it too; JavaScript callers and casts meet the runtime check.
    const notATransaction = socle.db.kysely as unknown as Transaction<unknown>;
    await expect(outbox.enqueue(notATransaction, { to, subject: 'Alone', text: 'x' })).rejects.toMatchObject({
      code: 'mail.not_in_transaction',
    });
    expect(await outboxRows().select('id').where('recipient', '=', to).execute()).toEqual([]);
  });

  it('delivers a verification mail through SMTP_URL with MAIL_FROM, marks it sent and completes its job', async () => {
    const to = uniqueAddress();
    const { id } = await queue({
      to,
      subject: 'Confirm your email address',
      text: 'Open https://app.example/verify/abc123 to confirm your address.',
      html: '<p><a href="https://app.example/verify/abc123">Confirm</a></p>',
    });
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 1, failed: 0 });

    const [message, ...duplicates] = receivedFor(id);
    expect(duplicates).toEqual([]);
    expect(message?.user).toBe(SMTP_USER);
    expect(message?.envelopeFrom).toBe('robot@socle.test');
    expect(message?.envelopeTo).toEqual([to]);
    expect(message?.headers.get('from')).toBe('Socle Test <robot@socle.test>');
    expect(message?.headers.get('to')).toBe(to);
    expect(message?.headers.get('subject')).toBe('Confirm your email address');
    expect(message?.raw).toContain('Open https://app.example/verify/abc123 to confirm your address.');
    expect(message?.raw).toContain('text/html');

    const row = await rowOf(id);
    expect(row.sent_at).toBeInstanceOf(Date);
    expect(row.attempts).toBe(1);
    expect(row.last_error).toBeNull();
    expect((await deliveryJobsOf(socle, id)).map((job) => job.state)).toEqual(['completed']);
  });

  it('does not send a mail again when its job is replayed after it was sent', async () => {
    const { id } = await queue({ to: uniqueAddress(), subject: 'Only once', text: 'Body' });
    await socle.jobs.runDueJobs();
    expect(receivedFor(id)).toHaveLength(1);
    const sentAt = (await rowOf(id)).sent_at;

    // A second job for the same row: what a replay, a duplicate enqueue or an attempt that
    // outlived its lease amounts to.
    const replay = await socle.jobs.enqueue(socle.db.kysely, MAIL_DELIVERY_JOB, { outboxId: id });
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 1, failed: 0 });
    expect((await socle.jobs.get(replay.id, null)).state).toBe('completed');
    expect(receivedFor(id)).toHaveLength(1);
    expect(await rowOf(id)).toMatchObject({ sent_at: sentAt, attempts: 1 });
  });

  it('records a refused delivery on the row and leaves the retry to the engine, after its backoff', async () => {
    const { id } = await queue({ to: uniqueAddress(), subject: 'Refused at first', text: 'Body' });
    smtp.state.rejectRecipients = true;
    try {
      expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 1 });
    } finally {
      smtp.state.rejectRecipients = false;
    }
    const row = await rowOf(id);
    expect(row).toMatchObject({ sent_at: null, failed_at: null, attempts: 1 });
    expect(row.last_error).toContain('550');
    expect(row.last_error).not.toContain(SMTP_PASSWORD);
    const [job] = await deliveryJobsOf(socle, id);
    expect(job?.state).toBe('retry');
    // First backoff: 30 s, stretched by up to 2× at random.
    const delaySeconds = (Date.parse(job?.startAfter as string) - Date.now()) / 1000;
    expect(delaySeconds).toBeGreaterThan(20);
    expect(delaySeconds).toBeLessThanOrEqual(60);
    // Not due before its backoff: nothing runs, nothing is sent.
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 0 });
    expect(receivedFor(id)).toEqual([]);
  });

  it('purges mail sent or failed more than MAIL_RETENTION_DAYS ago, daily, and keeps the rest', async () => {
    const queueOne = (subject: string) => queue({ to: uniqueAddress(), subject, text: 'Token: ev_x' });
    const [oldSent, oldFailed, recentSent, pending] = [
      await queueOne('Old sent'),
      await queueOne('Old failed'),
      await queueOne('Recent sent'),
      await queueOne('Pending'),
    ];
    const age = (id: string, column: 'sent_at' | 'failed_at', days: number) =>
      socle.db.withConnection(
        (connection) =>
          connection.query(`update mail.outbox set ${column} = now() - $2 * interval '1 day' where id = $1`, [
            id,
            days,
          ]),
        'owner',
      );
    await age(oldSent.id, 'sent_at', 8);
    await age(oldFailed.id, 'failed_at', 30);
    await age(recentSent.id, 'sent_at', 6);

    expect(await socle.servicesOf(mail).purgeFinished()).toBe(2);
    const left = (await outboxRows().select('id').execute()).map((row) => row.id);
    expect(left).not.toContain(oldSent.id);
    expect(left).not.toContain(oldFailed.id);
    expect(left).toEqual(expect.arrayContaining([recentSent.id, pending.id]));
    // The purged rows' jobs find nothing to send.
    await socle.jobs.runDueJobs();
    expect(receivedFor(oldSent.id)).toEqual([]);
    expect(receivedFor(pending.id)).toHaveLength(1);
  });
});
