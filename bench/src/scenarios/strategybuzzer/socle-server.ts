/**
 * Child process: Socle running the StrategyBuzzer app as `socle start` would (identity, mail,
 * tenancy, realtime, outbound, files, ledger, payments, the game), its admin claiming the game and importing questions
 * before it reports ready. Buzzes are ordered by arrival (`latencyCompensation: false`): the
 * compensation window is a deliberate wait of up to `maxCompensationMs`, not work, and the
 * Colyseus baseline has none.
 */
import {
  createFilesModule,
  createIdentityModule,
  createLedgerModule,
  createOutboundModule,
  createPaymentsModule,
  createRealtimeModule,
  createSocle,
  createTenancyModule,
} from 'socle';
import { coinPacks, createStrategyBuzzerModule } from 'strategybuzzer';
import { runServerChild } from '../../server-child.js';
import { benchMailModule, benchSocleConfig, injectJson, signInBenchUser } from '../shared/socle-setup.js';
import { createBenchPlayersModule } from './bench-players.js';
import {
  ANSWER_SECONDS,
  BUZZER_APP,
  QUESTION_SECONDS,
  QUESTIONS_PER_GAME,
  REVEAL_MS,
  ROOM_SIZE,
  START_DELAY_MS,
} from './game-rules.js';

/** REALTIME_WRITE_COALESCE_MS of the bench's Socle (see the app's README, Benchmark). */
const WRITE_COALESCE_MS = 20;

runServerChild(async (settings) => {
  const socle = await createSocle({
    config: benchSocleConfig(settings, {
      moduleSettings: {
        realtime: {
          appId: BUZZER_APP.id,
          appKey: BUZZER_APP.key,
          appSecret: BUZZER_APP.secret,
          // The deployment the app's README recommends for a game: a player's frames within 20 ms
          // of their last write share one system call (an order per buzz, buzzes ≈ 12 ms apart).
          // BENCH_SB_WRITE_COALESCE_MS=0 measures without it.
          writeCoalesceMs: Number(process.env.BENCH_SB_WRITE_COALESCE_MS ?? WRITE_COALESCE_MS),
        },
        strategybuzzer: {
          roomSize: ROOM_SIZE,
          minPlayers: ROOM_SIZE,
          matchWaitSeconds: 0,
          startDelayMs: START_DELAY_MS,
          questionSeconds: QUESTION_SECONDS,
          answerSeconds: ANSWER_SECONDS,
          revealMs: REVEAL_MS,
          questionsPerGame: QUESTIONS_PER_GAME,
          latencyCompensation: false,
        },
        // The game sells coin packs (a module it depends on); the bench buys none, so no Stripe
        // is reachable.
        payments: {
          stripeSecretKey: 'sk_test_unused',
          stripeWebhookSecrets: ['whsec_unused'],
          stripeApiUrl: 'http://127.0.0.1:9',
        },
      },
    }),
    modules: [
      createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
      benchMailModule(),
      createTenancyModule(),
      createRealtimeModule(),
      createOutboundModule(),
      createFilesModule(),
      createLedgerModule(),
      createPaymentsModule({ providers: ['stripe'], catalog: coinPacks }),
      createStrategyBuzzerModule(),
      // The players' accounts, opened without a password hash each (see bench-players.ts).
      createBenchPlayersModule(),
    ],
    ...(settings.dialect === 'pglite' ? { inMemory: true } : {}),
  });
  const token = await signInBenchUser(socle.app);
  const auth = { authorization: `Bearer ${token}` };
  const { body: orgs } = await injectJson(socle.app, { method: 'GET', url: '/orgs', headers: auth }, [200]);
  let orgId = (orgs as { id: string }[])[0]?.id;
  if (orgId === undefined) {
    const created = await injectJson(
      socle.app,
      { method: 'POST', url: '/orgs', headers: auth, payload: { name: 'StrategyBuzzer bench' } },
      [201],
    );
    orgId = (created.body as { id: string }).id;
  }
  const admin = { ...auth, 'x-org-id': orgId };
  await injectJson(socle.app, { method: 'POST', url: '/strategybuzzer/admin/claim', headers: admin }, [200]);
  await injectJson(
    socle.app,
    {
      method: 'POST',
      url: '/strategybuzzer/admin/questions',
      headers: admin,
      // The right choice is the first: the bench players answer 0.
      payload: Array.from({ length: QUESTIONS_PER_GAME }, (_, n) => ({
        language: 'fr',
        prompt: `Question ${n + 1} ?`,
        choices: ['right', 'wrong A', 'wrong B', 'wrong C'],
        answer: 0,
      })) as unknown as Record<string, unknown>,
    },
    [200],
  );
  const url = await socle.listen();
  return { url, close: async () => void (await socle.close()) };
});
