import { type Database, sql } from 'socle';
import type { BuzzerTables } from './buzzer.tables.js';

/** A leaderboard row: the player and the points it is ranked by (all-time or the week's). */
export interface LeaderboardRow {
  readonly userId: string;
  readonly name: string;
  readonly level: number;
  readonly points: number;
  readonly games: number;
  readonly wins: number;
}

/** Where a page starts: after this player (keyset on points descending, then user id). */
export interface LeaderboardKey {
  readonly points: number;
  readonly userId: string;
}

/** A transaction or the database: the weekly scores are written in the game's own transaction. */
type Executor = Database<BuzzerTables>['kysely'];

const toRow = (row: {
  userId: string;
  name: string;
  level: number;
  points: string | number | bigint;
  games: number;
  wins: number;
}): LeaderboardRow => ({ ...row, points: Number(row.points) });

/** The leaderboards' SQL: pages walk the indexes `players_by_points` and `weekly_scores_by_points`. */
export function createLeaderboardStore(db: Database<BuzzerTables>) {
  const k = db.kysely;
  return {
    /** Adds a finished game's results to the week's scores (in the transaction saving the game). */
    async addWeeklyScores(
      trx: Executor,
      week: string,
      results: readonly { userId: string; score: number; won: boolean }[],
    ): Promise<void> {
      if (results.length === 0) return;
      await trx
        .insertInto('strategybuzzer.weekly_scores')
        .values(
          results.map((result) => ({
            week,
            user_id: result.userId,
            points: result.score,
            games: 1,
            wins: result.won ? 1 : 0,
          })),
        )
        .onConflict((conflict) =>
          conflict.columns(['week', 'user_id']).doUpdateSet((eb) => ({
            points: eb('strategybuzzer.weekly_scores.points', '+', eb.ref('excluded.points')),
            games: eb('strategybuzzer.weekly_scores.games', '+', eb.ref('excluded.games')),
            wins: eb('strategybuzzer.weekly_scores.wins', '+', eb.ref('excluded.wins')),
          })),
        )
        .execute();
    },

    /** All time: most points first. */
    async globalPage(limit: number, after: LeaderboardKey | undefined): Promise<LeaderboardRow[]> {
      let query = k
        .selectFrom('strategybuzzer.players')
        .select(['user_id as userId', 'name', 'level', 'points', 'games', 'wins'])
        .orderBy('points', 'desc')
        .orderBy('user_id')
        .limit(limit);
      if (after !== undefined)
        query = query.where((eb) =>
          eb.or([
            eb('points', '<', after.points),
            eb.and([eb('points', '=', after.points), eb('user_id', '>', after.userId)]),
          ]),
        );
      return (await query.execute()).map(toRow);
    },

    /** The week starting `week` (a Monday, `YYYY-MM-DD`): most points won that week first. */
    async weeklyPage(
      week: string,
      limit: number,
      after: LeaderboardKey | undefined,
    ): Promise<LeaderboardRow[]> {
      let query = k
        .selectFrom('strategybuzzer.weekly_scores as w')
        .innerJoin('strategybuzzer.players as p', 'p.user_id', 'w.user_id')
        .select(['w.user_id as userId', 'p.name', 'p.level', 'w.points', 'w.games', 'w.wins'])
        .where('w.week', '=', sql<string>`${week}::date`)
        .orderBy('w.points', 'desc')
        .orderBy('w.user_id')
        .limit(limit);
      if (after !== undefined)
        query = query.where((eb) =>
          eb.or([
            eb('w.points', '<', after.points),
            eb.and([eb('w.points', '=', after.points), eb('w.user_id', '>', after.userId)]),
          ]),
        );
      return (await query.execute()).map(toRow);
    },

    /** A player's scores of the week, if they played. */
    async weekOf(userId: string, week: string) {
      const row = await k
        .selectFrom('strategybuzzer.weekly_scores')
        .select(['points', 'games', 'wins'])
        .where('user_id', '=', userId)
        .where('week', '=', sql<string>`${week}::date`)
        .executeTakeFirst();
      return row === undefined
        ? { points: 0, games: 0, wins: 0 }
        : { points: Number(row.points), games: row.games, wins: row.wins };
    },
  };
}

export type LeaderboardStore = ReturnType<typeof createLeaderboardStore>;
