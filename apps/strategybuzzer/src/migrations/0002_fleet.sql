-- Rooms on a fleet: every node of the game shares these two tables (on Postgres), so a player is
-- never in two rooms across nodes and a room outlives the memory of the node hosting it.

-- One row per player who asked to play: waiting (room_id null) or seated (room_id set). The
-- primary key is what makes a second room impossible: a player holds one ticket or one seat.
create table tickets (
  user_id uuid primary key references identity.users (id) on delete cascade,
  id uuid not null unique,
  name text not null,
  region text not null,
  mode text not null,
  language text not null,
  level integer not null,
  code text,
  -- When the ticket was made, in fleet milliseconds (epoch ms read on a monotonic clock).
  created_ms double precision not null,
  hold_id text,
  room_id uuid
);
create index tickets_waiting on tickets (region, created_ms) where room_id is null;
create index tickets_by_room on tickets (room_id) where room_id is not null;

-- The rooms of the fleet: which node hosts each (affinity), its players, its scores as of the
-- last answer (what is kept if the host dies), and the host's heartbeat (database time).
create table rooms (
  id uuid primary key,
  host_node text not null,
  region text not null,
  mode text not null,
  language text not null,
  code text,
  players jsonb not null,
  results jsonb not null default '[]',
  started_at timestamptz not null,
  heartbeat_at timestamptz not null,
  ended_at timestamptz,
  end_reason text
);
create index rooms_live on rooms (heartbeat_at) where ended_at is null;
