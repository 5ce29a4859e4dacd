import type { Generated, Selectable } from 'kysely';

/** The mail module's tables as Kysely sees them. */
export interface MailTables {
  'mail.outbox': {
    id: string;
    recipient: string;
    subject: string;
    text_body: string;
    html_body: string | null;
    created_at: Generated<Date>;
    attempts: Generated<number>;
    next_attempt_at: Generated<Date>;
    sent_at: Date | null;
    failed_at: Date | null;
    last_error: string | null;
    idempotency_key: string | null;
  };
}

export type OutboxRow = Selectable<MailTables['mail.outbox']>;
