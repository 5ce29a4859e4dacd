-- The mail outbox: every mail Socle sends is first a row here, written in the transaction of the
-- business change that causes it (a sign-up and its verification mail commit or roll back
-- together). A loop on every node claims due rows and delivers them.
--
-- Global table, not tenant data: a mail is addressed to a person by address, and the delivery loop
-- runs outside any request, with no tenant in its transaction. Under forced row-level security it
-- would see no row at all. The tenant-scoped business row that caused the mail stays in its own
-- module; this table holds only what the SMTP server needs.

create table outbox (
  id uuid primary key,
  recipient text not null,
  subject text not null,
  text_body text not null,
  html_body text,
  created_at timestamptz not null default now(),
  -- claims so far; bumped when a node claims the row, before it sends
  attempts int not null default 0,
  -- when the row is due: at first now(), while claimed now() + lease (a crashed node's claim
  -- expires), after a failure now() + backoff
  next_attempt_at timestamptz not null default now(),
  sent_at timestamptz,
  -- set after the last allowed attempt failed; the row is never tried again
  failed_at timestamptz,
  last_error text,
  -- a second enqueue with the same key adds no row (retried requests, replayed events)
  idempotency_key text unique
);

-- What the delivery loop scans: pending rows by due time. Sent and failed rows leave the index.
create index outbox_due on outbox (next_attempt_at) where sent_at is null and failed_at is null;
