-- The operator (OPERATOR_TOKEN, no account) acts too: erasing an account, changing another
-- organization's members. Its requests are recorded with actor_operator, in the organization they
-- acted in when they name one (its admins see who changed their members), else with no tenant.
-- Adding a column with a constant default rewrites nothing (Postgres 11+).
alter table events add column actor_operator boolean not null default false;

-- Operators list every organization's events and those of none (sign-ins, sign-ups): their reads
-- present app.operator_read = 'on' (the operator listing sets it on that statement only, as
-- tenancy's operator reads do). Reads only: the table stays append-only for every session.
create policy events_operator_read on events for select
  using (current_setting('app.operator_read', true) = 'on');
