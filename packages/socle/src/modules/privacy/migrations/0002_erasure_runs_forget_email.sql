-- A finished erasure keeps no email: the run needed it only to resume (identity pseudonymizes the
-- account's own), and keeping it would keep the erased person's address forever.
alter table erasure_runs alter column email drop not null;
update erasure_runs set email = null where completed_at is not null;
