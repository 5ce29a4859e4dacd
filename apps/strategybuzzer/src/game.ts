import type { LatencyEstimate } from 'socle';
import { type FairnessPolicy, pressedAt } from './fairness.js';

/** A question of the bank, as a room plays it. */
export interface Question {
  readonly id: string;
  readonly language: string;
  readonly category: string;
  readonly level: number;
  readonly prompt: string;
  readonly choices: readonly string[];
  /** Index of the right choice. */
  readonly answer: number;
}

export interface Seat {
  readonly userId: string;
  readonly name: string;
  score: number;
  streak: number;
  bestStreak: number;
  correct: number;
  wrong: number;
  /** Gone past the reconnection grace: no more buzzes, the score stays. */
  left: boolean;
}

/** A buzz as the room holds it: when it arrived and when the server estimates it was pressed. */
interface Buzz {
  readonly userId: string;
  readonly receivedAt: number;
  readonly pressedAt: number;
}

/** What the room tells its players (published on the room's channel by the service). */
export type RoomEvent =
  | { type: 'starting'; roomId: string; players: PublicSeat[]; remainingMs: number }
  | {
      type: 'question';
      no: number;
      total: number;
      prompt: string;
      choices: readonly string[];
      category: string;
      remainingMs: number;
    }
  | {
      type: 'order';
      no: number;
      order: string[];
      /** The floor, when the same step gave it (the first buzzes of a question): no `floor` event then. */
      floor?: { userId: string; remainingMs: number };
    }
  | { type: 'floor'; no: number; userId: string; remainingMs: number }
  | {
      type: 'answer';
      no: number;
      userId: string;
      choice: number | null;
      correct: boolean;
      scores: PublicSeat[];
    }
  | { type: 'reveal'; no: number; answer: number; winner: string | null; scores: PublicSeat[] }
  | { type: 'finished'; results: Result[] };

export interface PublicSeat {
  readonly userId: string;
  readonly name: string;
  readonly score: number;
  readonly streak: number;
}

export interface Result extends PublicSeat {
  readonly rank: number;
  readonly bestStreak: number;
  readonly correct: number;
  readonly wrong: number;
}

export interface RoomTimings {
  /** Before the first question: players open the room's channels. */
  readonly startDelayMs: number;
  /** A question takes buzzes this long. */
  readonly questionMs: number;
  /** The player holding the floor answers within this. */
  readonly answerMs: number;
  /** The right answer stays shown this long before the next question. */
  readonly revealMs: number;
}

export interface RoomOptions {
  readonly id: string;
  readonly players: readonly { userId: string; name: string }[];
  readonly questions: readonly Question[];
  readonly timings: RoomTimings;
  readonly fairness: FairnessPolicy;
  /** The server's monotonic clock, in milliseconds (the one buzz arrival times are read on). */
  readonly now: () => number;
  readonly emit: (event: RoomEvent) => void;
}

export const POINTS_RIGHT = 10;
export const POINTS_WRONG = -5;
/** Extra points per answer already right in a row. */
export const STREAK_BONUS = 2;

/** Why a player's action was refused (the service turns these into problems or channel errors). */
export type Refusal = 'not_in_room' | 'question_closed' | 'already_buzzed' | 'not_your_turn' | 'finished';

type Phase =
  | { kind: 'starting'; until: number }
  | {
      kind: 'question';
      no: number;
      deadline: number;
      openedAt: number;
      buzzed: Set<string>;
      /** Buzzes not yet ordered: they wait until no later arrival could have been pressed first. */
      pending: Buzz[];
      settleAt: number | undefined;
      /** Ordered buzzes not yet given the floor. */
      queue: Buzz[];
      /** Every ordered buzz, in order (what players see). */
      order: string[];
      floor: { userId: string; deadline: number } | undefined;
      hinted: Set<string>;
    }
  | { kind: 'reveal'; no: number; until: number }
  | { kind: 'finished' };

const byPress = (a: Buzz, b: Buzz) => a.pressedAt - b.pressedAt || a.receivedAt - b.receivedAt;

/**
 * One game, server-authoritative, in memory on the node hosting the room: questions with
 * deadlines, buzzes ordered by the instant the server estimates they were pressed, the floor to
 * the first buzzer, a wrong (or late) answer passing it to the next, scores and streaks.
 *
 * Time moves only through `tick(now)`: the service calls it on a timer and right after each
 * action; tests drive it with their own clock.
 */
