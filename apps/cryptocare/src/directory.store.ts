import { type Database, sql, type Transaction, tenantSettings } from 'socle';

/** A practice (an organization) as patients see it. */
export interface Practice {
  readonly orgId: string;
  readonly name: string;
  readonly address: string;
  readonly latitude: number;
  readonly longitude: number;
}

/** A professional's public profile. */
export interface Professional {
  readonly id: string;
  readonly userId: string;
  readonly displayName: string;
  readonly specialties: readonly string[];
  readonly languages: readonly string[];
  readonly priceChfCents: number;
  readonly timeZone: string;
  readonly slotMinutes: number;
  readonly bufferMinutes: number;
  readonly availabilityVersion: string;
  readonly practices: readonly string[];
}

export interface WeeklyHours {
  readonly weekday: number;
  readonly opens: string;
  readonly closes: string;
}

export interface ScheduleException {
  readonly day: string;
  readonly opens: string | null;
  readonly closes: string | null;
}

export interface SearchCriteria {
  readonly latitude: number;
  readonly longitude: number;
  readonly radiusKm: number;
  readonly specialty?: string | undefined;
  readonly language?: string | undefined;
  readonly maxPriceChfCents?: number | undefined;
  /** Keyset: the last row of the previous page. */
  readonly after?: { readonly distanceMeters: number; readonly id: string } | undefined;
  readonly limit: number;
}

export interface SearchRow {
  readonly id: string;
  readonly displayName: string;
  readonly specialties: string[];
  readonly languages: string[];
  readonly priceChfCents: number;
  readonly timeZone: string;
  readonly availabilityVersion: string;
  readonly orgId: string;
  readonly practiceName: string;
  readonly address: string;
  readonly distanceMeters: number;
}

/** A professional's page: the profile, each practice's details and the schedule. */
export interface ProfessionalPage {
  readonly professional: Professional;
  readonly practices: readonly Practice[];
  readonly schedule: { readonly weekly: WeeklyHours[]; readonly exceptions: ScheduleException[] };
}

export interface FreeSlot {
  readonly professionalId: string;
  readonly startsAt: Date;
  readonly endsAt: Date;
}

const PROFESSIONAL_COLUMNS = sql`p.id, p.user_id as "userId", p.display_name as "displayName",
  p.specialties, p.languages, p.price_chf_cents as "priceChfCents", p.time_zone as "timeZone",
  p.slot_minutes as "slotMinutes", p.buffer_minutes as "bufferMinutes",
  p.availability_version::text as "availabilityVersion",
  coalesce((select array_agg(pp.org_id order by pp.org_id) from cryptocare.professional_practices pp
            where pp.professional_id = p.id), '{}') as practices`;

/**
 * Every SQL statement of the directory: practices, professionals, their hours, the distance search
 * and free slots. The directory is readable by everyone; writes carry the acting organization or
 * user (`tenantSettings`), which row-level security checks.
 */
