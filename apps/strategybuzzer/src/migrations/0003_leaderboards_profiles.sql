-- Leaderboards read in pages (keyset: points, then user id): the global one by the players'
-- points, the weekly one by the points won in the games that ended that week (UTC, from Monday).

create index players_by_points on players (points desc, user_id);

create table weekly_scores (
  week date not null,
  user_id uuid not null references identity.users (id) on delete cascade,
  points bigint not null default 0,
  games integer not null default 0,
  wins integer not null default 0,
  primary key (week, user_id)
);
create index weekly_scores_by_points on weekly_scores (week, points desc, user_id);
create index weekly_scores_by_user on weekly_scores (user_id);

-- A player's avatar: an object of the files module (per-user bucket `sb-avatars`).
alter table players add column avatar_object_id uuid;
