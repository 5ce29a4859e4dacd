-- Delivery moves from a claim loop on every node to one `mail.deliver` job per row, enqueued in
-- the transaction that inserts the row (the job's key is the row's id). The row keeps the state
-- (attempts, last error, sent or failed); the job engine keeps the schedule of retries.
--
-- Rows that have no job yet: those the previous version queued and had not delivered, and any
-- row inserted without the mail module's enqueue (an old node during a rolling upgrade, a hand
-- insert). The column defaults to true so all of them are covered; enqueue inserts false. The
-- mail module enqueues their jobs at start and daily, clearing the flag in the same transaction.
alter table outbox add column needs_delivery_job boolean not null default true;
update outbox set needs_delivery_job = false where sent_at is not null or failed_at is not null;
create index outbox_needs_delivery_job on outbox (id) where needs_delivery_job;

-- The claim loop's lease and backoff. Dropping it also stops a node of the previous version from
-- claiming (its claim statement names the column) and so from sending a mail a job also sends.
drop index outbox_due;
alter table outbox drop column next_attempt_at;
