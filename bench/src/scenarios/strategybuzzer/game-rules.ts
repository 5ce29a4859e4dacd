/**
 * The timings and the realtime app both servers of the strategybuzzer scenario play with: a room
 * of 8, a question every few seconds (everyone buzzes, the first answers right, the answer is
 * shown `REVEAL_MS`, the next question opens).
 */
export const BUZZER_APP = Object.freeze({ id: 'sb-bench', key: 'sb-bench-key', secret: 'sb-bench-secret' });
export const ROOM_SIZE = 8;
export const START_DELAY_MS = 1000;
export const QUESTION_SECONDS = 10;
export const ANSWER_SECONDS = 8;
export const REVEAL_MS = 2000;
/** The most a game holds (`SB_QUESTIONS_PER_GAME`'s maximum): longer than any step of the run. */
export const QUESTIONS_PER_GAME = 100;
export const POINTS_RIGHT = 10;
export const POINTS_WRONG = -5;
