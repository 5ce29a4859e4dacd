import { defineSettings, type SettingValues, setting } from 'socle';

/**
 * The game's settings: each an environment variable (and a `socle.config.json` key under
 * `moduleSettings.strategybuzzer`), checked at start, listed by `socle help config`.
 */
export const buzzerSettings = defineSettings({
  regions: setting.string({
    env: 'SB_REGIONS',
    description: 'Regions players are matched in, comma-separated (a player picks the one answering fastest)',
    default: 'local',
    pattern: /^[a-z0-9-]+(,[a-z0-9-]+)*$/,
    expectation: 'comma-separated lower-case region names',
  }),
  nodeRegion: setting.optionalString({
    env: 'SB_NODE_REGION',
    description:
      "The region this node hosts rooms for (one of SB_REGIONS; default the first): it matches that region's tickets",
  }),
  hostTimeoutSeconds: setting.integer({
    env: 'SB_HOST_TIMEOUT_SECONDS',
    description:
      'A room whose host node has not beaten for this long is ended by another node, its scores kept (the host is lost)',
    default: 10,
    min: 2,
    max: 600,
  }),
  maxClockSkewMs: setting.integer({
    env: 'SB_MAX_CLOCK_SKEW_MS',
    description:
      "The most a buzz forwarded from another node may be moved earlier for its transit, read on two nodes' clocks (caps what clock skew can do)",
    default: 25,
    min: 0,
    max: 1000,
  }),
  roomSize: setting.integer({
    env: 'SB_ROOM_SIZE',
    description: 'Players per room at most',
    default: 4,
    min: 2,
    max: 8,
  }),
  minPlayers: setting.integer({
    env: 'SB_MIN_PLAYERS',
    description: 'Fewest players a room starts with after the wait',
    default: 2,
    min: 1,
    max: 8,
  }),
  matchWaitSeconds: setting.integer({
    env: 'SB_MATCH_WAIT_SECONDS',
    description: 'How long a ticket waits for a full room before starting with whoever is there',
    default: 10,
    min: 0,
    max: 600,
  }),
  questionsPerGame: setting.integer({
    env: 'SB_QUESTIONS_PER_GAME',
    description: 'Questions in a game',
    default: 10,
    min: 1,
    max: 100,
  }),
  startDelayMs: setting.integer({
    env: 'SB_START_DELAY_MS',
    description: 'Pause between a room forming and its first question (players open its channels)',
    default: 3000,
    min: 0,
    max: 60_000,
  }),
  questionSeconds: setting.integer({
    env: 'SB_QUESTION_SECONDS',
    description: 'How long a question takes buzzes',
    default: 15,
    min: 1,
    max: 300,
  }),
  answerSeconds: setting.integer({
    env: 'SB_ANSWER_SECONDS',
    description: 'How long the player holding the floor has to answer',
    default: 8,
    min: 1,
    max: 120,
  }),
  revealMs: setting.integer({
    env: 'SB_REVEAL_MS',
    description: 'How long the right answer stays shown before the next question',
    default: 3000,
    min: 0,
    max: 60_000,
  }),
  latencyCompensation: setting.boolean({
    env: 'SB_LATENCY_COMPENSATION',
    description: "Order buzzes by arrival minus each player's measured one-way latency (false: by arrival)",
    default: true,
  }),
  maxCompensationMs: setting.integer({
    env: 'SB_MAX_COMPENSATION_MS',
    description: 'The most a buzz may be moved earlier for its latency (what faking lag can gain at most)',
    default: 250,
    min: 0,
    max: 2000,
  }),
  starterCoins: setting.integer({
    env: 'SB_STARTER_COINS',
    description: "Coins in a new player's wallet",
    default: 100,
    min: 0,
    max: 1_000_000,
  }),
  premiumEntryCoins: setting.integer({
    env: 'SB_PREMIUM_ENTRY_COINS',
    description: 'Coins to enter a premium room',
    default: 20,
    min: 1,
    max: 1_000_000,
  }),
  hintCoins: setting.integer({
    env: 'SB_HINT_COINS',
    description: 'Coins for a hint',
    default: 5,
    min: 1,
    max: 1_000_000,
  }),
  chatMaxLength: setting.integer({
    env: 'SB_CHAT_MAX_LENGTH',
    description: 'Characters in a chat message at most',
    default: 280,
    min: 1,
    max: 2000,
  }),
  reconnectGraceSeconds: setting.integer({
    env: 'SB_RECONNECT_GRACE_SECONDS',
    description: 'How long a player whose socket closed keeps their seat in a running game',
    default: 30,
    min: 1,
    max: 3600,
  }),
  turnSecret: setting.secret({
    env: 'SB_TURN_SECRET',
    description:
      "coTURN's static-auth-secret (use-auth-secret): per-player TURN credentials are signed with it; unset, voice gets no TURN relay",
    minLength: 16,
  }),
  turnUrls: setting.list({
    env: 'SB_TURN_URLS',
    description:
      'TURN/STUN addresses given to clients, comma-separated (turn:turn.example.com:3478?transport=udp,turns:turn.example.com:5349)',
  }),
  turnTtlSeconds: setting.integer({
    env: 'SB_TURN_TTL_SECONDS',
    description: 'How long a TURN credential works (coTURN checks it at each allocation and refresh)',
    default: 3600,
    min: 60,
    max: 86_400,
  }),
  voiceMaxPeers: setting.integer({
    env: 'SB_VOICE_MAX_PEERS',
    description: "Players in one room's voice at most (a mesh: each sends to every other)",
    default: 4,
    min: 2,
    max: 5,
  }),
  chatRetentionDays: setting.integer({
    env: 'SB_CHAT_RETENTION_DAYS',
    description: 'Days chat messages are kept before the daily purge',
    default: 30,
    min: 1,
    max: 3650,
  }),
});

export type BuzzerSettings = SettingValues<typeof buzzerSettings>;
