-- Runs in the module's schema ("cryptocare"), on Postgres and on embedded PGlite alike.
--
-- Extensions: cube + earthdistance for the distance search (a GiST index on ll_to_earth), and
-- btree_gist so one exclusion constraint can mix `professional_id with =` and a range overlap.
-- All three are "trusted" since Postgres 13: a database owner without superuser may create them.
-- They go in `public`, where earthdistance's functions find cube's (they call it unqualified).
create extension if not exists cube with schema public;
create extension if not exists earthdistance with schema public;
create extension if not exists btree_gist with schema public;

-- The directory patients search. Anyone may read it; each practice (an organization) writes its
-- own rows, each professional their own profile (row-level security, forced).
create table practices (
  org_id uuid primary key references tenancy.organizations (id) on delete cascade,
  name text not null,
  address text not null,
  latitude double precision not null check (latitude between -90 and 90),
  longitude double precision not null check (longitude between -180 and 180)
);
create index practices_location on practices using gist (public.ll_to_earth(latitude, longitude));

create table professionals (
  id uuid primary key,
  user_id uuid not null unique references identity.users (id) on delete cascade,
  display_name text not null,
  specialties text[] not null,
  languages text[] not null,
  price_chf_cents integer not null check (price_chf_cents > 0),
  -- The professional's own zone: weekly hours and exceptions are local times in it.
  time_zone text not null,
  slot_minutes integer not null check (slot_minutes between 5 and 240),
  buffer_minutes integer not null check (buffer_minutes between 0 and 120),
  -- Moved by triggers whenever the professional's free slots may change (a booking, a
  -- cancellation, an expired hold, new hours): cached availability is keyed by it, so a cache entry
  -- from before a booking is never read after it.
  availability_version bigint not null default 0,
  created_at timestamptz not null
);
create index professionals_specialties on professionals using gin (specialties);
create index professionals_languages on professionals using gin (languages);
create index professionals_price on professionals (price_chf_cents);

-- A professional may practise in several practices (organizations).
create table professional_practices (
  professional_id uuid not null references professionals (id) on delete cascade,
  org_id uuid not null references practices (org_id) on delete cascade,
  primary key (professional_id, org_id)
);
create index professional_practices_by_org on professional_practices (org_id);

-- Weekly opening hours, local time in the professional's zone; ISO weekday (1 = Monday).
create table weekly_hours (
  professional_id uuid not null references professionals (id) on delete cascade,
  weekday smallint not null check (weekday between 1 and 7),
  opens time not null,
  closes time not null,
  primary key (professional_id, weekday, opens),
  check (closes > opens)
);

-- A day with exceptions replaces that day's weekly hours with its rows: none with hours means
-- closed all day (a holiday), rows with hours are that day's only openings.
create table schedule_exceptions (
  id uuid primary key,
  professional_id uuid not null references professionals (id) on delete cascade,
  day date not null,
  opens time,
  closes time,
  check ((opens is null) = (closes is null)),
  check (closes > opens)
);
create index schedule_exceptions_by_day on schedule_exceptions (professional_id, day);

-- Appointments: a hold while unpaid, then confirmed (or cancelled, expired). The exclusion
-- constraint is the guarantee against double booking: two live appointments of one professional
-- never overlap (`during` covers the slot and its buffer), whatever the application does.
create table appointments (
  id uuid primary key,
  tenant_id uuid not null references tenancy.organizations (id) on delete cascade,
  professional_id uuid not null references professionals (id),
  -- Null once the patient's account is erased: the row stays for accounting, pseudonymized.
  patient_id uuid references identity.users (id) on delete set null,
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  during tstzrange not null,
  status text not null check (status in ('held', 'confirmed', 'cancelled', 'expired')),
  hold_expires_at timestamptz,
  price_chf_cents integer not null,
  invoice_id text,
  -- Set when a payment did not match (underpaid, late): for the clinic to look at.
  payment_flag text,
  paid_at timestamptz,
  zoom_meeting_id text,
  zoom_join_url text,
  zoom_host text,
  reminded_24h_at timestamptz,
  reminded_1h_at timestamptz,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  check (ends_at > starts_at),
  check (lower(during) = starts_at and upper(during) >= ends_at),
  constraint appointments_no_overlap exclude using gist (professional_id with =, during with &&)
    where (status in ('held', 'confirmed'))
);
create index appointments_agenda on appointments (professional_id, starts_at, status);
create index appointments_by_patient on appointments (patient_id, starts_at);
create index appointments_by_tenant on appointments (tenant_id, starts_at);
create index appointments_confirmed on appointments (starts_at) where status = 'confirmed';
create index appointments_holds on appointments (hold_expires_at) where status = 'held';

