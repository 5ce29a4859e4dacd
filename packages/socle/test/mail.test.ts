import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger, type Logger, loadConfig, sql } from '../src/index.js';
import {
  createMailModule,
  enqueueMail,
  type MailModule,
  type MailSender,
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
  it('defaults to the log sender and a local From, and never echoes a bad SMTP_URL', () => {
    const defaults = loadConfig({ env: {}, configFile: false });
    expect(defaults).toMatchObject({
      smtpUrl: undefined,
      mailFrom: 'Socle <no-reply@localhost>',
      mailPollIntervalMs: 1000,
      mailMaxAttempts: 8,
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
});

describeEachDatabase('Mail: outbox and delivery', (target) => {
  let socle: TestSocle;
  let mail: MailModule;
  const outbox = () => socle.db.withTables<MailTables>().kysely.selectFrom('mail.outbox');
  const rowOf = (id: string) => outbox().selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  /** Makes a mail due now, as the table owner, instead of waiting out its backoff. */
  const makeDue = (id: string) =>
    socle.db.withConnection(
      (connection) =>
        connection.query(
          `update mail.outbox set next_attempt_at = now() - interval '1 second' where id = $1`,
          [id],
        ),
      'owner',
    );

  beforeAll(async () => {
    mail = createMailModule();
    socle = await createTestSocle(target, {
      modules: [mail],
      // The poll loop would race the test's own drainOnce(): one pass an hour is none at all here.
      config: { smtpUrl: smtp.url, mailFrom: FROM, mailPollIntervalMs: 3_600_000, mailMaxAttempts: 3 },
    });
  });
  afterAll(() => socle?.dispose());

  it('queues a mail only when the transaction that queued it commits', async () => {
    const to = uniqueAddress();
    await expect(
      socle.db.transaction(async (trx) => {
        await enqueueMail(trx, { to, subject: 'Welcome', text: 'Hello' });
        throw new Error('the business change failed');
      }),
    ).rejects.toThrow('the business change failed');
    expect(await outbox().select('id').where('recipient', '=', to).execute()).toEqual([]);

    const queued = await socle.db.transaction((trx) =>
      mail.enqueue(trx, { to, subject: 'Welcome', text: 'Hello', html: '<p>Hello</p>' }),
    );
    expect(queued.created).toBe(true);
    const row = await rowOf(queued.id);
    expect(row).toMatchObject({
      recipient: to,
      subject: 'Welcome',
      text_body: 'Hello',
      html_body: '<p>Hello</p>',
      attempts: 0,
      sent_at: null,
      failed_at: null,
    });
  });

  it('adds no second mail for an idempotency key already used, in the same or a later transaction', async () => {
    const to = uniqueAddress();
    const message = { to, subject: 'Reset your password', text: 'Link', idempotencyKey: `reset:${to}` };
    const [first, again] = await socle.db.transaction(async (trx) => [
      await enqueueMail(trx, message),
      await enqueueMail(trx, message),
    ]);
    const later = await socle.db.transaction((trx) => enqueueMail(trx, { ...message, text: 'Other link' }));
    expect(first?.created).toBe(true);
    expect(again).toEqual({ id: first?.id, created: false });
    expect(later).toEqual({ id: first?.id, created: false });
    const rows = await outbox().select(['id', 'text_body']).where('recipient', '=', to).execute();
    expect(rows).toEqual([{ id: first?.id, text_body: 'Link' }]);
  });

  it('refuses a message that cannot be sent, naming each field', async () => {
    const attempt = socle.db.transaction((trx) =>
      enqueueMail(trx, { to: 'not an address', subject: 'Line one\r\nBcc: victim@example.com', text: 'x' }),
    );
    await expect(attempt).rejects.toMatchObject({
      code: 'mail.invalid_message',
      errors: [
        { field: 'to', message: expect.any(String) },
        { field: 'subject', message: expect.any(String) },
      ],
    });
  });

  it('delivers due mail through SMTP_URL with MAIL_FROM, and marks it sent', async () => {
    const to = uniqueAddress();
    const { id } = await socle.db.transaction((trx) =>
      enqueueMail(trx, {
        to,
        subject: 'Confirm your email address',
        text: 'Open https://app.example/verify/abc123 to confirm your address.',
        html: '<p><a href="https://app.example/verify/abc123">Confirm</a></p>',
      }),
    );
    const result = await mail.drainOnce();
    expect(result.sent).toBeGreaterThanOrEqual(1);
    expect(result.retrying + result.failed).toBe(0);

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
    expect((await mail.drainOnce()).claimed).toBe(0);
    expect(receivedFor(id)).toHaveLength(1);
  });

  it('records a refused delivery, backs off, and succeeds when retried after the backoff', async () => {
    const { id } = await socle.db.transaction((trx) =>
      enqueueMail(trx, { to: uniqueAddress(), subject: 'Refused at first', text: 'Body' }),
    );
    smtp.state.rejectRecipients = true;
    try {
      const result = await mail.drainOnce();
      expect(result).toMatchObject({ sent: 0, retrying: 1, failed: 0 });
    } finally {
      smtp.state.rejectRecipients = false;
    }
    const failed = await rowOf(id);
    expect(failed.sent_at).toBeNull();
    expect(failed.failed_at).toBeNull();
    expect(failed.attempts).toBe(1);
    expect(failed.last_error).toContain('550');
    expect(failed.last_error).not.toContain(SMTP_PASSWORD);
    const { rows } = await sql<{ delay_s: number }>`
      select extract(epoch from next_attempt_at - now())::float8 as delay_s from mail.outbox where id = ${id}
    `.execute(socle.db.kysely);
    // First backoff: 30 s ± 20 %.
    expect(rows[0]?.delay_s).toBeGreaterThan(20);
    expect(rows[0]?.delay_s).toBeLessThan(40);
    expect(receivedFor(id)).toEqual([]);

    expect((await mail.drainOnce()).claimed).toBe(0); // not due before its backoff
    await makeDue(id);
    expect(await mail.drainOnce()).toMatchObject({ sent: 1, retrying: 0 });
    const sent = await rowOf(id);
    expect(sent.sent_at).toBeInstanceOf(Date);
    expect(sent.attempts).toBe(2);
    expect(receivedFor(id)).toHaveLength(1);
  });

  it('gives up after MAIL_MAX_ATTEMPTS refused deliveries and never tries again', async () => {
    const { id } = await socle.db.transaction((trx) =>
      enqueueMail(trx, { to: uniqueAddress(), subject: 'Never accepted', text: 'Body' }),
    );
    smtp.state.rejectRecipients = true;
    try {
      expect(await mail.drainOnce()).toMatchObject({ retrying: 1, failed: 0 });
      await makeDue(id);
      expect(await mail.drainOnce()).toMatchObject({ retrying: 1, failed: 0 });
      await makeDue(id);
      expect(await mail.drainOnce()).toMatchObject({ retrying: 0, failed: 1 });
    } finally {
      smtp.state.rejectRecipients = false;
    }
    const row = await rowOf(id);
    expect(row.attempts).toBe(3);
    expect(row.failed_at).toBeInstanceOf(Date);
    expect(row.sent_at).toBeNull();
    expect(row.last_error).toContain('550');
    await makeDue(id);
    expect((await mail.drainOnce()).claimed).toBe(0);
    expect(receivedFor(id)).toEqual([]);
  });

  it('purges mail sent or failed more than MAIL_RETENTION_DAYS ago, daily, and keeps the rest', async () => {
    const queue = (subject: string) =>
      socle.db.transaction((trx) => enqueueMail(trx, { to: uniqueAddress(), subject, text: 'Token: ev_x' }));
    const [oldSent, oldFailed, recentSent, pending] = [
      await queue('Old sent'),
      await queue('Old failed'),
      await queue('Recent sent'),
      await queue('Pending'),
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

    expect(await mail.purgeFinished()).toBe(2);
    const left = (await outbox().select('id').execute()).map((row) => row.id);
    expect(left).not.toContain(oldSent.id);
    expect(left).not.toContain(oldFailed.id);
    expect(left).toEqual(expect.arrayContaining([recentSent.id, pending.id]));
    // A daily job of the low queue runs it on every deployment.
    expect(socle.context.jobs).toBeDefined();
    expect(mail.jobs?.purgeFinished?.cron).toBe('17 3 * * *');
  });

  it('logs the mail (recipient, subject, body) when SMTP is not configured, from the poll loop', async () => {
    const { log, lines } = createCapturingLogger();
    const embedded = await createTestSocle(target, {
      modules: [createMailModule()],
      config: { smtpUrl: undefined, mailPollIntervalMs: 20 },
      log,
    });
    try {
      expect(lines.some((line) => String(line.msg).includes('SMTP_URL is not set'))).toBe(true);
      const to = uniqueAddress();
      const link = 'http://localhost:8080/reset-password?token=s3cr3t-t0ken';
      const { id } = await embedded.db.transaction((trx) =>
        enqueueMail(trx, { to, subject: 'Reset your password', text: `Reset it: ${link}` }),
      );
      // Nobody calls drainOnce(): the loop started by onStart delivers it.
      await vi.waitFor(() => expect(lines.find((line) => line.mailId === id)).toBeDefined(), {
        timeout: 5000,
        interval: 20,
      });
      const line = lines.find((entry) => entry.mailId === id);
      expect(line).toMatchObject({ level: 30, to, subject: 'Reset your password' });
      expect(line?.text).toContain(link);
      await vi.waitFor(
        async () => {
          const row = await embedded.db
            .withTables<MailTables>()
            .kysely.selectFrom('mail.outbox')
            .select('sent_at')
            .where('id', '=', id)
            .executeTakeFirstOrThrow();
          expect(row.sent_at).toBeInstanceOf(Date);
        },
        { timeout: 5000, interval: 20 },
      );
    } finally {
      await embedded.dispose();
    }
  });

  it('waits for the batch in flight when it stops', async () => {
    let releaseSend: () => void = () => undefined;
    const sendStarted = Promise.withResolvers<void>();
    const events: string[] = [];
    const slowSender: MailSender = {
      name: 'slow',
      async send() {
        sendStarted.resolve();
        await new Promise<void>((resolve) => {
          releaseSend = resolve;
        });
        events.push('sent');
      },
    };
    const { log, lines } = createCapturingLogger();
    const node = await createTestSocle(target, {
      modules: [createMailModule({ sender: slowSender })],
      config: { mailPollIntervalMs: 20 },
      log,
    });
    await node.db.transaction((trx) => enqueueMail(trx, { to: uniqueAddress(), subject: 'Slow', text: 'x' }));
    await sendStarted.promise;
    const closing = node.dispose().then(() => events.push('closed'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(events).toEqual([]);
    releaseSend();
    await closing;
    expect(events).toEqual(['sent', 'closed']);
    // The outcome was recorded before the database closed.
    expect(lines.filter((line) => (line.level as number) >= 50)).toEqual([]);
  });
});

describe.skipIf(!postgresTarget.available)(
  'Mail: two nodes draining one outbox [postgres: several sessions]',
  () => {
    let first: TestSocle;
    let second: TestSocle;

    beforeAll(async () => {
      const config = { smtpUrl: smtp.url, mailFrom: FROM, mailPollIntervalMs: 5 };
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

    it('sends each mail exactly once while both poll loops race for it', async () => {
      const ids = await first.db.transaction(async (trx) => {
        const queued: string[] = [];
        for (let index = 0; index < 100; index++) {
          const result = await enqueueMail(trx, {
            to: uniqueAddress(),
            subject: `Race ${index}`,
            text: `Message ${index}`,
          });
          queued.push(result.id);
        }
        return queued;
      });
      const outbox = first.db.withTables<MailTables>().kysely.selectFrom('mail.outbox');
      await vi.waitFor(
        async () => {
          const pending = await outbox
            .select((eb) => eb.fn.countAll<string>().as('count'))
            .where('sent_at', 'is', null)
            .executeTakeFirstOrThrow();
          expect(pending.count).toBe('0');
        },
        { timeout: 20_000, interval: 50 },
      );
      for (const id of ids) expect(receivedFor(id)).toHaveLength(1);
      const attempts = await outbox.select('attempts').where('id', 'in', ids).execute();
      expect(attempts.every((row) => row.attempts === 1)).toBe(true);
    });
  },
);
