import type { Database } from '../../kernel/index.js';
import { type PrivacyHooks, withOwnerTransaction } from '../../kernel/index.js';

/** Mail sent or queued to the person; erasure deletes it (bodies can hold names and links). */
export function createMailPrivacy(db: Pick<Database, 'withConnection'>): PrivacyHooks {
  return {
    exportSubject: (subject) =>
      withOwnerTransaction(db, async (connection) => {
        const { rows } = await connection.query(
          `select subject, created_at as "createdAt", sent_at as "sentAt"
             from mail.outbox where recipient = $1 order by created_at`,
          [subject.email],
        );
        return { mails: rows };
      }),
    eraseSubject: (subject) =>
      withOwnerTransaction(db, async (connection) => {
        await connection.query('delete from mail.outbox where recipient = $1', [subject.email]);
      }),
  };
}
