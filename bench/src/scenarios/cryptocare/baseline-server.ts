/**
 * Child process: the hand-written baseline of CryptoCare's search — bare Fastify 5 and a `pg` Pool
 * of Socle's size on the database the Socle server seeded, `GET /cryptocare/search` with the same
 * SQL (the distance search over the GiST index, then `cryptocare.free_slots` for the professionals
 * whose next slots are not cached), named prepared statements, the same in-memory cache of the
 * next 12 slots per professional under its `availability_version`, and the same body. No
 * authentication, no request scope, no tenant settings: what Socle adds is the price of those.
 */
import Fastify from 'fastify';
import pg from 'pg';
import { runServerChild } from '../../server-child.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const SEARCH_DAYS = 14;
const CACHED_SLOTS = 12;
const CACHE_TTL_MS = 15 * 60 * 1000;
/** As CryptoCare: slots over 2 days first, the whole window only for whoever has fewer than CACHED_SLOTS there. */
const FIRST_HORIZON_MS = 2 * DAY_MS;

const SEARCH_SQL = `
  with near as (
    select pr.org_id, pr.name, pr.address,
           public.earth_distance(public.ll_to_earth($1, $2), public.ll_to_earth(pr.latitude, pr.longitude)) as distance
      from cryptocare.practices pr
     where public.earth_box(public.ll_to_earth($1, $2), $3) @> public.ll_to_earth(pr.latitude, pr.longitude)
  ),
  nearest as (
    select distinct on (p.id) p.id, p.display_name, p.specialties, p.languages, p.price_chf_cents,
           p.time_zone, p.availability_version, near.org_id, near.name, near.address, near.distance
      from near
      join cryptocare.professional_practices pp on pp.org_id = near.org_id
      join cryptocare.professionals p on p.id = pp.professional_id
     where near.distance <= $3
       and ($4::text is null or p.specialties @> array[$4::text])
       and ($5::text is null or p.languages @> array[$5::text])
       and ($6::integer is null or p.price_chf_cents <= $6::integer)
     order by p.id, near.distance
  )
  select id, display_name as "displayName", specialties, languages,
         price_chf_cents as "priceChfCents", time_zone as "timeZone",
         availability_version::text as "availabilityVersion", org_id as "orgId",
         name as "practiceName", address, distance as "distanceMeters"
    from nearest
   order by distance, id
   limit $7`;

const SLOTS_SQL = `select professional_id as "professionalId", starts_at as "startsAt", ends_at as "endsAt"
  from cryptocare.free_slots($1::uuid[], $2, $3, $4, true)`;

interface Row {
  id: string;
  displayName: string;
  specialties: string[];
  languages: string[];
  priceChfCents: number;
  timeZone: string;
  availabilityVersion: string;
  orgId: string;
  practiceName: string;
  address: string;
  distanceMeters: number;
}
type Slot = { startsAt: Date; endsAt: Date };

const zurich = new Intl.DateTimeFormat('sv-SE', {
  timeZone: 'Europe/Zurich',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});

runServerChild(async (settings) => {
  if (settings.databaseUrl === undefined) throw new Error('cryptocare runs on Postgres only');
  const pool = new pg.Pool({ connectionString: settings.databaseUrl, max: settings.poolMax });
  pool.on('error', (error) => console.error('idle pg client failed:', error));
  const cache = new Map<string, { slots: Slot[]; complete: boolean; until: number }>();

  async function nextSlots(rows: readonly Row[], count: number) {
    const at = new Date();
    const result = new Map<string, Slot[]>();
    const missing: Row[] = [];
    for (const row of rows) {
      const entry = cache.get(`${row.id}:${row.availabilityVersion}`);
      if (entry === undefined || entry.until < at.getTime()) {
        missing.push(row);
        continue;
      }
      const upcoming = entry.slots.filter((slot) => slot.startsAt > at);
      if (upcoming.length < count && !entry.complete) missing.push(row);
      else result.set(row.id, upcoming.slice(0, count));
    }
    if (missing.length > 0) {
      const until = at.getTime() + SEARCH_DAYS * DAY_MS;
      const near = Math.min(until, at.getTime() + FIRST_HORIZON_MS);
      const slotsOf = new Map<string, Slot[]>(missing.map((row) => [row.id, []]));
      const compute = async (ids: string[], to: number) => {
        for (const id of ids) slotsOf.set(id, []);
        const { rows } = await pool.query<Slot & { professionalId: string }>({
          name: 'cryptocare_free_slots',
          text: SLOTS_SQL,
          values: [ids, new Date(at.getTime() + 1), new Date(to), at],
        });
        for (const { professionalId, ...slot } of rows) slotsOf.get(professionalId)?.push(slot);
      };
      await compute([...slotsOf.keys()], near);
      const short = [...slotsOf].filter(([, own]) => own.length < CACHED_SLOTS).map(([id]) => id);
      if (near < until && short.length > 0) await compute(short, until);
      for (const row of missing) {
        const own = (slotsOf.get(row.id) ?? []).slice(0, CACHED_SLOTS);
        result.set(row.id, own.slice(0, count));
        cache.set(`${row.id}:${row.availabilityVersion}`, {
          slots: own,
          complete: own.length < CACHED_SLOTS,
          until: at.getTime() + CACHE_TTL_MS,
        });
      }
    }
    return result;
  }

  const app = Fastify({ logger: false });
  app.get('/cryptocare/search', async (request) => {
    const query = request.query as Record<string, string | undefined>;
    const limit = Number(query.limit ?? 20);
    const { rows } = await pool.query<Row>({
      name: 'cryptocare_search',
      text: SEARCH_SQL,
      values: [
        Number(query.latitude),
        Number(query.longitude),
        Number(query.radiusKm ?? 50) * 1000,
        query.specialty ?? null,
        query.language ?? null,
        query.maxPriceChf === undefined ? null : Math.round(Number(query.maxPriceChf) * 100),
        limit + 1,
      ],
    });
    const page = rows.slice(0, limit);
    const slots = await nextSlots(page, 3);
    const last = page.at(-1);
    return {
      results: page.map(({ availabilityVersion: _, distanceMeters, ...row }) => ({
        ...row,
        distanceKm: Math.round(distanceMeters / 100) / 10,
        nextSlots: (slots.get(row.id) ?? []).map((slot) => ({
          startsAt: slot.startsAt.toISOString(),
          endsAt: slot.endsAt.toISOString(),
          local: zurich.format(slot.startsAt).replace(' ', 'T'),
        })),
      })),
      nextCursor:
        rows.length > limit && last !== undefined
          ? Buffer.from(JSON.stringify([last.distanceMeters, last.id])).toString('base64url')
          : null,
    };
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    async close() {
      await app.close();
      await pool.end();
    },
  };
});
