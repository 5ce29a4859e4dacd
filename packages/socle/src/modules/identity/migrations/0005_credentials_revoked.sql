-- When every credential of the person was revoked (an erasure starts with it). Access tokens are
-- stateless JWTs: each authenticated request reads this column by primary key and refuses the
-- token of an account revoked at any time, so the fence holds on every node at once.
alter table users add column credentials_revoked_at timestamptz;
