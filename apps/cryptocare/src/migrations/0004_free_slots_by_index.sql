-- free_slots, same result, cheaper: each day's hours are read through the primary keys
-- (weekly_hours by professional and weekday, schedule_exceptions by professional and day) in a
-- lateral join. Before, the planner saw 1,000 rows per generate_series and a `weekday = extract(…)`
-- comparison made on numeric (extract returns numeric), which no index serves: every call read
-- and sorted the whole weekly_hours table of the directory, then merged. Measured on the bench's
-- directory (150 professionals, Postgres 15, backend CPU per call): one professional over three
-- days 1.9 → 1.07 ms; an empty range (the fixed cost) 1.9 → 0.7 ms; and the old cost grew with the
-- directory, the new one does not.
create or replace function free_slots(ids uuid[], from_at timestamptz, to_at timestamptz, at timestamptz, only_free boolean)
returns table (professional_id uuid, starts_at timestamptz, ends_at timestamptz)
language sql stable security definer set search_path = cryptocare, pg_catalog set jit = off
as $$
  with days as (
    select p.id, p.time_zone, p.slot_minutes, p.buffer_minutes, d::date as day
      from professionals p,
           generate_series((from_at at time zone p.time_zone)::date - 1,
                           (to_at at time zone p.time_zone)::date, interval '1 day') d
     where p.id = any (ids)
  ),
  windows as (
    select d.id, d.slot_minutes, d.buffer_minutes,
           (d.day + h.opens) at time zone d.time_zone as opens_at,
           (d.day + h.closes) at time zone d.time_zone as closes_at
      from days d
      cross join lateral (
        -- A day with exceptions has their hours only (none with hours: closed).
        select e.opens, e.closes from schedule_exceptions e
         where e.professional_id = d.id and e.day = d.day and e.opens is not null
        union all
        select w.opens, w.closes from weekly_hours w
         where w.professional_id = d.id and w.weekday = extract(isodow from d.day)::smallint
           and not exists (select 1 from schedule_exceptions e where e.professional_id = d.id and e.day = d.day)
      ) h
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
