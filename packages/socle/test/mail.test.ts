import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Transaction } from 'kysely';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger, defineModule, type JobRecord, type Logger, loadConfig, sql } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import {
  createMailModule,
  createMailOutbox,
  DEFAULT_MAIL_BACKOFF,
  MAIL_DELIVERY_JOB,
  type MailMessage,
  type MailModule,
  type MailOutbox,
  type MailTables,
} from '../src/modules/mail/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase, postgresTarget } from './support/each-database.js';

const SMTP_USER = 'mailer';
const SMTP_PASSWORD = 'smtp-s3cret-pass';
const FROM = 'Socle Test <robot@socle.test>';

interface ReceivedMail {
  readonly envelopeFrom: string;
  readonly envelopeTo: readonly string[];
  readonly user: string | undefined;
  readonly headers: ReadonlyMap<string, string>;
  readonly raw: string;
}

/**
 * A real SMTP server on a free loopback port, with authentication and no TLS. `rejectRecipients`
 * makes it answer RCPT TO with 550, as a relay that refuses a mailbox does.
 */
async function startSmtpServer() {
  const received: ReceivedMail[] = [];
  const state = { rejectRecipients: false };
  const server = new SMTPServer({
    hideSTARTTLS: true,
    allowInsecureAuth: true,
    disableReverseLookup: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD) callback(null, { user: SMTP_USER });
      else callback(new Error('Invalid username or password'));
    },
    onRcptTo(_address, _session, callback) {
      if (state.rejectRecipients)
        callback(Object.assign(new Error('Mailbox unavailable'), { responseCode: 550 }));
      else callback();
    },
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        received.push({
          envelopeFrom: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          envelopeTo: session.envelope.rcptTo.map((recipient) => recipient.address),
          user: session.user,
          headers: parseHeaders(raw),
          raw,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    received,
    state,
    url: `smtp://${SMTP_USER}:${SMTP_PASSWORD}@127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Headers of a raw message, names lower-cased, folded lines joined. */
function parseHeaders(raw: string): Map<string, string> {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** A pino logger whose JSON lines the test reads. */
function createCapturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(
    { logLevel: 'info', logFormat: 'json' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { log, lines };
}

let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
beforeAll(async () => {
  smtp = await startSmtpServer();
});
afterAll(() => smtp?.close());

const receivedFor = (mailId: string) =>
  smtp.received.filter((mail) => mail.headers.get('message-id') === `<${mailId}@socle.test>`);

let counter = 0;
const uniqueAddress = () => `user.${Date.now().toString(36)}.${++counter}@example.com`;

describe('Mail settings', () => {
  it('defaults to the log sender, a local From and 10 attempts, and never echoes a bad SMTP_URL', () => {
    const defaults = loadConfig({ env: {}, configFile: false });
    expect(defaults).toMatchObject({
      smtpUrl: undefined,
      mailFrom: 'Socle <no-reply@localhost>',
      mailMaxAttempts: 10,
    });
    const configured = loadConfig({
      env: { SMTP_URL: 'smtp://user:pw@smtp.example:587', MAIL_FROM: 'Acme <hi@acme.example>' },
      configFile: false,
    });
    expect(configured).toMatchObject({
      smtpUrl: 'smtp://user:pw@smtp.example:587',
      mailFrom: 'Acme <hi@acme.example>',
    });
    let message = '';
    try {
      loadConfig({ env: { SMTP_URL: 'http://user:hunter2@smtp.example' }, configFile: false });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/SMTP_URL must be an smtp:\/\/ or smtps:\/\/ URL$/m);
    expect(message).not.toContain('hunter2');
  });

  it('declares delivery as a job of the high queue, retried with the backoff it is given', () => {
    const mail = createMailModule();
    // The default (30 s, stretched at random, up to 4 h) is what the delivery test below observes.
    expect(mail.jobs?.deliver).toMatchObject({ queue: 'high', backoff: DEFAULT_MAIL_BACKOFF });
    const custom = { initialDelayMs: 5_000, maxDelayMs: 60_000 };
    expect(createMailModule({ backoff: custom }).jobs?.deliver?.backoff).toEqual(custom);
    expect(createMailModule({ backoff: false }).jobs?.deliver?.backoff).toBe(false);
    expect(mail.jobs?.purgeFinished?.cron).toBe('17 3 * * *');
  });
});

/** The `mail.deliver` jobs of an outbox row (every tenant's, as operators see them). */
async function deliveryJobsOf(socle: TestSocle, outboxId: string): Promise<JobRecord[]> {
  const jobs = await socle.jobs.list({ tenantId: null, limit: 1000 });
  return jobs.filter(
    (job) => job.name === MAIL_DELIVERY_JOB && (job.payload as { outboxId?: string }).outboxId === outboxId,
  );
}

/** The outbox row `id` of `socle`'s database. */
const outboxRowOf = (socle: { db: TestSocle['db'] }, id: string) =>
  socle.db
    .withTables<MailTables>()
    .kysely.selectFrom('mail.outbox')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirstOrThrow();

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
      config: { smtpUrl: smtp.url, mailFrom: FROM, mailMaxAttempts: 3, jobsQueues: [] },
    });
    outbox = createMailOutbox(socle.context);
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

describeEachDatabase("Mail: a sign-up's verification mail through SMTP", (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [createIdentityModule({ rateLimits: false }), createMailModule()],
      config: { smtpUrl: smtp.url, mailFrom: FROM, jobsQueues: [] },
    });
  });
  afterAll(() => socle?.dispose());

  it('reaches the SMTP server once its job runs, and not before, and its token verifies the address', async () => {
    const email = uniqueAddress();
    const signUp = await socle.app.inject({
      method: 'POST',
      url: '/auth/sign-up',
      payload: { email, password: 'correct horse battery staple orbit' },
    });
    expect(signUp.statusCode).toBe(201);
    const toThisUser = () => smtp.received.filter((received) => received.envelopeTo.includes(email));
    expect(toThisUser()).toEqual([]);

    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 1, failed: 0 });
    const [message, ...others] = toThisUser();
    expect(others).toEqual([]);
    expect(message?.headers.get('subject')).toBe('Confirm your email address');
    const token = /Your verification token: (ev_\S+)/.exec(message?.raw ?? '')?.[1];
    expect(token).toBeDefined();
    const confirmed = await socle.app.inject({
      method: 'POST',
      url: '/auth/email-verification/confirm',
      payload: { token },
    });
    expect(confirmed.statusCode).toBe(200);
  });
});

describeEachDatabase('Mail: a sender that keeps failing', (target) => {
  let socle: TestSocle;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      // No backoff: every retry is due at once, so one runDueJobs() runs them all.
      modules: [createMailModule({ backoff: false })],
      config: { smtpUrl: smtp.url, mailFrom: FROM, mailMaxAttempts: 3, jobsQueues: [] },
    });
  });
  afterAll(() => socle?.dispose());

  it('is retried by the engine, then dead: the job failed and the row marked failed; a retry by hand sends it', async () => {
    const outbox = createMailOutbox(socle.context);
    const { id } = await socle.db.transaction((trx) =>
      outbox.enqueue(trx, { to: uniqueAddress(), subject: 'Never accepted', text: 'Body' }),
    );
    smtp.state.rejectRecipients = true;
    try {
      expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 3 });
    } finally {
      smtp.state.rejectRecipients = false;
    }
    const row = await outboxRowOf(socle, id);
    expect(row).toMatchObject({ attempts: 3, sent_at: null });
    expect(row.failed_at).toBeInstanceOf(Date);
    expect(row.last_error).toContain('550');
    const [job] = await deliveryJobsOf(socle, id);
    expect(job).toMatchObject({ state: 'failed', attempts: 3, maxAttempts: 3 });
    expect(receivedFor(id)).toEqual([]);
    // Dead means dead: nothing runs it again by itself.
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 0 });

    // An operator retries the dead job once the relay accepts the mailbox again.
    await socle.jobs.retry(job?.id as string, null);
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 1, failed: 0 });
    expect(receivedFor(id)).toHaveLength(1);
    const sent = await outboxRowOf(socle, id);
    expect(sent).toMatchObject({ failed_at: null, attempts: 4 });
    expect(sent.sent_at).toBeInstanceOf(Date);
  });
});

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
        config: { smtpUrl: smtp.url, mailFrom: FROM, jobsQueues: [] },
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

describeEachDatabase('Mail: delivered by the workers of the server', (target) => {
  it('logs the mail (recipient, subject, body) when SMTP is not configured, without anyone draining', async () => {
    const { log, lines } = createCapturingLogger();
    const embedded = await createTestSocle(target, {
      modules: [createMailModule()],
      config: { smtpUrl: undefined, jobsPollIntervalMs: 500 },
      log,
    });
    try {
      expect(lines.some((line) => String(line.msg).includes('SMTP_URL is not set'))).toBe(true);
      const to = uniqueAddress();
      const link = 'http://localhost:8080/reset-password?token=s3cr3t-t0ken';
      const { id } = await embedded.db.transaction((trx) =>
        createMailOutbox(embedded.context).enqueue(trx, {
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
      const config = { smtpUrl: smtp.url, mailFrom: FROM, jobsPollIntervalMs: 500 };
      first = await createTestSocle(postgresTarget, { modules: [createMailModule()], config });
      second = await createTestSocle(postgresTarget, {
        modules: [createMailModule()],
        config,
        database: first.database,
      });
    });
    afterAll(async () => {
      await second?.dispose();
      await first?.dispose();
    });

    it('sends each mail exactly once while both nodes work the queue', async () => {
      const outbox = createMailOutbox(first.context);
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
