import {
  defineJob,
  defineModule,
  type FilesServices,
  type LedgerServices,
  monotonicNow,
  type PaymentsServices,
  type Realtime,
  requireUser,
  type SetupContext,
} from 'socle';
import { registerBuzzerRoutes } from './buzzer.routes.js';
import { type BuzzerService, createBuzzerService } from './buzzer.service.js';
import { type BuzzerSettings, buzzerSettings } from './buzzer.settings.js';
import { type BuzzerStore, createBuzzerStore } from './buzzer.store.js';
import type { BuzzerTables } from './buzzer.tables.js';
import { chatArchiveBucket, createChatExport } from './chat-export.js';
import { type Coins, createCoins } from './coins.js';
import { createLeaderboard, type Leaderboard } from './leaderboard.js';
import { registerLeaderboardRoutes } from './leaderboard.routes.js';
import { createLeaderboardStore } from './leaderboard.store.js';
import { avatarBucket, createProfiles, type Profiles } from './profile.js';
import { registerProfileRoutes } from './profile.routes.js';
import { createShop, type Shop } from './shop.js';
import { registerShopRoutes } from './shop.routes.js';
import { createVoice, type Voice } from './voice.js';
import { registerVoiceRoutes } from './voice.routes.js';

/** What the app gives tests and other modules (`socle.servicesOf(strategybuzzer)`). */
export interface BuzzerServices {
  readonly game: BuzzerService;
  readonly store: BuzzerStore;
  readonly coins: Coins;
  /** Coin packs through the payments module. */
  readonly shop: Shop;
  /** Global and weekly leaderboards. */
  readonly leaderboard: Leaderboard;
  /** Player profiles and avatars (files module). */
  readonly profiles: Profiles;
  /** WebRTC signalling between the players of a room (a mesh, capped). */
  readonly voice: Voice;
  /**
   * Exports chat older than SB_CHAT_RETENTION_DAYS to object storage (gzip NDJSON, bucket
   * sb-chat-archive) and deletes it in the same transaction; how many messages (the nightly job).
   */
  readonly purgeChat: () => Promise<number>;
  /** Timers of the running node (cleared on stop). */
  readonly timers: NodeJS.Timeout[];
  /**
   * Whether the game's tick (deadlines of the rooms, every 50 ms) is scheduled: only while this
   * node hosts a room, so a node without rooms does not wake 20 times a second for nothing.
   */
  readonly ticking: () => boolean;
  readonly stopListening: (() => void)[];
}

export interface BuzzerOptions {
  /**
   * The monotonic clock rounds run on, in milliseconds: Socle's `monotonicNow` (the clock the
   * realtime module reads buzz arrivals on). Tests pass their own to move time by hand.
   */
  readonly now?: () => number;
  /** False: no timers (tests call `game.tick()` themselves). */
  readonly timers?: boolean;
}

/**
 * StrategyBuzzer: quiz rooms where players buzz to answer first, ordered fairly by the server
 * (arrival corrected by each connection's measured latency, capped), with text chat and coins.
 * Written only against Socle's public API, like any app.
 *
 * @example
 * const payments = createPaymentsModule({ providers: ['stripe'], catalog: coinPacks });
 * const socle = await createSocle({ config, modules: [...createBuiltInModules(), createLedgerModule(), payments, createStrategyBuzzerModule()] });
 */