-- Zoom allows about 100 meeting creations per host user per day: the pool counts them here.
create table zoom_host_usage (
  host text not null,
  day date not null,
  meetings integer not null check (meetings >= 0),
  primary key (host, day)
);

-- Consultation notes, sealed with the practice's key (see organization_keys); every read leaves a
-- row in note_reads, in the transaction of the read.
create table organization_keys (
  tenant_id uuid primary key default socle.current_tenant_id()
    references tenancy.organizations (id) on delete cascade,
  sealed_key text not null,
  created_at timestamptz not null
);

create table consultation_notes (
  id uuid primary key,
  tenant_id uuid not null default socle.current_tenant_id()
    references tenancy.organizations (id) on delete cascade,
  appointment_id uuid not null references appointments (id) on delete cascade,
  author_id uuid references identity.users (id) on delete set null,
  sealed_body text not null,
  created_at timestamptz not null
);
create index consultation_notes_by_appointment on consultation_notes (appointment_id, created_at);

create table note_reads (
  id bigint generated always as identity primary key,
  tenant_id uuid not null default socle.current_tenant_id()
    references tenancy.organizations (id) on delete cascade,
  note_id uuid not null,
  reader_id uuid,
  read_at timestamptz not null
);
create index note_reads_by_note on note_reads (note_id, read_at);

-- Row-level security, enabled and forced on every table.
alter table practices enable row level security;
alter table practices force row level security;
create policy practices_read on practices for select using (true);
create policy practices_write on practices for insert with check (org_id = socle.current_tenant_id());
create policy practices_update on practices for update
  using (org_id = socle.current_tenant_id()) with check (org_id = socle.current_tenant_id());

alter table professionals enable row level security;
alter table professionals force row level security;
create policy professionals_read on professionals for select using (true);
create policy professionals_insert on professionals for insert with check (user_id = socle.current_user_id());
create policy professionals_update on professionals for update
  using (user_id = socle.current_user_id()) with check (user_id = socle.current_user_id());

alter table professional_practices enable row level security;
alter table professional_practices force row level security;
create policy professional_practices_read on professional_practices for select using (true);
create policy professional_practices_write on professional_practices for insert
  with check (org_id = socle.current_tenant_id()
    and exists (select 1 from professionals p where p.id = professional_id and p.user_id = socle.current_user_id()));

alter table weekly_hours enable row level security;
alter table weekly_hours force row level security;
create policy weekly_hours_read on weekly_hours for select using (true);
create policy weekly_hours_write on weekly_hours for all
  using (exists (select 1 from professionals p where p.id = professional_id and p.user_id = socle.current_user_id()))
  with check (exists (select 1 from professionals p where p.id = professional_id and p.user_id = socle.current_user_id()));

alter table schedule_exceptions enable row level security;
alter table schedule_exceptions force row level security;
create policy schedule_exceptions_read on schedule_exceptions for select using (true);
create policy schedule_exceptions_write on schedule_exceptions for all
  using (exists (select 1 from professionals p where p.id = professional_id and p.user_id = socle.current_user_id()))
  with check (exists (select 1 from professionals p where p.id = professional_id and p.user_id = socle.current_user_id()));

-- The patient sees and changes their own appointments; the practice's members theirs.
alter table appointments enable row level security;
alter table appointments force row level security;
create policy appointments_read on appointments for select
  using (patient_id = socle.current_user_id() or tenant_id = socle.current_tenant_id());
create policy appointments_insert on appointments for insert
  with check (patient_id = socle.current_user_id());
create policy appointments_update on appointments for update
  using (patient_id = socle.current_user_id() or tenant_id = socle.current_tenant_id());

alter table zoom_host_usage enable row level security;
alter table zoom_host_usage force row level security;
-- Counts per Zoom host user and day: no tenant's data, shared by every practice's meetings.
create policy zoom_host_usage_all on zoom_host_usage for all using (true) with check (true);

alter table organization_keys enable row level security;
alter table organization_keys force row level security;
create policy organization_keys_tenant on organization_keys for all
  using (tenant_id = socle.current_tenant_id()) with check (tenant_id = socle.current_tenant_id());

alter table consultation_notes enable row level security;
alter table consultation_notes force row level security;
create policy consultation_notes_tenant on consultation_notes for all
  using (tenant_id = socle.current_tenant_id()) with check (tenant_id = socle.current_tenant_id());

alter table note_reads enable row level security;
alter table note_reads force row level security;
create policy note_reads_tenant on note_reads for all
  using (tenant_id = socle.current_tenant_id()) with check (tenant_id = socle.current_tenant_id());
revoke update, delete on note_reads from public;

