import { SocleError } from 'socle';
import type { Refusal } from './game.js';

/**
 * The app's errors: stable codes `strategybuzzer.<reason>`, rendered as problem+json by Socle's
 * error handler (over HTTP) or sent as an `error` event on the player's channel (over the socket).
 */
export const buzzerErrors = {
  badImport: (problems: string[]) =>
    new SocleError('strategybuzzer.invalid_questions', `The questions were not imported: ${problems[0]}`, {
      status: 400,
      details: { problems },
    }),
  badRegion: (region: string, regions: readonly string[]) =>
    new SocleError('strategybuzzer.unknown_region', `No region "${region}"; regions: ${regions.join(', ')}`, {
      status: 400,
      details: { field: 'body/region', regions },
    }),
  noQuestions: (language: string) =>
    new SocleError('strategybuzzer.no_questions', `The question bank has no question in "${language}"`, {
      status: 409,
      details: { language },
    }),
  tooFewPlayers: (players: number, minimum: number) =>
    new SocleError(
      'strategybuzzer.too_few_players',
      `Only ${players} of the room's players could enter (at least ${minimum} play)`,
      { status: 409, details: { players, minimum } },
    ),
  inRoom: (roomId: string) =>
    new SocleError('strategybuzzer.already_in_room', 'You are already playing in a room', {
      status: 409,
      details: { roomId },
    }),
  notInRoom: () =>
    new SocleError('strategybuzzer.not_in_room', 'You are not playing in a room', { status: 404 }),
  refused: (reason: Refusal) =>
    new SocleError(`strategybuzzer.${reason}`, refusalMessages[reason], { status: 409 }),
  notSetUp: () =>
    new SocleError(
      'strategybuzzer.not_set_up',
      'No organization runs the game yet: an organization admin claims it with POST /strategybuzzer/admin/claim',
      { status: 409 },
    ),
  claimed: () =>
    new SocleError('strategybuzzer.already_claimed', 'Another organization already runs the game', {
      status: 409,
    }),
  notAdmin: () =>
    new SocleError('strategybuzzer.not_admin', "Only admins of the game's organization may do this", {
      status: 403,
    }),
  chatTooFast: () =>
    new SocleError('strategybuzzer.chat_rate_limited', 'Too many chat messages: wait a little', {
      status: 429,
    }),
  buzzTooFast: () => new SocleError('strategybuzzer.buzz_rate_limited', 'Too many buzzes', { status: 429 }),
  badMessage: (why: string) => new SocleError('strategybuzzer.invalid_message', why, { status: 400 }),
};

const refusalMessages: Record<Refusal, string> = {
  not_in_room: 'You are not a player of this room',
  question_closed: 'This question is not open any more',
  already_buzzed: 'You already buzzed on this question',
  not_your_turn: 'Another player holds the floor',
  finished: 'The game is over',
};
