import { randomUUID } from 'node:crypto';
import type { Clock, SharedState } from 'socle';
import { cryptocareErrors } from './cryptocare.errors.js';
import type {
  DirectoryStore,
  FreeSlot,
  Practice,
  Professional,
  SearchCriteria,
  WeeklyHours,
} from './directory.store.js';
import { isTimeZone } from './time-zones.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** How many next free slots the cache keeps per professional (a search shows the first few). */
const CACHED_SLOTS = 12;
const CACHE_TTL_MS = 15 * 60 * 1000;
/**
 * How far ahead free slots are computed first for the cache: a professional open most days has
 * their next CACHED_SLOTS in it, and only those with fewer are computed again over the whole
 * `searchDays`. `cryptocare.free_slots` builds every slot of its range before the first can be
 * kept: for 11 professionals, 2 days took 2.2 ms and 14 days 16–37 ms (EXPLAIN ANALYZE on the
 * bench's directory, load ≈ 23), on every cache miss of a search.
 */
const FIRST_HORIZON_MS = 2 * DAY_MS;

export interface NewProfessional {
  readonly displayName: string;
  readonly specialties: readonly string[];
  readonly languages: readonly string[];
  readonly priceChfCents: number;
  readonly timeZone: string;
  readonly slotMinutes: number;
  readonly bufferMinutes: number;
}

export interface DirectoryServiceOptions {
  readonly store: DirectoryStore;
  readonly clock: Clock;
  /** Fleet-wide cache (memory embedded, Redis with REDIS_URL) of each professional's next free slots. */
  readonly cache: SharedState;
  /** How far ahead searches look for free slots. */
  readonly searchDays: number;
}

/**
 * The directory: practices and professionals, their hours, the distance search with each
 * professional's next free slots. Free slots are cached per professional under their
 * `availability_version`, which the database moves in the transaction of every booking,
 * cancellation, expiry or change of hours: a search reads the version with the page, so it never
 * reads a cache entry from before a booking (never stale), and nothing needs invalidating.
 */
