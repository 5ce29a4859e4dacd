import {
  type Clock,
  type HttpServer,
  OrgHeaders,
  type Realtime,
  requireOrgRole,
  requireUser,
  routeSecurity,
  Type,
} from 'socle';
import { buzzerErrors } from './buzzer.errors.js';
import type { BuzzerService } from './buzzer.service.js';
import type { BuzzerStore } from './buzzer.store.js';
import type { Coins } from './coins.js';
import { MAX_IMPORT, parseCsvQuestions, parseJsonQuestions } from './questions.js';

const tags = ['strategybuzzer'];
type Request = Parameters<typeof requireUser>[0];
const security = routeSecurity.user;
const RoomParams = Type.Object({ roomId: Type.String({ format: 'uuid' }) });

/**
 * The REST side of the game (the web client and the Flutter app use the same): profile, lobby,
 * friends' codes, chat history, leaderboard, results, and the admin's question bank and live
 * view. What happens in a room goes over the websocket (see the module).
 */
export function registerBuzzerRoutes(
  app: HttpServer,
  deps: { service: BuzzerService; store: BuzzerStore; coins: Coins; clock: Clock; realtime: Realtime },
): void {
  const { service, store, coins, clock } = deps;

  /** An admin of the organization that runs the game. */
  async function requireGameAdmin(request: Request) {
    const org = requireOrgRole(request, 'admin');
    const house = await store.house();
    if (house === undefined || house.orgId !== org.orgId) throw buzzerErrors.notAdmin();
    return org;
  }

  app.get(
    '/strategybuzzer/config',
    {
      schema: {
        tags,
        summary:
          'What a client needs to connect: the realtime key, the regions (time this call to each to pick one)',
      },
    },
    async () => ({ appKey: (await deps.realtime.clientKey()) ?? null, regions: service.regions }),
  );

  app.get(
    '/strategybuzzer/me',
    {
      schema: { tags, security, summary: 'My profile, coins, and where I am (ticket or room, drawn again)' },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const player = await service.profile(userId);
      const balance = await coins.balance(userId).catch((error: { code?: string }) => {
        if (error.code === 'strategybuzzer.not_set_up') return null;
        throw error;
      });
      return {
        player,
        coins: balance,
        ...(await service.current(userId)),
        recentGames: await store.gamesOf(userId, 10),
      };
    },
  );

  app.put(
    '/strategybuzzer/me',
    {
      schema: {
        tags,
        security,
        summary: 'Choose my display name',
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 40, pattern: '^[^<>]+$' }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      await service.profile(userId, request.body.name);
      return { player: await store.renamePlayer(userId, request.body.name) };
    },
  );

  app.post(
    '/strategybuzzer/play',
    {
      schema: {
        tags,
        security,
        summary: 'Ask to play: a ticket in the matchmaker (a room comes on my channel as `matched`)',
        body: Type.Object(
          {
            mode: Type.Union([Type.Literal('classic'), Type.Literal('premium')], { default: 'classic' }),
            language: Type.String({ pattern: '^[a-z]{2}(-[A-Z]{2})?$', default: 'fr' }),
            region: Type.Optional(Type.String({ maxLength: 40 })),
            code: Type.Optional(Type.String({ pattern: '^[A-Z0-9]{6}$' })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      const ticket = await service.play(userId, request.body);
      return reply.code(202).send({
        ticket: { id: ticket.id, mode: ticket.mode, region: ticket.region, code: ticket.code ?? null },
      });
    },
  );

  app.delete(
    '/strategybuzzer/play',
    { schema: { tags, security, summary: 'Leave the queue (a held premium entry fee comes back)' } },
    async (request, reply) => {
      await service.cancel(requireUser(request).userId);
      return reply.code(204).send();
    },
  );

  app.post(
    '/strategybuzzer/codes',
    { schema: { tags, security, summary: "A new friends' room code: friends ask to play with it" } },
    async (request) => {
      requireUser(request);
      return { code: service.newCode() };
    },
  );

  app.get(
    '/strategybuzzer/rooms/:roomId/chat',
    {
      schema: {
        tags,
        security,
        summary: 'The last chat messages of my room, oldest first',
        params: RoomParams,
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      if (!(await service.canWatch(userId, request.params.roomId))) throw buzzerErrors.notInRoom();
      return { messages: await service.lastChat(request.params.roomId) };
    },
  );

  app.get(
    '/strategybuzzer/games/:roomId',
    { schema: { tags, security, summary: 'The results of a finished game', params: RoomParams } },
    async (request) => {
      requireUser(request);
      return { players: await store.gamePlayers(request.params.roomId) };
    },
  );

  app.post(
    '/strategybuzzer/admin/claim',
    {
      schema: {
        tags,
        security: routeSecurity.memberOrApiKey,
        headers: OrgHeaders,
        summary: "Run the game from this organization (admin): its ledger holds the players' coins",
      },
    },
    async (request) => {
      const org = requireOrgRole(request, 'admin');
      await coins.claim(org.orgId, org.userId);
      return { orgId: org.orgId };
    },
  );

  app.register(async (scope) => {
    // CSV imports arrive as text; the JSON ones as JSON (Socle's parser).
    scope.addContentTypeParser(
      'text/csv',
      { parseAs: 'string', bodyLimit: 5 * 1024 * 1024 },
      (_request, body, done) => done(null, body),
    );
    scope.post(
      '/strategybuzzer/admin/questions',
      {
        bodyLimit: 5 * 1024 * 1024,
        schema: {
          tags,
          security: routeSecurity.memberOrApiKey,
          headers: OrgHeaders,
          summary: `Import questions (admin): a JSON array or a CSV file (text/csv), at most ${MAX_IMPORT}; all or none`,
        },
      },
      async (request) => {
        await requireGameAdmin(request);
        const questions =
          typeof request.body === 'string'
            ? parseCsvQuestions(request.body)
            : parseJsonQuestions(request.body);
        return store.importQuestions(questions, clock.now());
      },
    );
  });

  app.get(
    '/strategybuzzer/admin/overview',
    {
      schema: {
        tags,
        security: routeSecurity.memberOrApiKey,
        headers: OrgHeaders,
        summary: 'Live rooms and players, the question bank, coins taken in (admin)',
      },
    },
    async (request) => {
      const org = await requireGameAdmin(request);
      return {
        /** The node that answered (rooms name their host with it). */
        node: service.nodeId,
        rooms: await service.liveRooms(),
        waitingPlayers: await service.waitingPlayers(),
        questions: await store.countQuestions(),
        revenueCoins: await coins.revenue(org.userId),
      };
    },
  );
}
