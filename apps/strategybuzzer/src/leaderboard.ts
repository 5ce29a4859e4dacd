import { type Clock, SocleError } from 'socle';
import type { LeaderboardKey, LeaderboardRow, LeaderboardStore } from './leaderboard.store.js';

/** The Monday (UTC) starting the week of `at`, as `YYYY-MM-DD`: weekly leaderboards reset then. */
export function weekStart(at: Date): string {
  const day = (at.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const monday = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() - day));
  return monday.toISOString().slice(0, 10);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const invalidCursor = () =>
  new SocleError('strategybuzzer.invalid_cursor', 'The cursor is not one this server gave', {
    status: 400,
    details: { field: 'querystring/cursor' },
  });

/** An opaque cursor: the last row of a page (its points and user id), base64url JSON. */
export function encodeCursor(key: LeaderboardKey): string {
  return Buffer.from(JSON.stringify([key.points, key.userId])).toString('base64url');
}

export function decodeCursor(cursor: string): LeaderboardKey {
  try {
    const [points, userId] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (
      typeof points === 'number' &&
      Number.isSafeInteger(points) &&
      typeof userId === 'string' &&
      UUID.test(userId)
    )
      return { points, userId };
  } catch {
    // answered below
  }
  throw invalidCursor();
}

export type LeaderboardPeriod = 'global' | 'week';

export interface LeaderboardPage {
  readonly period: LeaderboardPeriod;
  /** The week's Monday (UTC) for `week`; null for `global`. */
  readonly week: string | null;
  readonly players: readonly LeaderboardRow[];
  /** Pass it back for the next page; null on the last. */
  readonly nextCursor: string | null;
}

/**
 * Global and weekly leaderboards in pages of `limit` players, each page found by the index from
 * where the previous one ended (keyset, no OFFSET: the millionth player costs what the first
 * does). Equal points are ordered by user id, so a page never repeats or skips a player.
 */
export function createLeaderboard({ store, clock }: { store: LeaderboardStore; clock: Clock }) {
  return {
    async page(
      period: LeaderboardPeriod,
      limit: number,
      cursor: string | undefined,
    ): Promise<LeaderboardPage> {
      const after = cursor === undefined ? undefined : decodeCursor(cursor);
      const week = period === 'week' ? weekStart(clock.now()) : null;
      const rows =
        week === null
          ? await store.globalPage(limit + 1, after)
          : await store.weeklyPage(week, limit + 1, after);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        period,
        week,
        players: page,
        nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last) : null,
      };
    },
  };
}

export type Leaderboard = ReturnType<typeof createLeaderboard>;
