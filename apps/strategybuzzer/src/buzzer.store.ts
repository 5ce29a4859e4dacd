import { randomUUID } from 'node:crypto';
import { type Database, sql } from 'socle';
import type { BuzzerTables } from './buzzer.tables.js';
import type { Question, Result } from './game.js';
import { weekStart } from './leaderboard.js';
import { createLeaderboardStore } from './leaderboard.store.js';
import type { NewQuestion } from './questions.js';

export interface Player {
  readonly userId: string;
  readonly name: string;
  readonly level: number;
  readonly walletAccountId: string | null;
  readonly games: number;
  readonly wins: number;
  readonly points: number;
  readonly bestStreak: number;
  /** The avatar's object in the files module (bucket `sb-avatars`), if the player uploaded one. */
  readonly avatarObjectId: string | null;
}

export interface House {
  readonly orgId: string;
  readonly sourceAccountId: string;
  readonly revenueAccountId: string;
}

export interface FinishedGame {
  readonly id: string;
  readonly region: string;
  readonly mode: string;
  readonly language: string;
  readonly code: string | undefined;
  readonly startedAt: Date;
  readonly endedAt: Date;
  readonly results: readonly Result[];
}

export interface ChatMessage {
  readonly id: string;
  readonly roomId: string;
  readonly userId: string;
  readonly name: string;
  readonly body: string;
  readonly createdAt: Date;
}

/** Levels go up by one per this many points won over all games, from 1 to 10. */
export const POINTS_PER_LEVEL = 200;

const toPlayer = (row: {
  user_id: string;
  name: string;
  level: number;
  wallet_account_id: string | null;
  games: number;
  wins: number;
  points: string | number | bigint;
  best_streak: number;
  avatar_object_id: string | null;
}): Player => ({
  userId: row.user_id,
  name: row.name,
  level: row.level,
  walletAccountId: row.wallet_account_id,
  games: row.games,
  wins: row.wins,
  points: Number(row.points),
  bestStreak: row.best_streak,
  avatarObjectId: row.avatar_object_id,
});