export function createDirectoryStore(db: Database) {
  const asUser = (userId: string) => db.withSettings(tenantSettings({ userId }));
  return {
    async upsertPractice(practice: Practice, userId: string): Promise<void> {
      await sql`insert into cryptocare.practices (org_id, name, address, latitude, longitude)
        values (${practice.orgId}, ${practice.name}, ${practice.address}, ${practice.latitude}, ${practice.longitude})
        on conflict (org_id) do update set name = excluded.name, address = excluded.address,
          latitude = excluded.latitude, longitude = excluded.longitude`.execute(
        db.withSettings(tenantSettings({ tenantId: practice.orgId, userId })),
      );
    },

    async practice(orgId: string): Promise<Practice | undefined> {
      const { rows } = await sql<Practice>`select org_id as "orgId", name, address, latitude, longitude
        from cryptocare.practices where org_id = ${orgId}`.execute(db.kysely);
      return rows[0];
    },

    /** Inserts the profile; false when the user already has one. */
    async insertProfessional(
      profile: Omit<Professional, 'availabilityVersion' | 'practices'>,
      at: Date,
    ): Promise<boolean> {
      const result = await sql`insert into cryptocare.professionals (id, user_id, display_name, specialties,
          languages, price_chf_cents, time_zone, slot_minutes, buffer_minutes, created_at)
        values (${profile.id}, ${profile.userId}, ${profile.displayName}, ${profile.specialties},
          ${profile.languages}, ${profile.priceChfCents}, ${profile.timeZone}, ${profile.slotMinutes},
          ${profile.bufferMinutes}, ${at})
        on conflict (user_id) do nothing`.execute(asUser(profile.userId));
      return result.numAffectedRows === 1n;
    },

    /**
     * The professional's page in one statement (one round trip instead of four: the profile, each
     * practice, the weekly hours, the exceptions), all from one snapshot.
     */
    async professionalPage(id: string): Promise<ProfessionalPage | undefined> {
      const { rows } = await sql<
        Professional & { practiceRows: Practice[]; weekly: WeeklyHours[]; exceptions: ScheduleException[] }
      >`select ${PROFESSIONAL_COLUMNS},
          coalesce((select json_agg(json_build_object('orgId', pr.org_id, 'name', pr.name,
                      'address', pr.address, 'latitude', pr.latitude, 'longitude', pr.longitude)
                      order by pr.org_id)
                      from cryptocare.professional_practices pp
                      join cryptocare.practices pr on pr.org_id = pp.org_id
                     where pp.professional_id = p.id), '[]') as "practiceRows",
          coalesce((select json_agg(json_build_object('weekday', w.weekday,
                      'opens', to_char(w.opens, 'HH24:MI'), 'closes', to_char(w.closes, 'HH24:MI'))
                      order by w.weekday, w.opens)
                      from cryptocare.weekly_hours w where w.professional_id = p.id), '[]') as weekly,
          coalesce((select json_agg(json_build_object('day', to_char(e.day, 'YYYY-MM-DD'),
                      'opens', to_char(e.opens, 'HH24:MI'), 'closes', to_char(e.closes, 'HH24:MI'))
                      order by e.day, e.opens nulls first)
                      from cryptocare.schedule_exceptions e where e.professional_id = p.id), '[]') as exceptions
        from cryptocare.professionals p where p.id = ${id}`.execute(db.kysely);
      const row = rows[0];
      if (row === undefined) return undefined;
      const { practiceRows, weekly, exceptions, ...professional } = row;
      return { professional, practices: practiceRows, schedule: { weekly, exceptions } };
    },

    /**
     * The professional and the schedule's slot starting at `startsAt` (booked or not), in one
     * statement: undefined when there is no such professional, `slot` undefined when no slot
     * starts then.
     */
    async professionalSlot(
      id: string,
      startsAt: Date,
      at: Date,
    ): Promise<{ professional: Professional; slot: FreeSlot | undefined } | undefined> {
      const { rows } = await sql<Professional & { slotStartsAt: Date | null; slotEndsAt: Date | null }>`
        select ${PROFESSIONAL_COLUMNS}, s.starts_at as "slotStartsAt", s.ends_at as "slotEndsAt"
          from cryptocare.professionals p
          left join lateral cryptocare.free_slots(array[p.id], ${startsAt},
            ${new Date(startsAt.getTime() + 1)}, ${at}, false) s on true
         where p.id = ${id}
         limit 1`.execute(db.kysely);
      const row = rows[0];
      if (row === undefined) return undefined;
      const { slotStartsAt, slotEndsAt, ...professional } = row;
      return {
        professional,
        slot:
          slotStartsAt === null || slotEndsAt === null
            ? undefined
            : { professionalId: id, startsAt: slotStartsAt, endsAt: slotEndsAt },
      };
    },

    async professional(id: string): Promise<Professional | undefined> {
      const { rows } = await sql<Professional>`select ${PROFESSIONAL_COLUMNS}
        from cryptocare.professionals p where p.id = ${id}`.execute(db.kysely);
      return rows[0];
    },

    /** The professional's account, read in the caller's transaction. */
    async professionalUserId(trx: Transaction<unknown>, id: string): Promise<string | null> {
      const { rows } = await sql<{ userId: string }>`select user_id as "userId"
        from cryptocare.professionals where id = ${id}`.execute(trx);
      return rows[0]?.userId ?? null;
    },

    async professionalOfUser(userId: string): Promise<Professional | undefined> {
      const { rows } = await sql<Professional>`select ${PROFESSIONAL_COLUMNS}
        from cryptocare.professionals p where p.user_id = ${userId}`.execute(db.kysely);
      return rows[0];
    },

    /** Adds the professional to a practice they are a member of (checked by the route). */
    async joinPractice(acting: { orgId: string; userId: string }, professionalId: string): Promise<void> {
      await sql`insert into cryptocare.professional_practices (professional_id, org_id)
        values (${professionalId}, ${acting.orgId}) on conflict do nothing`.execute(
        db.withSettings(tenantSettings({ tenantId: acting.orgId, userId: acting.userId })),
      );
    },

    /** Replaces the professional's weekly hours, in one transaction. */
    replaceWeeklyHours: (userId: string, professionalId: string, hours: readonly WeeklyHours[]) =>
      db.transaction(
        async (trx) => {
          await sql`delete from cryptocare.weekly_hours where professional_id = ${professionalId}`.execute(
            trx,
          );
          for (const { weekday, opens, closes } of hours)
            await sql`insert into cryptocare.weekly_hours (professional_id, weekday, opens, closes)
              values (${professionalId}, ${weekday}, ${opens}::time, ${closes}::time)`.execute(trx);
        },
        { settings: tenantSettings({ userId }) },
      ),

    /** Replaces the exceptions of one day (none: back to the weekly hours). */
    replaceDayExceptions: (
      userId: string,
      professionalId: string,
      day: string,
      rows: readonly { id: string; opens: string | null; closes: string | null }[],
    ) =>
      db.transaction(
        async (trx) => {
          await sql`delete from cryptocare.schedule_exceptions
            where professional_id = ${professionalId} and day = ${day}::date`.execute(trx);
          for (const row of rows)
            await sql`insert into cryptocare.schedule_exceptions (id, professional_id, day, opens, closes)
              values (${row.id}, ${professionalId}, ${day}::date, ${row.opens}::time, ${row.closes}::time)`.execute(
              trx,
            );
        },
        { settings: tenantSettings({ userId }) },
      ),

    async schedule(professionalId: string) {
      const hours = await sql<WeeklyHours>`select weekday, to_char(opens, 'HH24:MI') as opens,
          to_char(closes, 'HH24:MI') as closes from cryptocare.weekly_hours
        where professional_id = ${professionalId} order by weekday, opens`.execute(db.kysely);
      const exceptions = await sql<ScheduleException>`select to_char(day, 'YYYY-MM-DD') as day,
          to_char(opens, 'HH24:MI') as opens, to_char(closes, 'HH24:MI') as closes
        from cryptocare.schedule_exceptions where professional_id = ${professionalId}
        order by day, opens nulls first`.execute(db.kysely);
      return { weekly: hours.rows, exceptions: exceptions.rows };
    },

    /**
     * Professionals with a practice within the radius, nearest first (their nearest practice),
     * filtered; keyset-paginated on (distance, id). The GiST index on `ll_to_earth` serves the
     * `earth_box` test; `earth_distance` then trims the box's corners.
     */
    async search(criteria: SearchCriteria): Promise<SearchRow[]> {
      const origin = sql`public.ll_to_earth(${criteria.latitude}, ${criteria.longitude})`;
      const radius = criteria.radiusKm * 1000;
      const { rows } = await sql<SearchRow>`
        with near as (
          select pr.org_id, pr.name, pr.address,
                 public.earth_distance(${origin}, public.ll_to_earth(pr.latitude, pr.longitude)) as distance
            from cryptocare.practices pr
           where public.earth_box(${origin}, ${radius}) @> public.ll_to_earth(pr.latitude, pr.longitude)
        ),
        nearest as (
          select distinct on (p.id) p.id, p.display_name, p.specialties, p.languages, p.price_chf_cents,
                 p.time_zone, p.availability_version, near.org_id, near.name, near.address, near.distance
            from near
            join cryptocare.professional_practices pp on pp.org_id = near.org_id
            join cryptocare.professionals p on p.id = pp.professional_id
           where near.distance <= ${radius}
             and (${criteria.specialty ?? null}::text is null or p.specialties @> array[${criteria.specialty ?? null}::text])
             and (${criteria.language ?? null}::text is null or p.languages @> array[${criteria.language ?? null}::text])
             and (${criteria.maxPriceChfCents ?? null}::integer is null or p.price_chf_cents <= ${criteria.maxPriceChfCents ?? null}::integer)
           order by p.id, near.distance
        )
        select id, display_name as "displayName", specialties, languages,
               price_chf_cents as "priceChfCents", time_zone as "timeZone",
               availability_version::text as "availabilityVersion", org_id as "orgId",
               name as "practiceName", address, distance as "distanceMeters"
          from nearest
         where ${criteria.after === undefined}
            or (distance, id) > (${criteria.after?.distanceMeters ?? 0}::float8, ${criteria.after?.id ?? null}::uuid)
         order by distance, id
         limit ${criteria.limit}`.execute(db.kysely);
      return rows;
    },

    /**
     * One professional's free slots between two instants, and whether the professional exists, in
     * one statement (undefined: no such professional).
     */
    async slotsOf(professionalId: string, from: Date, to: Date, at: Date): Promise<FreeSlot[] | undefined> {
      const { rows } = await sql<{ known: boolean; startsAt: Date | null; endsAt: Date | null }>`
        select p.id is not null as known, s.starts_at as "startsAt", s.ends_at as "endsAt"
          from (select ${professionalId}::uuid as id) wanted
          left join cryptocare.professionals p on p.id = wanted.id
          left join lateral cryptocare.free_slots(array[p.id], ${from}, ${to}, ${at}, true) s on true
         order by s.starts_at`.execute(db.kysely);
      if (rows[0]?.known !== true) return undefined;
      const slots: FreeSlot[] = [];
      for (const row of rows)
        if (row.startsAt !== null && row.endsAt !== null)
          slots.push({ professionalId, startsAt: row.startsAt, endsAt: row.endsAt });
      return slots;
    },

    /** Free slots (or, with `onlyFree` false, every slot of the schedule) between two instants. */
    async slots(
      professionalIds: readonly string[],
      from: Date,
      to: Date,
      at: Date,
      onlyFree = true,
    ): Promise<FreeSlot[]> {
      const { rows } = await sql<FreeSlot>`select professional_id as "professionalId",
          starts_at as "startsAt", ends_at as "endsAt"
        from cryptocare.free_slots(${professionalIds}::uuid[], ${from}, ${to}, ${at}, ${onlyFree})`.execute(
        db.kysely,
      );
      return rows;
    },
  };
}

export type DirectoryStore = ReturnType<typeof createDirectoryStore>;