-- Free slots of professionals between two instants, as of `at`: the weekly hours (or that day's
-- exceptions) turned into instants in the professional's zone (Postgres' `at time zone` applies
-- the daylight-saving rules of the day), cut into slots of `slot_minutes` every
-- `slot_minutes + buffer_minutes`, minus live appointments. `only_free = false` keeps booked ones
-- (to tell "not a slot" from "taken"). Security definer: availability needs every patient's
-- appointments, which row-level security hides; it returns times only, never who booked.
create function free_slots(ids uuid[], from_at timestamptz, to_at timestamptz, at timestamptz, only_free boolean)
returns table (professional_id uuid, starts_at timestamptz, ends_at timestamptz)
language sql stable security definer set search_path = cryptocare, pg_catalog
as $$
  with days as (
    select p.id, p.time_zone, p.slot_minutes, p.buffer_minutes, d::date as day
      from professionals p,
           generate_series((from_at at time zone p.time_zone)::date - 1,
                           (to_at at time zone p.time_zone)::date, interval '1 day') d
     where p.id = any (ids)
  ),
  hours as (
    select d.*, e.opens, e.closes
      from days d join schedule_exceptions e on e.professional_id = d.id and e.day = d.day
     where e.opens is not null
    union all
    select d.*, w.opens, w.closes
      from days d join weekly_hours w on w.professional_id = d.id and w.weekday = extract(isodow from d.day)
     where not exists (select 1 from schedule_exceptions e where e.professional_id = d.id and e.day = d.day)
  ),
  windows as (
    select id, slot_minutes, buffer_minutes,
           (day + opens) at time zone time_zone as opens_at,
           (day + closes) at time zone time_zone as closes_at
      from hours
  ),
  slots as (
    select w.id, s as starts_at, s + make_interval(mins => w.slot_minutes) as ends_at,
           s + make_interval(mins => w.slot_minutes + w.buffer_minutes) as blocks_until
      from windows w,
           generate_series(w.opens_at, w.closes_at - make_interval(mins => w.slot_minutes),
                           make_interval(mins => w.slot_minutes + w.buffer_minutes)) s
  )
  select s.id, s.starts_at, s.ends_at
    from slots s
   where s.starts_at >= from_at and s.starts_at < to_at
     and (not only_free or not exists (
       select 1 from appointments a
        where a.professional_id = s.id
          and (a.status = 'confirmed' or (a.status = 'held' and a.hold_expires_at > at))
          and a.during && tstzrange(s.starts_at, s.blocks_until)))
   order by s.id, s.starts_at
$$;

-- Holds past their expiry that overlap `range`, marked expired (returns them): run before a new
-- hold is placed, so a hold the expiry job has not reached yet does not keep a paid-for slot from
-- a patient. Security definer for the same reason as free_slots: the holds are other patients'.
create function expire_stale_holds(professional uuid, range tstzrange, at timestamptz)
returns table (id uuid, patient_id uuid, tenant_id uuid)
language sql volatile security definer set search_path = cryptocare, pg_catalog
as $$
  update appointments a set status = 'expired', updated_at = at
   where a.professional_id = professional and a.status = 'held' and a.hold_expires_at <= at
     and a.during && range
  returning a.id, a.patient_id, a.tenant_id
$$;

-- Moves the professional's availability_version whenever their free slots may have changed.
create function touch_availability() returns trigger
language plpgsql security definer set search_path = cryptocare, pg_catalog
as $$
begin
  update professionals set availability_version = availability_version + 1
   where id = coalesce(new.professional_id, old.professional_id);
  return null;
end
$$;
create trigger appointments_touch_availability
  after insert or update of status, starts_at, during or delete on appointments
  for each row execute function touch_availability();
create trigger weekly_hours_touch_availability
  after insert or update or delete on weekly_hours
  for each row execute function touch_availability();
create trigger schedule_exceptions_touch_availability
  after insert or update or delete on schedule_exceptions
  for each row execute function touch_availability();


-- Confirmed appointments starting within `lead` of `at` whose reminder `kind` ('24h' or '1h') is
-- not sent yet, across practices: what the reminder cron job walks (each reminder is then sent in
-- a transaction of the appointment's practice). Ids and practices only.
create function due_reminders(kind text, at timestamptz, lead interval)
returns table (id uuid, tenant_id uuid)
language sql stable security definer set search_path = cryptocare, pg_catalog
as $$
  select a.id, a.tenant_id from appointments a
   where a.status = 'confirmed' and a.starts_at > at and a.starts_at <= at + lead
     and case kind when '24h' then a.reminded_24h_at is null else a.reminded_1h_at is null end
   order by a.starts_at
   limit 1000
$$;
