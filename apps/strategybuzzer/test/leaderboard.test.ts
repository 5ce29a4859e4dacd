import { randomUUID } from 'node:crypto';
import { type TestUser, testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { weekStart } from '../src/leaderboard.js';
import { type BuzzerWorld, caller, startBuzzerWorld } from './support.js';

describe('weekStart', () => {
  it('is the Monday (UTC) of the week, Sunday included', () => {
    expect(weekStart(new Date('2026-12-07T00:00:00Z'))).toBe('2026-12-07'); // a Monday
    expect(weekStart(new Date('2026-12-13T23:59:59Z'))).toBe('2026-12-07'); // its Sunday
    expect(weekStart(new Date('2027-01-01T12:00:00Z'))).toBe('2026-12-28'); // across a year
  });
});

const targets = await testDatabaseTargets();

interface Entry {
  userId: string;
  points: number;
}

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer leaderboards [%s]',
  (dialect, target) => {
    let world: BuzzerWorld;
    let players: TestUser[] = [];

    beforeAll(async () => {
      if (!target.available) return;
      world = await startBuzzerWorld(target);
      players = await Promise.all(Array.from({ length: 12 }, () => world.socle.newUser()));
      for (const [index, player] of players.entries())
        await world.services.game.profile(player.userId, `P${String(index).padStart(2, '0')}`);
    });
    afterAll(() => world?.socle.dispose());

    /** A finished two-player game saved as the game saves it. */
    async function played(endedAt: Date, scores: readonly [TestUser, number][]) {
      await world.services.store.saveGame({
        id: randomUUID(),
        region: 'local',
        mode: 'classic',
        language: 'fr',
        code: undefined,
        startedAt: new Date(endedAt.getTime() - 60_000),
        endedAt,
        results: [...scores]
          .sort((a, b) => b[1] - a[1])
          .map(([user, score], index) => ({
            userId: user.userId,
            name: 'x',
            score,
            streak: 0,
            rank: index + 1,
            bestStreak: 1,
            correct: 1,
            wrong: 0,
          })),
      });
    }

    async function walk(period: 'global' | 'week', limit: number) {
      const pages: Entry[][] = [];
      let cursor: string | null = null;
      do {
        const query = `period=${period}&limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`;
        const answer = await world.socle.app.inject({
          method: 'GET',
          url: `/strategybuzzer/leaderboard?${query}`,
        });
        expect(answer.statusCode).toBe(200);
        const body = answer.json() as { players: Entry[]; nextCursor: string | null; week: string | null };
        expect(body.week).toBe(period === 'week' ? weekStart(new Date()) : null);
        pages.push(body.players.map(({ userId, points }) => ({ userId, points })));
        cursor = body.nextCursor;
      } while (cursor !== null && pages.length < 20);
      return pages;
    }

    it.skipIf(!target.available)(
      'pages the global and the weekly leaderboard by cursor: ordered, each player once, last week apart',
      async () => {
        const now = new Date();
        const lastWeek = new Date(now.getTime() - 8 * 24 * 3600 * 1000);
        const [a, b, c, d, e] = players as [TestUser, TestUser, TestUser, TestUser, TestUser];
        await played(now, [
          [a, 40],
          [b, 30],
        ]);
        await played(now, [
          [c, 30],
          [d, 10],
        ]);
        await played(now, [
          [a, 5],
          [c, 20],
        ]);
        await played(lastWeek, [
          [e, 500],
          [d, 15],
        ]);

        const global = await walk('global', 5);
        expect(global.map((page) => page.length)).toEqual([5, 5, 2]);
        const all = global.flat();
        expect(new Set(all.map((entry) => entry.userId)).size).toBe(12);
        expect(all.slice(0, 5)).toEqual([
          { userId: e.userId, points: 500 },
          { userId: c.userId, points: 50 },
          { userId: a.userId, points: 45 },
          { userId: b.userId, points: 30 },
          { userId: d.userId, points: 25 },
        ]);
        // Ties (the players who never played, 0 points) in user id order, each once.
        const zeros = all.slice(5).map((entry) => entry.userId);
        expect(zeros).toEqual([...zeros].sort());

        const week = (await walk('week', 2)).flat();
        expect(week).toEqual([
          { userId: c.userId, points: 50 },
          { userId: a.userId, points: 45 },
          { userId: b.userId, points: 30 },
          { userId: d.userId, points: 10 }, // this week's 10, not last week's 15
        ]);
      },
    );

    it.skipIf(!target.available)('refuses a cursor it did not give with 400 problem+json', async () => {
      for (const cursor of ['nope', Buffer.from('[1,"x"]').toString('base64url')]) {
        const answer = await world.socle.app.inject({
          method: 'GET',
          url: `/strategybuzzer/leaderboard?cursor=${cursor}`,
        });
        expect(answer.statusCode).toBe(400);
        expect(answer.headers['content-type']).toContain('application/problem+json');
        expect(answer.json()).toMatchObject({ code: 'strategybuzzer.invalid_cursor' });
      }
      const badLimit = await caller(world.socle)(
        players[0] as TestUser,
        'GET',
        '/strategybuzzer/leaderboard?limit=1000',
      );
      expect(badLimit.statusCode).toBe(400);
    });

    it.skipIf(!target.available || dialect !== 'postgres')(
      '[postgres] a page after a cursor is read from the index, not by sorting the table',
      async () => {
        const plan = await world.socle.db.withConnection(async (connection) => {
          await connection.query('set enable_seqscan = off');
          try {
            const explained = await connection.query<{ 'QUERY PLAN': string }>(
              `explain select user_id, points from strategybuzzer.players
                where points < 10 or (points = 10 and user_id > '00000000-0000-0000-0000-000000000000')
                order by points desc, user_id limit 21`,
            );
            return explained.rows.map((row) => row['QUERY PLAN']).join('\n');
          } finally {
            await connection.query('reset enable_seqscan');
          }
        }, 'owner');
        expect(plan).toContain('players_by_points');
        expect(plan).not.toMatch(/\bSort\b/);
      },
    );
  },
);