/** Every SQL statement of the app: services never see the database. */
export function createBuzzerStore(db: Database<BuzzerTables>) {
  const k = db.kysely;
  return {
    async house(): Promise<House | undefined> {
      const row = await k.selectFrom('strategybuzzer.house').selectAll().executeTakeFirst();
      return row === undefined
        ? undefined
        : {
            orgId: row.org_id,
            sourceAccountId: row.source_account_id,
            revenueAccountId: row.revenue_account_id,
          };
    },

    /** Records the house once; false if it was claimed already (by anyone). */
    async claimHouse(house: House, userId: string, at: Date): Promise<boolean> {
      const result = await k
        .insertInto('strategybuzzer.house')
        .values({
          id: 1,
          org_id: house.orgId,
          source_account_id: house.sourceAccountId,
          revenue_account_id: house.revenueAccountId,
          claimed_by: userId,
          claimed_at: at,
        })
        .onConflict((conflict) => conflict.column('id').doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
    },

    async player(userId: string): Promise<Player | undefined> {
      const row = await k
        .selectFrom('strategybuzzer.players')
        .selectAll()
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row === undefined ? undefined : toPlayer(row);
    },

    /** The player's profile, made on first sight (name from their e-mail's local part). */
    async ensurePlayer(userId: string, name: string, at: Date): Promise<Player> {
      await k
        .insertInto('strategybuzzer.players')
        .values({
          user_id: userId,
          name,
          level: 1,
          wallet_account_id: null,
          games: 0,
          wins: 0,
          points: 0,
          best_streak: 0,
          avatar_object_id: null,
          created_at: at,
        })
        .onConflict((conflict) => conflict.column('user_id').doNothing())
        .execute();
      return (await this.player(userId)) as Player;
    },

    async renamePlayer(userId: string, name: string): Promise<Player> {
      await k.updateTable('strategybuzzer.players').set({ name }).where('user_id', '=', userId).execute();
      return (await this.player(userId)) as Player;
    },

    async setWallet(userId: string, accountId: string): Promise<void> {
      await k
        .updateTable('strategybuzzer.players')
        .set({ wallet_account_id: accountId })
        .where('user_id', '=', userId)
        .where('wallet_account_id', 'is', null)
        .execute();
    },

    /** Imports questions in one transaction; the ones already in the bank (same language and prompt) are skipped. */
    async importQuestions(
      questions: readonly NewQuestion[],
      at: Date,
    ): Promise<{ imported: number; skipped: number }> {
      return db.transaction(async (trx) => {
        let imported = 0;
        for (let start = 0; start < questions.length; start += 500) {
          const result = await trx
            .insertInto('strategybuzzer.questions')
            .values(
              questions.slice(start, start + 500).map((question) => ({
                id: randomUUID(),
                language: question.language,
                category: question.category,
                level: question.level,
                prompt: question.prompt,
                choices: JSON.stringify(question.choices),
                answer: question.answer,
                created_at: at,
              })),
            )
            .onConflict((conflict) => conflict.columns(['language', 'prompt']).doNothing())
            .executeTakeFirst();
          imported += Number(result.numInsertedOrUpdatedRows ?? 0n);
        }
        return { imported, skipped: questions.length - imported };
      });
    },

    countQuestions: async (language?: string): Promise<number> => {
      let query = k
        .selectFrom('strategybuzzer.questions')
        .select((eb) => eb.fn.countAll<string>().as('count'));
      if (language !== undefined) query = query.where('language', '=', language);
      return Number((await query.executeTakeFirstOrThrow()).count);
    },

    /** `count` random questions of the language, nearest the level first. */
    async pickQuestions(language: string, level: number, count: number): Promise<Question[]> {
      const rows = await k
        .selectFrom('strategybuzzer.questions')
        .selectAll()
        .where('language', '=', language)
        .orderBy(sql`abs(level - ${level})`)
        .orderBy(sql`random()`)
        .limit(count)
        .execute();
      return rows.map((row) => ({
        id: row.id,
        language: row.language,
        category: row.category,
        level: row.level,
        prompt: row.prompt,
        choices: (typeof row.choices === 'string' ? JSON.parse(row.choices) : row.choices) as string[],
        answer: row.answer,
      }));
    },

    /**
     * Records a finished game and its players' results, and adds them to the players' stats, in
     * one transaction; a second call for the same game changes nothing.
     */
    async saveGame(game: FinishedGame): Promise<boolean> {
      return db.transaction(async (trx) => {
        const inserted = await trx
          .insertInto('strategybuzzer.games')
          .values({
            id: game.id,
            region: game.region,
            mode: game.mode,
            language: game.language,
            code: game.code ?? null,
            started_at: game.startedAt,
            ended_at: game.endedAt,
          })
          .onConflict((conflict) => conflict.column('id').doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) !== 1) return false;
        if (game.results.length === 0) return true;
        await trx
          .insertInto('strategybuzzer.game_players')
          .values(
            game.results.map((result) => ({
              game_id: game.id,
              user_id: result.userId,
              name: result.name,
              score: result.score,
              best_streak: result.bestStreak,
              correct: result.correct,
              wrong: result.wrong,
              rank: result.rank,
            })),
          )
          .execute();
        for (const result of game.results) {
          await trx
            .updateTable('strategybuzzer.players')
            .set((eb) => ({
              games: eb('games', '+', 1),
              wins: eb('wins', '+', result.rank === 1 && game.results.length > 1 ? 1 : 0),
              points: sql`greatest(0, points + ${result.score})`,
              best_streak: sql`greatest(best_streak, ${result.bestStreak})`,
              level: sql`least(10, 1 + greatest(0, points + ${result.score}) / ${POINTS_PER_LEVEL})`,
            }))
            .where('user_id', '=', result.userId)
            .execute();
        }
        // The weekly leaderboard counts the game in the week it ended, in the same transaction.
        await createLeaderboardStore(db).addWeeklyScores(
          trx,
          weekStart(game.endedAt),
          game.results.map((result) => ({
            userId: result.userId,
            score: result.score,
            won: result.rank === 1 && game.results.length > 1,
          })),
        );
        return true;
      });
    },

    /** A player's last games, newest first. */
    gamesOf: (userId: string, limit = 20) =>
      k
        .selectFrom('strategybuzzer.game_players as gp')
        .innerJoin('strategybuzzer.games as g', 'g.id', 'gp.game_id')
        .select([
          'g.id',
          'g.mode',
          'g.ended_at as endedAt',
          'gp.score',
          'gp.rank',
          'gp.best_streak as bestStreak',
        ])
        .where('gp.user_id', '=', userId)
        .orderBy('g.ended_at', 'desc')
        .limit(limit)
        .execute(),

    gamePlayers: (gameId: string) =>
      k
        .selectFrom('strategybuzzer.game_players')
        .select([
          'user_id as userId',
          'name',
          'score',
          'rank',
          'best_streak as bestStreak',
          'correct',
          'wrong',
        ])
        .where('game_id', '=', gameId)
        .orderBy('rank')
        .orderBy('user_id')
        .execute(),

    async addChat(message: ChatMessage): Promise<void> {
      await k
        .insertInto('strategybuzzer.chat_messages')
        .values({
          id: message.id,
          room_id: message.roomId,
          user_id: message.userId,
          name: message.name,
          body: message.body,
          created_at: message.createdAt,
        })
        .execute();
    },

    /** The room's last messages, oldest first. */
    async lastChat(roomId: string, limit: number): Promise<ChatMessage[]> {
      const rows = await k
        .selectFrom('strategybuzzer.chat_messages')
        .select(['id', 'room_id as roomId', 'user_id as userId', 'name', 'body', 'created_at as createdAt'])
        .where('room_id', '=', roomId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.reverse();
    },

    /** The oldest messages written before `cutoff`, oldest first (what the nightly export takes). */
    async chatBefore(cutoff: Date, limit: number): Promise<ChatMessage[]> {
      return k
        .selectFrom('strategybuzzer.chat_messages')
        .select(['id', 'room_id as roomId', 'user_id as userId', 'name', 'body', 'created_at as createdAt'])
        .where('created_at', '<', cutoff)
        .orderBy('created_at')
        .orderBy('id')
        .limit(limit)
        .execute();
    },

    /** Deletes these messages (in the transaction recording their archive); how many. */
    async deleteChat(trx: Database<BuzzerTables>['kysely'], ids: readonly string[]): Promise<number> {
      let deleted = 0;
      for (let start = 0; start < ids.length; start += 1000) {
        const result = await trx
          .deleteFrom('strategybuzzer.chat_messages')
          .where('id', 'in', ids.slice(start, start + 1000))
          .executeTakeFirst();
        deleted += Number(result.numDeletedRows);
      }
      return deleted;
    },
  };
}

export type BuzzerStore = ReturnType<typeof createBuzzerStore>;