export function createRoom(options: RoomOptions) {
  const { timings, fairness, emit, questions } = options;
  const seats = new Map<string, Seat>(
    options.players.map((player) => [
      player.userId,
      { ...player, score: 0, streak: 0, bestStreak: 0, correct: 0, wrong: 0, left: false },
    ]),
  );
  let phase: Phase = { kind: 'starting', until: options.now() + timings.startDelayMs };

  const scores = (): PublicSeat[] =>
    [...seats.values()].map(({ userId, name, score, streak }) => ({ userId, name, score, streak }));

  const results = (): Result[] => {
    const sorted = [...seats.values()].sort((a, b) => b.score - a.score || b.bestStreak - a.bestStreak);
    return sorted.map((seat) => ({
      userId: seat.userId,
      name: seat.name,
      score: seat.score,
      streak: seat.streak,
      bestStreak: seat.bestStreak,
      correct: seat.correct,
      wrong: seat.wrong,
      // Equal scores share a rank.
      rank: 1 + sorted.findIndex((other) => other.score === seat.score),
    }));
  };

  function openQuestion(no: number, now: number) {
    const question = questions[no] as Question;
    phase = {
      kind: 'question',
      no,
      openedAt: now,
      deadline: now + timings.questionMs,
      buzzed: new Set(),
      pending: [],
      settleAt: undefined,
      queue: [],
      order: [],
      floor: undefined,
      hinted: new Set(),
    };
    emit({
      type: 'question',
      no,
      total: questions.length,
      prompt: question.prompt,
      choices: question.choices,
      category: question.category,
      remainingMs: timings.questionMs,
    });
  }

  function reveal(no: number, winner: string | null, now: number) {
    phase = { kind: 'reveal', no, until: now + timings.revealMs };
    emit({ type: 'reveal', no, answer: (questions[no] as Question).answer, winner, scores: scores() });
  }

  function tick(now: number = options.now()): void {
    // Several steps may fall due in one tick (a long pause): step until nothing changes.
    for (let guard = 0; guard < 1000 && step(now); guard++);
  }

  /** Moves the room one step if one is due at `now`; whether it did. */
  function step(now: number): boolean {
    if (phase.kind === 'starting') {
      if (now < phase.until) return false;
      openQuestion(0, now);
      return true;
    }
    if (phase.kind === 'reveal') {
      if (now < phase.until) return false;
      if (phase.no + 1 < questions.length) openQuestion(phase.no + 1, now);
      else {
        phase = { kind: 'finished' };
        emit({ type: 'finished', results: results() });
      }
      return true;
    }
    if (phase.kind !== 'question') return false;
    const current = phase;
    let changed = false;
    let settled = false;
    if (current.pending.length > 0 && current.settleAt !== undefined && now >= current.settleAt) {
      current.queue.push(...current.pending.sort(byPress));
      current.queue.sort(byPress);
      current.order.push(...current.pending.map((buzz) => buzz.userId));
      current.pending = [];
      current.settleAt = undefined;
      settled = true;
      changed = true;
    }
    if (current.floor !== undefined && now >= current.floor.deadline) {
      // No answer in time: a wrong answer.
      wrong(current, current.floor.userId, null);
      changed = true;
    }
    if (current.floor === undefined && current.queue.length > 0) {
      const next = current.queue.shift() as Buzz;
      current.floor = { userId: next.userId, deadline: now + timings.answerMs };
      const floor = { userId: next.userId, remainingMs: timings.answerMs };
      // The order that gave the floor carries it: one message to every player instead of two.
      if (settled) emit({ type: 'order', no: current.no, order: [...current.order], floor });
      else emit({ type: 'floor', no: current.no, ...floor });
      return true;
    }
    if (settled) emit({ type: 'order', no: current.no, order: [...current.order] });
    if (
      current.floor === undefined &&
      current.queue.length === 0 &&
      current.pending.length === 0 &&
      (now >= current.deadline || everyoneBuzzed(current))
    ) {
      reveal(current.no, null, now);
      return true;
    }
    return changed;
  }

  /** Whether every player still in the room buzzed on the question (no allocation: runs every tick). */
  function everyoneBuzzed(current: Extract<Phase, { kind: 'question' }>): boolean {
    for (const seat of seats.values()) if (!seat.left && !current.buzzed.has(seat.userId)) return false;
    return true;
  }

  function wrong(current: Extract<Phase, { kind: 'question' }>, userId: string, choice: number | null) {
    const seat = seats.get(userId) as Seat;
    seat.score += POINTS_WRONG;
    seat.streak = 0;
    seat.wrong += 1;
    current.floor = undefined;
    emit({ type: 'answer', no: current.no, userId, choice, correct: false, scores: scores() });
  }

  const refuse = (reason: Refusal) => ({ ok: false as const, reason });

  return {
    id: options.id,
    tick,

    /**
     * A player's buzz on question `no`, arrived at `receivedAt` (server monotonic clock) from a
     * connection of measured `latency`. One per player per question.
     */
    buzz(userId: string, no: number, receivedAt: number, latency: LatencyEstimate | undefined) {
      if (!seats.has(userId) || seats.get(userId)?.left) return refuse('not_in_room');
      if (phase.kind === 'finished') return refuse('finished');
      if (phase.kind !== 'question' || phase.no !== no || receivedAt >= phase.deadline)
        return refuse('question_closed');
      if (phase.buzzed.has(userId)) return refuse('already_buzzed');
      phase.buzzed.add(userId);
      // Never before the question opened: the correction cannot place a press before it existed.
      const buzz = {
        userId,
        receivedAt,
        pressedAt: Math.max(pressedAt(receivedAt, latency, fairness), phase.openedAt),
      };
      if (phase.floor === undefined && phase.queue.length === 0) {
        // The first buzzes of a question wait until no buzz still on its way could have been
        // pressed earlier: one arriving later than `earliest press + cap` cannot have been.
        phase.pending.push(buzz);
        const earliest = Math.min(...phase.pending.map((pending) => pending.pressedAt));
        phase.settleAt = fairness.compensate ? earliest + fairness.maxCompensationMs : receivedAt;
      } else {
        phase.queue.push(buzz);
        phase.queue.sort(byPress);
        phase.order.push(userId);
        emit({ type: 'order', no, order: [...phase.order] });
      }
      tick(Math.max(options.now(), receivedAt));
      return { ok: true as const };
    },

    /** The answer of the player holding the floor. */
    answer(userId: string, no: number, choice: number) {
      if (!seats.has(userId)) return refuse('not_in_room');
      if (phase.kind !== 'question' || phase.no !== no) return refuse('question_closed');
      if (phase.floor?.userId !== userId) return refuse('not_your_turn');
      const now = options.now();
      const question = questions[no] as Question;
      if (choice === question.answer) {
        const seat = seats.get(userId) as Seat;
        seat.score += POINTS_RIGHT + STREAK_BONUS * seat.streak;
        seat.streak += 1;
        seat.bestStreak = Math.max(seat.bestStreak, seat.streak);
        seat.correct += 1;
        phase.floor = undefined;
        // No `answer` event for a right answer: the reveal says who found it (`winner`), what it
        // was (`answer`) and the scores after it, in one message instead of two.
        reveal(no, userId, now);
      } else {
        wrong(phase, userId, choice);
      }
      tick(now);
      return { ok: true as const, correct: choice === question.answer };
    },

    /** Whether the player may buy a hint now (holds the floor, has not had one on this question). */
    canHint(userId: string, no: number): Refusal | undefined {
      if (!seats.has(userId)) return 'not_in_room';
      if (phase.kind !== 'question' || phase.no !== no) return 'question_closed';
      if (phase.floor?.userId !== userId || phase.hinted.has(userId)) return 'not_your_turn';
      return undefined;
    },

    /** A hint: the index of two wrong choices to strike out. */
    hint(userId: string, no: number): number[] {
      if (phase.kind === 'question' && phase.no === no) phase.hinted.add(userId);
      const question = questions[no] as Question;
      return question.choices
        .map((_, index) => index)
        .filter((index) => index !== question.answer)
        .slice(0, 2);
    },

    /** The player is gone for good (past the reconnection grace): a floor they hold passes on. */
    leave(userId: string): void {
      const seat = seats.get(userId);
      if (seat === undefined || seat.left) return;
      seat.left = true;
      if (phase.kind === 'question' && phase.floor?.userId === userId) wrong(phase, userId, null);
      tick();
    },

    has: (userId: string) => seats.has(userId),
    players: () => [...seats.keys()],
    finished: () => phase.kind === 'finished',
    results,
    questionIds: () => questions.map((question) => question.id),

    /** Everything a player needs to draw the room again after a reconnection. */
    snapshot(now: number = options.now()) {
      const base = { roomId: options.id, scores: scores(), total: questions.length };
      switch (phase.kind) {
        case 'starting':
          return { ...base, phase: 'starting' as const, remainingMs: Math.max(0, phase.until - now) };
        case 'reveal':
          return {
            ...base,
            phase: 'reveal' as const,
            no: phase.no,
            answer: (questions[phase.no] as Question).answer,
            remainingMs: Math.max(0, phase.until - now),
          };
        case 'finished':
          return { ...base, phase: 'finished' as const, results: results() };
        case 'question': {
          const question = questions[phase.no] as Question;
          return {
            ...base,
            phase: 'question' as const,
            no: phase.no,
            prompt: question.prompt,
            choices: question.choices,
            category: question.category,
            remainingMs: Math.max(0, phase.deadline - now),
            order: [...phase.order],
            buzzed: [...phase.buzzed],
            floor:
              phase.floor === undefined
                ? null
                : { userId: phase.floor.userId, remainingMs: Math.max(0, phase.floor.deadline - now) },
          };
        }
      }
    },
  };
}

export type Room = ReturnType<typeof createRoom>;
