import { describe, expect, it } from 'vitest';
import { createRoom, type RoomEvent } from '../src/index.js';

/**
 * The messages a room sends its players per question: each is a frame to every player, so the
 * protocol says once what it has to say (issue 18's benchmark: every frame costs the server a write
 * per socket). Pure: the room's own clock, no server.
 */
describe('StrategyBuzzer room messages', () => {
  const players = ['a', 'b', 'c'].map((userId) => ({ userId, name: userId.toUpperCase() }));
  const question = (id: string) => ({
    id,
    language: 'fr',
    category: 'test',
    level: 1,
    prompt: `${id} ?`,
    choices: ['right', 'wrong A', 'wrong B', 'wrong C'],
    answer: 0,
  });

  function playRoom(compensate: boolean) {
    let clock = 1000;
    const events: RoomEvent[] = [];
    const room = createRoom({
      id: 'room-1',
      players,
      questions: [question('q1'), question('q2')],
      timings: { startDelayMs: 100, questionMs: 10_000, answerMs: 5000, revealMs: 1000 },
      fairness: { compensate, maxCompensationMs: 100 },
      now: () => clock,
      emit: (event) => events.push(event),
    });
    const advance = (ms: number) => {
      clock += ms;
      room.tick(clock);
    };
    return { room, events, advance, now: () => clock };
  }

  it.each([
    ['by arrival', false],
    ['compensated', true],
  ])('%s: the order that gives the floor carries it; a right answer is the reveal alone', (_, compensate) => {
    const { room, events, advance, now } = playRoom(compensate);
    advance(100); // the first question opens
    expect(events.map((event) => event.type)).toEqual(['question']);
    events.length = 0;

    expect(room.buzz('b', 0, now(), undefined).ok).toBe(true);
    advance(compensate ? 100 : 0); // the settling window, when compensated
    expect(room.buzz('a', 0, now(), undefined).ok).toBe(true);
    // One message gave the order and the floor; the second buzz only extends the order.
    expect(events).toEqual([
      { type: 'order', no: 0, order: ['b'], floor: { userId: 'b', remainingMs: 5000 } },
      { type: 'order', no: 0, order: ['b', 'a'] },
    ]);
    events.length = 0;

    // b is wrong: `answer` (wrong) and the floor passes to a, alone (no order changed).
    room.answer('b', 0, 2);
    expect(events.map((event) => event.type)).toEqual(['answer', 'floor']);
    expect(events[1]).toEqual({ type: 'floor', no: 0, userId: 'a', remainingMs: 5000 });
    events.length = 0;

    // a is right: the reveal names the winner, the right choice and the scores: nothing else.
    room.answer('a', 0, 0);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'reveal', no: 0, answer: 0, winner: 'a' });
    const scores = (events[0] as Extract<RoomEvent, { type: 'reveal' }>).scores;
    expect(scores.find((seat) => seat.userId === 'a')?.score).toBe(10);
    expect(scores.find((seat) => seat.userId === 'b')?.score).toBe(-5);
  });
});