export function createStrategyBuzzerModule(options: BuzzerOptions = {}) {
  const now = options.now ?? monotonicNow;
  let game: BuzzerService | undefined;
  const seated = async (userId: string, roomId: string) => (await game?.canWatch(userId, roomId)) ?? false;
  /** The game's tick: `startTick` is set by onStart (timers on); it runs while `hosting`. */
  let startTick: (() => NodeJS.Timeout) | undefined;
  let tickTimer: NodeJS.Timeout | undefined;
  let hosting = false;
  const syncTick = () => {
    if (hosting && tickTimer === undefined && startTick !== undefined) tickTimer = startTick();
    else if (!hosting && tickTimer !== undefined) {
      clearInterval(tickTimer);
      tickTimer = undefined;
    }
  };

  return defineModule({
    name: 'strategybuzzer',
    dependsOn: ['identity', 'tenancy', 'realtime', 'ledger', 'payments', 'files'],
    migrations: new URL('./migrations/', import.meta.url),
    settings: buzzerSettings,
    // The reference web client (plain HTML and ES modules), served at /apps/strategybuzzer/.
    web: { root: new URL('../web/', import.meta.url) },

    setup(context: SetupContext<BuzzerTables, BuzzerSettings>): BuzzerServices {
      const store = createBuzzerStore(context.db);
      const { ledger } = context.servicesOf<LedgerServices>('ledger');
      const { payments } = context.servicesOf<PaymentsServices>('payments');
      const coins = createCoins({
        db: context.db,
        ledger,
        payments,
        store,
        clock: context.clock,
        starterCoins: context.settings.starterCoins,
      });
      game = createBuzzerService({
        store,
        coins,
        realtime: context.servicesOf<Realtime>('realtime'),
        bus: context.bus,
        rateLimiter: context.rateLimiter,
        clock: context.clock,
        log: context.log,
        settings: context.settings,
        now,
        onHosting: (hostingNow) => {
          hosting = hostingNow;
          syncTick();
        },
      });
      const shop = createShop({
        payments,
        coins,
        store,
        scope: context.scope,
        realtime: context.servicesOf<Realtime>('realtime'),
        log: context.log,
      });
      const service = game;
      const voice = createVoice({
        realtime: context.servicesOf<Realtime>('realtime'),
        log: context.log,
        roomOf: (userId) => service.seatHere(userId),
        maxPeers: context.settings.voiceMaxPeers,
      });
      // Voice events go to the room's host, as the game's do: one node keeps a room's voice.
      service.onHostEvent('client-voice-', (userId, event, data) => voice.onRoomEvent(userId, event, data));
      const leaderboardStore = createLeaderboardStore(context.db);
      const leaderboard = createLeaderboard({ store: leaderboardStore, clock: context.clock });
      const files = context.servicesOf<FilesServices>('files');
      files.registerBucket(avatarBucket);
      files.registerBucket(chatArchiveBucket);
      const chatExport = createChatExport({
        files,
        store,
        clock: context.clock,
        log: context.log,
        retentionDays: context.settings.chatRetentionDays,
      });
      const purgeChat = async () => (await chatExport.run()).exported;
      const profiles = createProfiles({ files, store, leaderboardStore, clock: context.clock });
      return {
        game,
        store,
        coins,
        shop,
        voice,
        leaderboard,
        profiles,
        purgeChat,
        timers: [],
        ticking: () => tickTimer !== undefined,
        stopListening: [],
      };
    },

    // Who may open the game's channels: a player their own; the players of a room its two.
    channels: {
      'private-sb-player-{userId}': (request, { userId }) => requireUser(request).userId === userId,
      'private-sb-room-{roomId}': (request, { roomId }) =>
        seated(requireUser(request).userId, roomId as string),
      'private-sb-chat-{roomId}': (request, { roomId }) =>
        seated(requireUser(request).userId, roomId as string),
    },

    routes(app, { services, clock, servicesOf, settings }) {
      registerBuzzerRoutes(app, {
        service: services.game,
        store: services.store,
        coins: services.coins,
        clock,
        realtime: servicesOf<Realtime>('realtime'),
      });
      registerShopRoutes(app, { shop: services.shop, service: services.game });
      registerVoiceRoutes(app, { service: services.game, settings, clock });
      registerLeaderboardRoutes(app, { leaderboard: services.leaderboard });
      registerProfileRoutes(app, {
        profiles: services.profiles,
        service: services.game,
        files: servicesOf<FilesServices>('files'),
      });
    },

    jobs: {
      // Chat is kept SB_CHAT_RETENTION_DAYS, then exported to object storage and deleted every night.
      purgeChat: defineJob({
        cron: '30 3 * * *',
        queue: 'low',
        async handler({ log }, { purgeChat }: BuzzerServices) {
          const purged = await purgeChat();
          if (purged > 0) log.info({ purged }, 'Old chat messages exported and deleted');
        },
      }),
    },

    async onStart({ services, servicesOf, log, settings }) {
      const realtime = servicesOf<Realtime>('realtime');
      await services.game.start();
      services.stopListening.push(
        realtime.onClientEvent((event) => services.game.onClientEvent(event)),
        realtime.onSocketClosed(({ socketId }) => {
          services.game
            .onSocketClosed(socketId)
            .catch((error) => log.warn({ err: error }, 'A closed socket could not be handled'));
        }),
      );
      if (options.timers === false) return;
      /** Runs `work` every `ms`, skipping a turn while the previous one still runs. */
      const repeat = (ms: number, what: string, work: () => Promise<void> | void) => {
        let running = false;
        const timer = setInterval(() => {
          if (running) return;
          running = true;
          Promise.resolve()
            .then(work)
            .catch((error) => log.error({ err: error }, `${what} failed`))
            .finally(() => {
              running = false;
            });
        }, ms);
        timer.unref();
        return timer;
      };
      const every = (ms: number, what: string, work: () => Promise<void> | void) => {
        services.timers.push(repeat(ms, what, work));
      };
      // Rooms' deadlines and seats given up: only while a room is hosted here (see syncTick).
      startTick = () => repeat(50, 'Game tick', () => services.game.advance());
      syncTick();
      every(250, 'Matchmaking', () => services.game.match());
      every(2000, 'Latency probe', () => services.game.probeSeated());
      // The fleet's watch (with Redis: other nodes may exist): heartbeats of the rooms hosted here
      // (four per SB_HOST_TIMEOUT_SECONDS at least, so a loaded node is not taken for dead),
      // rooms of a lost host ended.
      if (services.game.fleet)
        every(Math.min(2000, settings.hostTimeoutSeconds * 250), 'Room watch', () =>
          services.game.watchRooms(),
        );
    },

    async onStop({ services }) {
      for (const timer of services.timers) clearInterval(timer);
      startTick = undefined;
      hosting = false;
      syncTick();
      for (const stop of services.stopListening) stop();
      // Rooms hosted here end cleanly, scores kept, while the database and the bus are still up.
      await services.game.stop();
    },
  });
}

export type StrategyBuzzerModule = ReturnType<typeof createStrategyBuzzerModule>;
