import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { afterAll, beforeAll } from 'vitest';
import { createLogger, type JobRecord, type Logger } from '../../src/index.js';
import { MAIL_DELIVERY_JOB, type MailTables } from '../../src/modules/mail/index.js';
import type { TestSocle } from '../../src/testing/index.js';

export const SMTP_USER = 'mailer';
export const SMTP_PASSWORD = 'smtp-s3cret-pass';
export const FROM = 'Socle Test <robot@socle.test>';

export interface ReceivedMail {
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
export async function startSmtpServer() {
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

/**
 * The test file's SMTP server: started before its tests, closed after them. `receivedFor` gives
 * the messages received for an outbox id (Socle's Message-ID is `<id@socle.test>` here).
 */
export function useSmtpServer() {
  let server: Awaited<ReturnType<typeof startSmtpServer>> | undefined;
  beforeAll(async () => {
    server = await startSmtpServer();
  });
  afterAll(() => server?.close());
  const started = () => {
    if (server === undefined) throw new Error('The SMTP server starts in beforeAll');
    return server;
  };
  return {
    get url() {
      return started().url;
    },
    get state() {
      return started().state;
    },
    get received() {
      return started().received;
    },
    receivedFor: (mailId: string) =>
      started().received.filter((mail) => mail.headers.get('message-id') === `<${mailId}@socle.test>`),
  };
}

let addresses = 0;
/** An email address no other test of the run uses. */
export const uniqueAddress = () => `user.${Date.now().toString(36)}.${++addresses}@example.com`;

/** Headers of a raw message, names lower-cased, folded lines joined. */
export function parseHeaders(raw: string): Map<string, string> {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** A pino logger whose JSON lines the test reads. */
export function createCapturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(
    { logLevel: 'info', logFormat: 'json' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { log, lines };
}

let _smtp: Awaited<ReturnType<typeof startSmtpServer>>;

/** The `mail.deliver` jobs of an outbox row (every tenant's, as operators see them). */
export async function deliveryJobsOf(socle: TestSocle, outboxId: string): Promise<JobRecord[]> {
  const jobs = await socle.jobs.list({ tenantId: null, limit: 1000 });
  return jobs.filter(
    (job) => job.name === MAIL_DELIVERY_JOB && (job.payload as { outboxId?: string }).outboxId === outboxId,
  );
}

/** The outbox row `id` of `socle`'s database. */
export const outboxRowOf = (socle: { db: TestSocle['db'] }, id: string) =>
  socle.db
    .withTables<MailTables>()
    .kysely.selectFrom('mail.outbox')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
