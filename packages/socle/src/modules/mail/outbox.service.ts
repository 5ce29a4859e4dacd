import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { FieldError } from '../../kernel/errors/index.js';
import { mailErrors } from './mail.errors.js';
import type { MailTables } from './mail.tables.js';
import { insertOutboxRow } from './outbox.store.js';

/** A mail to queue. Plain text is required (every client shows it); HTML is optional. */
export interface MailMessage {
  /** One address, `name@example.com`. */
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html?: string | undefined;
  /**
   * Makes the enqueue idempotent: a second mail with the same key adds nothing (a retried
   * request, a replayed event). Scope it yourself, e.g. `identity:verify:<userId>:<tokenId>`.
   */
  readonly idempotencyKey?: string | undefined;
}

export interface QueuedMail {
  /** The outbox row's id (the existing row's when the idempotency key was already used). */
  readonly id: string;
  /** False when the idempotency key was already used and nothing was added. */
  readonly created: boolean;
}

/** One bare address: no display name, no list, nothing a header could be smuggled in. */
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+$/;
const LINE_BREAK = /[\r\n]/;

function problemsOf(message: MailMessage): FieldError[] {
  const problems: FieldError[] = [];
  if (typeof message.to !== 'string' || message.to.length > 254 || !ADDRESS.test(message.to))
    problems.push({ field: 'to', message: 'must be one email address such as name@example.com' });
  if (typeof message.subject !== 'string' || message.subject.trim() === '')
    problems.push({ field: 'subject', message: 'must be a non-empty string' });
  else if (LINE_BREAK.test(message.subject) || message.subject.length > 998)
    problems.push({ field: 'subject', message: 'must be one line of at most 998 characters' });
  if (typeof message.text !== 'string') problems.push({ field: 'text', message: 'must be a string' });
  if (message.html !== undefined && typeof message.html !== 'string')
    problems.push({ field: 'html', message: 'must be a string when given' });
  if (
    message.idempotencyKey !== undefined &&
    (typeof message.idempotencyKey !== 'string' || message.idempotencyKey === '')
  )
    problems.push({ field: 'idempotencyKey', message: 'must be a non-empty string when given' });
  return problems;
}

/**
 * Queues a mail in the outbox **inside the caller's transaction**: it is delivered only if that
 * transaction commits, and a committed business change never lacks its mail (transactional
 * outbox). The delivery loop of the mail module sends it shortly after the commit, with retries.
 *
 * It is a plain function of the caller's executor rather than a method of a started service
 * because it only writes a row: it needs no configuration, works in any module's transaction
 * (whatever that module's table types) and cannot be called "too early". The calling module
 * lists `'mail'` in its `dependsOn` so the outbox table exists before its own migrations.
 * `createMailModule().enqueue` is the same function, for callers that hold the module.
 *
 * @example
 * await db.transaction(async (trx) => {
 *   await users.insert(user, trx);
 *   await enqueueMail(trx, {
 *     to: user.email,
 *     subject: 'Confirm your email address',
 *     text: `Open ${link} to confirm your address.`,
 *     idempotencyKey: `identity:verify:${user.id}`,
 *   });
 * });
 */
export async function enqueueMail<Tables>(
  executor: Kysely<Tables>,
  message: MailMessage,
): Promise<QueuedMail> {
  const problems = problemsOf(message);
  if (problems.length > 0) throw mailErrors.invalidMessage(problems);
  // The caller's executor is typed with its own tables; mail.outbox is there all the same (one
  // database, one transaction), as Database.withTables() assumes for a module's tables.
  return insertOutboxRow(executor as unknown as Kysely<MailTables>, {
    id: randomUUID(),
    recipient: message.to,
    subject: message.subject,
    textBody: message.text,
    htmlBody: message.html ?? null,
    idempotencyKey: message.idempotencyKey ?? null,
  });
}
