import { randomUUID } from 'node:crypto';
import { type Database, sql } from 'socle';
import type { BuzzerTables } from './buzzer.tables.js';
import type { Question, Result } from './game.js';
import { weekStart } from './leaderboard.js';
import { createLeaderboardStore } from './leaderboard.store.js';
import type { Ticket } from './matchmaker.js';
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

/** A room of the fleet as the database holds it. */
export interface RoomRecord {
  readonly id: string;
  readonly hostNode: string;
  readonly region: string;
  readonly mode: 'classic' | 'premium';
  readonly language: string;
  readonly code: string | undefined;
  readonly players: readonly { userId: string; name: string }[];
  /** The results as of the last answer (what is kept if the host dies mid-game). */
  readonly results: readonly Result[];
  readonly startedAt: Date;
}

/** A seat a room's end freed, with the premium entry it was paid with (if any). */
export interface FreedSeat {
  readonly roomId: string;
  readonly userId: string;
  readonly holdId: string | undefined;
}

/** A transaction of the app's database (Socle exports no name for Kysely's). */
export type BuzzerTransaction = Parameters<Parameters<Database<BuzzerTables>['transaction']>[0]>[0];

/**
 * What else a room's end does, in the transaction that ends it: with its `settings` (the
 * ledger's platform book the coins live in), `onEnded` gets the seats this end freed (each freed once: a
 * second end, on any node, frees none), so a cut-short room gives its entry fees back exactly
 * when it ends, and never twice.
 */
export interface RoomEnding {
  readonly settings: Readonly<Record<string, string>>;
  readonly onEnded: (trx: BuzzerTransaction, seats: readonly FreedSeat[]) => Promise<void>;
}

type TicketRow = BuzzerTables['strategybuzzer.tickets'];
type RoomRow = BuzzerTables['strategybuzzer.rooms'];

const json = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T;

const toTicket = (row: TicketRow): Ticket => ({
  id: row.id,
  userId: row.user_id,
  name: row.name,
  region: row.region,
  mode: row.mode as Ticket['mode'],
  language: row.language,
  level: row.level,
  code: row.code ?? undefined,
  createdAt: Number(row.created_ms),
  holdId: row.hold_id ?? undefined,
});

const toRoom = (row: RoomRow): RoomRecord => ({
  id: row.id,
  hostNode: row.host_node,
  region: row.region,
  mode: row.mode as RoomRecord['mode'],
  language: row.language,
  code: row.code ?? undefined,
  players: json(row.players),
  results: json(row.results),
  startedAt: row.started_at,
});

