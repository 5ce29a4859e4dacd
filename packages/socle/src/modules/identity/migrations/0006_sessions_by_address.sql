-- Past its sign-in ceiling, an account may still be tried from an address it opened a session
-- from (revoked and expired sessions count): that lookup reads sessions by user and IP.
create index sessions_user_id_ip on sessions (user_id, ip, created_at);
