/**
 * Child process: the baseline, the same game written on Colyseus (`@colyseus/core` with its
 * WebSocket transport, the room framework Node teams pick for this). One room type with the
 * StrategyBuzzer rules the scenario exercises, in the app's protocol: 8 players, a question, one buzz
 * each, buzzes ordered by arrival and the order broadcast at once, the floor to the first (on that
 * order message), an answer within
 * `ANSWER_SECONDS` (right: +10, reveal, next question after `REVEAL_MS`; wrong or late: −5, the
 * floor passes), a question deadline. No database: Colyseus rooms live in memory, as Socle's do.
 */
import { createServer } from 'node:net';
import { type Client, Room, Server } from '@colyseus/core';
import { WebSocketTransport } from '@colyseus/ws-transport';
import { runServerChild } from '../../server-child.js';
import {
  ANSWER_SECONDS,
  POINTS_RIGHT,
  POINTS_WRONG,
  QUESTION_SECONDS,
  QUESTIONS_PER_GAME,
  REVEAL_MS,
  ROOM_SIZE,
  START_DELAY_MS,
} from './game-rules.js';

interface Question {
  no: number;
  open: boolean;
  buzzed: Set<string>;
  order: string[];
  queue: string[];
  floor: string | undefined;
}

class BuzzRoom extends Room {
  override maxClients = ROOM_SIZE;
  private readonly scores = new Map<string, number>();
  private question: Question | undefined;
  private timer: NodeJS.Timeout | undefined;
  private floorTimer: NodeJS.Timeout | undefined;

  override onCreate(): void {
    this.onMessage('buzz', (client: Client, message: { no?: unknown }) =>
      this.buzz(client.sessionId, message?.no),
    );
    this.onMessage('answer', (client: Client, message: { no?: unknown; choice?: unknown }) =>
      this.answer(client.sessionId, message?.no, message?.choice),
    );
  }

  override onJoin(client: Client): void {
    this.scores.set(client.sessionId, 0);
    if (this.clients.length === ROOM_SIZE) {
      void this.lock();
      this.later(START_DELAY_MS, () => this.open(0));
    }
  }

  override onDispose(): void {
    clearTimeout(this.timer);
    clearTimeout(this.floorTimer);
  }

  private later(ms: number, run: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(run, ms);
  }

  private open(no: number): void {
    if (no >= QUESTIONS_PER_GAME) {
      this.broadcast('finished', { scores: Object.fromEntries(this.scores) });
      return;
    }
    this.question = { no, open: true, buzzed: new Set(), order: [], queue: [], floor: undefined };
    this.broadcast('question', {
      no,
      total: QUESTIONS_PER_GAME,
      prompt: `Question ${no + 1} ?`,
      choices: ['right', 'wrong A', 'wrong B', 'wrong C'],
      remainingMs: QUESTION_SECONDS * 1000,
    });
    this.later(QUESTION_SECONDS * 1000, () => this.reveal(no, null));
  }

  private buzz(sessionId: string, no: unknown): void {
    const question = this.question;
    if (question === undefined || !question.open || question.no !== no || question.buzzed.has(sessionId))
      return;
    question.buzzed.add(sessionId);
    question.order.push(sessionId);
    question.queue.push(sessionId);
    // The order that gives the floor carries it (the app's protocol): one message, not two.
    const floor = this.takeFloor(question);
    this.broadcast('order', {
      no: question.no,
      order: [...question.order],
      ...(floor === undefined ? {} : { floor: { userId: floor, remainingMs: ANSWER_SECONDS * 1000 } }),
    });
  }

  /** Gives the floor to the next buzzer if nobody holds it; returns who got it. */
  private takeFloor(question: Question): string | undefined {
    if (question.floor !== undefined) return undefined;
    const next = question.queue.shift();
    if (next === undefined) return undefined;
    question.floor = next;
    clearTimeout(this.floorTimer);
    this.floorTimer = setTimeout(() => this.wrong(question, next, null), ANSWER_SECONDS * 1000);
    return next;
  }

  /** After a wrong answer: the floor passes on (`floor`), or the answer is revealed. */
  private nextFloor(question: Question): void {
    const next = this.takeFloor(question);
    if (next !== undefined)
      this.broadcast('floor', { no: question.no, userId: next, remainingMs: ANSWER_SECONDS * 1000 });
    else if (question.floor === undefined && question.buzzed.size === this.clients.length)
      this.reveal(question.no, null);
  }

  private answer(sessionId: string, no: unknown, choice: unknown): void {
    const question = this.question;
    if (question === undefined || !question.open || question.no !== no || question.floor !== sessionId)
      return;
    clearTimeout(this.floorTimer);
    if (choice === 0) {
      // A right answer is told by the reveal naming its winner (the app's protocol).
      this.scores.set(sessionId, (this.scores.get(sessionId) ?? 0) + POINTS_RIGHT);
      this.reveal(question.no, sessionId);
    } else this.wrong(question, sessionId, typeof choice === 'number' ? choice : null);
  }

  private wrong(question: Question, sessionId: string, choice: number | null): void {
    if (!question.open || question.floor !== sessionId) return;
    this.scores.set(sessionId, (this.scores.get(sessionId) ?? 0) + POINTS_WRONG);
    question.floor = undefined;
    this.broadcast('answer', {
      no: question.no,
      userId: sessionId,
      choice,
      correct: false,
      scores: Object.fromEntries(this.scores),
    });
    this.nextFloor(question);
  }

  private reveal(no: number, winner: string | null): void {
    const question = this.question;
    if (question === undefined || question.no !== no || !question.open) return;
    question.open = false;
    clearTimeout(this.floorTimer);
    this.broadcast('reveal', { no, answer: 0, winner, scores: Object.fromEntries(this.scores) });
    this.later(REVEAL_MS, () => this.open(no + 1));
  }
}

/** A free port on loopback (Colyseus's `listen` takes a port, and reports none back). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

runServerChild(async () => {
  const server = new Server({
    transport: new WebSocketTransport(),
    greet: false,
    // The harness's child runner handles SIGTERM; Colyseus's own handler would exit first.
    gracefullyShutdown: false,
  });
  server.define('buzz', BuzzRoom);
  const port = await freePort();
  await server.listen(port, '127.0.0.1');
  return { url: `http://127.0.0.1:${port}`, close: () => server.gracefullyShutdown(false) };
});