/** Every SQL statement of the app: services never see the database. */
export function createBuzzerStore(db: Database<BuzzerTables>) {
  const k = db.kysely;

  /**
   * Frees the seats of rooms that just ended and hands them to `ending`, in the caller's
   * transaction. A seat row is deleted once: whichever transaction deletes it (the rooms' row
   * lock orders two ends of one room) is the one that sees it.
   */
  async function freeSeats(
    trx: BuzzerTransaction,
    roomIds: readonly string[],
    ending: RoomEnding | undefined,
  ) {
    if (roomIds.length === 0) return;
    const freed = await trx
      .deleteFrom('strategybuzzer.tickets')
      .where('room_id', 'in', roomIds)
      .returning(['room_id', 'user_id', 'hold_id'])
      .execute();
    if (ending !== undefined && freed.length > 0)
      await ending.onEnded(
        trx,
        freed.map((row) => ({
          roomId: row.room_id as string,
          userId: row.user_id,
          holdId: row.hold_id ?? undefined,
        })),
      );
  }

  return {
    async house(): Promise<House | undefined> {
      const row = await k.selectFrom('strategybuzzer.house').selectAll().executeTakeFirst();
      return row === undefined
        ? undefined
        : {
            orgId: row.org_id,
          };
    },

    /** Records the house once; false if it was claimed already (by anyone). */
    async claimHouse(house: House, userId: string, at: Date): Promise<boolean> {
      const result = await k
        .insertInto('strategybuzzer.house')
        .values({
          id: 1,
          org_id: house.orgId,
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
     * one transaction; a second call for the same game changes nothing. With `endReason`, the
     * room ends in the same transaction (its seats freed, handed to `ending`): players are free
     * once results exist.
     */
    async saveGame(game: FinishedGame, endReason?: string, ending?: RoomEnding): Promise<boolean> {
      return db.transaction(
        async (trx) => {
          if (endReason !== undefined) {
            await trx
              .updateTable('strategybuzzer.rooms')
              .set({ ended_at: sql<Date>`now()`, end_reason: endReason })
              .where('id', '=', game.id)
              .where('ended_at', 'is', null)
              .execute();
            await freeSeats(trx, [game.id], ending);
          }
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
        },
        ending === undefined ? {} : { settings: ending.settings },
      );
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

    /**
     * The player's ticket, or the ticket they already hold: `roomId` set when they are seated.
     * One row per player (the primary key), so two requests, on two nodes, hold one ticket.
     */
    async addTicket(ticket: Ticket): Promise<{ ticket: Ticket; roomId: string | undefined }> {
      const inserted = await k
        .insertInto('strategybuzzer.tickets')
        .values({
          user_id: ticket.userId,
          id: ticket.id,
          name: ticket.name,
          region: ticket.region,
          mode: ticket.mode,
          language: ticket.language,
          level: ticket.level,
          code: ticket.code ?? null,
          created_ms: ticket.createdAt,
          hold_id: ticket.holdId ?? null,
          room_id: null,
        })
        .onConflict((conflict) => conflict.column('user_id').doNothing())
        .returning('id')
        .executeTakeFirst();
      // Inserted: this ticket, waiting. Reading it back instead would race the matchmaker, which
      // may seat it between the two statements (the player was then told 409 already_in_room for
      // their own new ticket; seen under load in the bench and the fleet test).
      if (inserted !== undefined) return { ticket, roomId: undefined };
      return (await this.ticketOf(ticket.userId)) ?? { ticket, roomId: undefined };
    },

    async ticketOf(userId: string): Promise<{ ticket: Ticket; roomId: string | undefined } | undefined> {
      const row = await k
        .selectFrom('strategybuzzer.tickets')
        .selectAll()
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row === undefined ? undefined : { ticket: toTicket(row), roomId: row.room_id ?? undefined };
    },

    /** Withdraws a waiting ticket (not a seat); the ticket withdrawn, if any. */
    async withdrawTicket(userId: string): Promise<Ticket | undefined> {
      const row = await k
        .deleteFrom('strategybuzzer.tickets')
        .where('user_id', '=', userId)
        .where('room_id', 'is', null)
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? undefined : toTicket(row);
    },

    /**
     * Makes rooms of the region's waiting tickets, hosted by `hostNode`, in one transaction: one
     * node of the fleet at a time matches a region (a transaction-scoped advisory lock; the
     * others skip their turn), and a ticket becomes a seat only while it still waits, so a
     * player is never seated twice whatever the nodes do at once. Undefined when another node
     * held the region's turn.
     */
    async claimRooms(
      region: string,
      hostNode: string,
      at: Date,
      match: (tickets: readonly Ticket[]) => Ticket[][],
    ): Promise<{ roomId: string; tickets: Ticket[] }[] | undefined> {
      return db.transaction(async (trx) => {
        const locked = await sql<{
          locked: boolean;
        }>`select pg_try_advisory_xact_lock(hashtextextended(${`strategybuzzer.match:${region}`}, 0)) as locked`.execute(
          trx,
        );
        if (locked.rows[0]?.locked !== true) return undefined; // another node is matching
        const rows = await trx
          .selectFrom('strategybuzzer.tickets')
          .selectAll()
          // A friends' code plays together whatever regions its players picked.
          .where((eb) => eb.or([eb('region', '=', region), eb('code', 'is not', null)]))
          .where('room_id', 'is', null)
          .forUpdate()
          .execute();
        const claimed: { roomId: string; tickets: Ticket[] }[] = [];
        for (const tickets of match(rows.map(toTicket))) {
          const roomId = randomUUID();
          const first = tickets[0] as Ticket;
          await trx
            .insertInto('strategybuzzer.rooms')
            .values({
              id: roomId,
              host_node: hostNode,
              region: first.region,
              mode: first.mode,
              language: first.language,
              code: first.code ?? null,
              players: JSON.stringify(tickets.map(({ userId, name }) => ({ userId, name }))),
              results: '[]',
              started_at: at,
              heartbeat_at: sql<Date>`now()`,
              ended_at: null,
              end_reason: null,
            })
            .execute();
          const seated = await trx
            .updateTable('strategybuzzer.tickets')
            .set({ room_id: roomId })
            .where(
              'user_id',
              'in',
              tickets.map((ticket) => ticket.userId),
            )
            .where('room_id', 'is', null)
            .executeTakeFirst();
          // The rows are locked FOR UPDATE and still waiting: every one of them is seated.
          if (Number(seated.numUpdatedRows) !== tickets.length)
            throw new Error('A ticket changed while locked');
          claimed.push({ roomId, tickets });
        }
        return claimed;
      });
    },

    /** The room a player is seated in, and the node hosting it. */
    async seatOf(userId: string): Promise<{ roomId: string; hostNode: string } | undefined> {
      const row = await k
        .selectFrom('strategybuzzer.tickets as t')
        .innerJoin('strategybuzzer.rooms as r', 'r.id', 't.room_id')
        .select(['r.id as roomId', 'r.host_node as hostNode'])
        .where('t.user_id', '=', userId)
        .where('r.ended_at', 'is', null)
        .executeTakeFirst();
      return row;
    },

    /** Frees a player's seat in the room (left past the reconnection grace, or left out at the start). */
    async freeSeat(userId: string, roomId: string): Promise<void> {
      await k
        .deleteFrom('strategybuzzer.tickets')
        .where('user_id', '=', userId)
        .where('room_id', '=', roomId)
        .execute();
    },

    /** Whether the user is one of the room's players (it running or over). */
    async isPlayerOf(userId: string, roomId: string): Promise<boolean> {
      const row = await k
        .selectFrom('strategybuzzer.rooms')
        .select('id')
        .where('id', '=', roomId)
        .where(sql<boolean>`players @> ${JSON.stringify([{ userId }])}::jsonb`)
        .executeTakeFirst();
      return row !== undefined;
    },

    /** Keeps the room's results as of now: what the fleet saves if its host dies. */
    async checkpoint(roomId: string, results: readonly Result[]): Promise<void> {
      await k
        .updateTable('strategybuzzer.rooms')
        .set({ results: JSON.stringify(results) })
        .where('id', '=', roomId)
        .where('ended_at', 'is', null)
        .execute();
    },

    /**
     * The host's heartbeat on its running rooms (database time: no node's clock is compared with
     * another's); the ids of those still running (one missing was ended by another node).
     */
    async heartbeat(hostNode: string): Promise<string[]> {
      const rows = await k
        .updateTable('strategybuzzer.rooms')
        .set({ heartbeat_at: sql<Date>`now()` })
        .where('host_node', '=', hostNode)
        .where('ended_at', 'is', null)
        .returning('id')
        .execute();
      return rows.map((row) => row.id);
    },

    /**
     * Ends a running room and frees its seats (handed to `ending`), in one transaction; false if
     * it had ended already (a second call, on any node, changes nothing).
     */
    async endRoom(roomId: string, reason: string, ending?: RoomEnding): Promise<boolean> {
      return db.transaction(
        async (trx) => {
          const ended = await trx
            .updateTable('strategybuzzer.rooms')
            .set({ ended_at: sql<Date>`now()`, end_reason: reason })
            .where('id', '=', roomId)
            .where('ended_at', 'is', null)
            .executeTakeFirst();
          if (Number(ended.numUpdatedRows) !== 1) return false;
          await freeSeats(trx, [roomId], ending);
          return true;
        },
        ending === undefined ? {} : { settings: ending.settings },
      );
    },

    /**
     * Ends the rooms whose host stopped beating for `timeoutMs` (killed, cut off) and frees their
     * seats (handed to `ending`), in one transaction: each such room is claimed by exactly one node.
     */
    async endOrphanedRooms(timeoutMs: number, ending?: RoomEnding): Promise<RoomRecord[]> {
      return db.transaction(
        async (trx) => {
          const rows = await trx
            .updateTable('strategybuzzer.rooms')
            .set({ ended_at: sql<Date>`now()`, end_reason: 'host_lost' })
            .where('ended_at', 'is', null)
            .where(sql<boolean>`heartbeat_at < now() - make_interval(secs => ${timeoutMs / 1000})`)
            .returningAll()
            .execute();
          await freeSeats(
            trx,
            rows.map((row) => row.id),
            ending,
          );
          return rows.map(toRoom);
        },
        ending === undefined ? {} : { settings: ending.settings },
      );
    },

    /** Running rooms of the fleet (admin). */
    async liveRooms(): Promise<RoomRecord[]> {
      const rows = await k
        .selectFrom('strategybuzzer.rooms')
        .selectAll()
        .where('ended_at', 'is', null)
        .orderBy('started_at')
        .execute();
      return rows.map(toRoom);
    },

    async waitingCount(): Promise<number> {
      const row = await k
        .selectFrom('strategybuzzer.tickets')
        .select((eb) => eb.fn.countAll<string>().as('count'))
        .where('room_id', 'is', null)
        .executeTakeFirstOrThrow();
      return Number(row.count);
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
