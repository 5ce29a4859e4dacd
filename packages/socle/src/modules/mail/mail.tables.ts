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
    /** Delivery attempts so far (the job's attempt number at its last outcome). */
    attempts: Generated<number>;
    sent_at: Date | null;
    /** Set when the job's last allowed attempt failed (the job is then dead in the engine). */
    failed_at: Date | null;
    last_error: string | null;
    idempotency_key: string | null;
    /** True while the row has no `mail.deliver` job (rows written by the previous version). */
    needs_delivery_job: Generated<boolean>;
  };
}

export type OutboxRow = Selectable<MailTables['mail.outbox']>;
