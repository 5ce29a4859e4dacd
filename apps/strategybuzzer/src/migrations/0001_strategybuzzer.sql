-- Runs in the module's schema ("strategybuzzer"), on Postgres and on embedded PGlite alike.
-- Players are people of the whole platform, not of an organization: these are global tables.
-- The one organization the game belongs to (the "house", claimed by its admin) holds the coin
-- accounts in the ledger.

create table house (
  id integer primary key default 1 check (id = 1),
  org_id uuid not null references tenancy.organizations (id) on delete cascade,
  source_account_id uuid not null,
  revenue_account_id uuid not null,
  claimed_by uuid not null references identity.users (id),
  claimed_at timestamptz not null
);

create table players (
  user_id uuid primary key references identity.users (id) on delete cascade,
  name text not null,
  level integer not null default 1,
  wallet_account_id uuid,
  games integer not null default 0,
  wins integer not null default 0,
  points bigint not null default 0,
  best_streak integer not null default 0,
  created_at timestamptz not null
);

create table questions (
  id uuid primary key,
  language text not null,
  category text not null,
  level integer not null check (level between 1 and 10),
  prompt text not null,
  choices jsonb not null,
  answer integer not null,
  created_at timestamptz not null,
  unique (language, prompt)
);
create index questions_by_language on questions (language, level);

create table games (
  id uuid primary key,
  region text not null,
  mode text not null,
  language text not null,
  code text,
  started_at timestamptz not null,
  ended_at timestamptz not null
);

create table game_players (
  game_id uuid not null references games (id) on delete cascade,
  user_id uuid not null references identity.users (id) on delete cascade,
  name text not null,
  score integer not null,
  best_streak integer not null,
  correct integer not null,
  wrong integer not null,
  rank integer not null,
  primary key (game_id, user_id)
);
create index game_players_by_user on game_players (user_id);

create table chat_messages (
  id uuid primary key,
  room_id uuid not null,
  user_id uuid not null references identity.users (id) on delete cascade,
  name text not null,
  body text not null,
  created_at timestamptz not null
);
create index chat_by_room on chat_messages (room_id, created_at);
create index chat_by_time on chat_messages (created_at);