export function createDirectoryService({ store, clock, cache, searchDays }: DirectoryServiceOptions) {
  const now = () => clock.now();

  async function nextFreeSlots(
    professionals: readonly { id: string; availabilityVersion: string }[],
    count: number,
  ): Promise<Map<string, FreeSlot[]>> {
    const at = now();
    const result = new Map<string, FreeSlot[]>();
    const missing: { id: string; availabilityVersion: string }[] = [];
    await Promise.all(
      professionals.map(async (professional) => {
        const cached = await cache.cachedEvent(
          'slots',
          `${professional.id}:${professional.availabilityVersion}`,
        );
        if (cached === undefined) return missing.push(professional);
        const entry = JSON.parse(cached) as { slots: [string, string][]; complete: boolean };
        const upcoming = entry.slots
          .map(([startsAt, endsAt]) => ({
            professionalId: professional.id,
            startsAt: new Date(startsAt),
            endsAt: new Date(endsAt),
          }))
          .filter((slot) => slot.startsAt > at);
        // Slots that started since the entry was made are dropped; when too few are left of a full
        // list, the rest must be computed again.
        if (upcoming.length < count && !entry.complete) return missing.push(professional);
        result.set(professional.id, upcoming.slice(0, count));
      }),
    );
    if (missing.length > 0) {
      // A slot starting right now can no longer be booked: from the next millisecond on.
      const from = new Date(at.getTime() + 1);
      const until = at.getTime() + searchDays * DAY_MS;
      const near = Math.min(until, at.getTime() + FIRST_HORIZON_MS);
      const slotsOf = new Map<string, FreeSlot[]>(missing.map((professional) => [professional.id, []]));
      const compute = async (ids: readonly string[], to: number) => {
        for (const id of ids) slotsOf.set(id, []);
        for (const slot of await store.slots(ids, from, new Date(to), at))
          slotsOf.get(slot.professionalId)?.push(slot);
      };
      await compute([...slotsOf.keys()], near);
      // The near range is the start of the whole one (slots come in order): whoever has their
      // next CACHED_SLOTS in it is done; the others are computed over the whole range.
      const short = [...slotsOf].filter(([, own]) => own.length < CACHED_SLOTS).map(([id]) => id);
      if (near < until && short.length > 0) await compute(short, until);
      for (const professional of missing) {
        const own = (slotsOf.get(professional.id) ?? []).slice(0, CACHED_SLOTS);
        result.set(professional.id, own.slice(0, count));
        await cache.cacheEvent(
          'slots',
          `${professional.id}:${professional.availabilityVersion}`,
          JSON.stringify({
            slots: own.map((slot) => [slot.startsAt.toISOString(), slot.endsAt.toISOString()]),
            complete: own.length < CACHED_SLOTS,
          }),
          CACHE_TTL_MS,
        );
      }
    }
    return result;
  }

  return {
    /** Creates or updates the practice profile of the organization the caller administers. */
    upsertPractice: (practice: Practice, userId: string) => store.upsertPractice(practice, userId),

    async practice(orgId: string): Promise<Practice> {
      const practice = await store.practice(orgId);
      if (practice === undefined) throw cryptocareErrors.practiceNotFound(orgId);
      return practice;
    },

    /** Creates the caller's professional profile (one per user). */
    async createProfessional(userId: string, profile: NewProfessional): Promise<Professional> {
      if (!isTimeZone(profile.timeZone)) throw cryptocareErrors.unknownTimeZone(profile.timeZone);
      const id = randomUUID();
      if (!(await store.insertProfessional({ id, userId, ...profile }, now())))
        throw cryptocareErrors.alreadyProfessional();
      return (await store.professional(id)) as Professional;
    },

    async professional(id: string): Promise<Professional> {
      const professional = await store.professional(id);
      if (professional === undefined) throw cryptocareErrors.professionalNotFound(id);
      return professional;
    },

    async professionalOfUser(userId: string): Promise<Professional> {
      const professional = await store.professionalOfUser(userId);
      if (professional === undefined) throw cryptocareErrors.notAProfessional();
      return professional;
    },

    /** The caller (a member of the organization) practises there from now on. */
    async joinPractice(acting: { orgId: string; userId: string }): Promise<Professional> {
      const professional = await this.professionalOfUser(acting.userId);
      await this.practice(acting.orgId);
      await store.joinPractice(acting, professional.id);
      return (await store.professional(professional.id)) as Professional;
    },

    async setWeeklyHours(userId: string, hours: readonly WeeklyHours[]): Promise<void> {
      const professional = await this.professionalOfUser(userId);
      const sorted = [...hours].sort((a, b) => a.weekday - b.weekday || a.opens.localeCompare(b.opens));
      for (let index = 1; index < sorted.length; index++) {
        const previous = sorted[index - 1] as WeeklyHours;
        const current = sorted[index] as WeeklyHours;
        if (previous.weekday === current.weekday && current.opens < previous.closes)
          throw cryptocareErrors.overlappingHours(current.weekday);
      }
      await store.replaceWeeklyHours(userId, professional.id, sorted);
    },

    /** A day's own hours (empty: closed, a holiday), replacing that day's weekly hours. */
    async setDayException(
      userId: string,
      day: string,
      hours: readonly { opens: string; closes: string }[],
    ): Promise<void> {
      const professional = await this.professionalOfUser(userId);
      await store.replaceDayExceptions(
        userId,
        professional.id,
        day,
        hours.length === 0
          ? [{ id: randomUUID(), opens: null, closes: null }]
          : hours.map((range) => ({ id: randomUUID(), ...range })),
      );
    },

    /** Back to the weekly hours on that day. */
    async clearDayException(userId: string, day: string): Promise<void> {
      const professional = await this.professionalOfUser(userId);
      await store.replaceDayExceptions(userId, professional.id, day, []);
    },

    schedule: (professionalId: string) => store.schedule(professionalId),

    /** Free slots of one professional between two instants (at most `searchDays` apart). */
    async freeSlots(professionalId: string, from: Date, to: Date): Promise<FreeSlot[]> {
      const at = now();
      const start = from <= at ? new Date(at.getTime() + 1) : from;
      const end = new Date(Math.min(to.getTime(), start.getTime() + searchDays * DAY_MS));
      const slots = await store.slotsOf(professionalId, start, end, at);
      if (slots === undefined) throw cryptocareErrors.professionalNotFound(professionalId);
      return slots;
    },

    /** A professional's page: profile, practices and schedule (one statement). */
    async professionalPage(id: string) {
      const page = await store.professionalPage(id);
      if (page === undefined) throw cryptocareErrors.professionalNotFound(id);
      return page;
    },

    /** Professionals near a point, nearest first, each with their next free slots. */
    async search(criteria: SearchCriteria, slotsEach: number) {
      const rows = await store.search({ ...criteria, limit: criteria.limit + 1 });
      const page = rows.slice(0, criteria.limit);
      const slots = await nextFreeSlots(page, slotsEach);
      const last = page.at(-1);
      return {
        results: page.map((row) => ({ ...row, nextSlots: slots.get(row.id) ?? [] })),
        next:
          rows.length > criteria.limit && last !== undefined
            ? { distanceMeters: last.distanceMeters, id: last.id }
            : undefined,
      };
    },
  };
}

export type DirectoryService = ReturnType<typeof createDirectoryService>;
