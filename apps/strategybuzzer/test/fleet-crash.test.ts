import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_SECRET_KEY, type TestUser, testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPlayer, eventsOf, type FleetPlayer, redisReason, redisUrl } from './fleet-support.js';
import { type BuzzerWorld, startBuzzerWorld } from './support.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = path.join(root, 'packages/socle/dist/cli/main.js');
const SERVER = path.join(root, 'apps/strategybuzzer/dist/server.js');
const HOST_TIMEOUT_SECONDS = 4;

/** A `socle start` process serving the game, its address once it listens. */
interface Node {
  readonly child: ChildProcess;
  readonly url: string;
  output: string;
}

const targets = await testDatabaseTargets();
const postgres = targets.find((target) => target.dialect === 'postgres');
const redisSkip = await redisReason();
const built = existsSync(CLI) && existsSync(SERVER) ? undefined : 'not built (npm run build)';
const skipReason = postgres?.available ? (redisSkip ?? built) : 'no Postgres';

// Two real `socle start` processes on one Postgres and one Redis; the one hosting a running game
// is killed with SIGKILL.
describe.skipIf(skipReason !== undefined)(
  `StrategyBuzzer after kill -9 of the node hosting a game [postgres + redis${skipReason ? `: ${skipReason}` : ''}]`,
  () => {
    let setup: BuzzerWorld;
    const nodes: Node[] = [];
    const players: FleetPlayer[] = [];
    const directories: string[] = [];

    async function startNode(): Promise<Node> {
      const cwd = mkdtempSync(path.join(tmpdir(), 'sb-crash-'));
      directories.push(cwd);
      const child = spawn(process.execPath, [CLI, 'start'], {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? cwd,
          LOG_FORMAT: 'json',
          HOST: '127.0.0.1',
          PORT: '0',
          DATABASE_URL: setup.socle.database.url as string,
          REDIS_URL: redisUrl,
          REDIS_NAMESPACE: setup.app.appId,
          SECRET_KEY: TEST_SECRET_KEY,
          REALTIME_APP_ID: setup.app.appId,
          REALTIME_APP_KEY: setup.app.appKey,
          REALTIME_APP_SECRET: setup.app.appSecret,
          SOCLE_MODULES: SERVER,
          // The game's server sells coin packs through Stripe: it starts only configured (the
          // API is never called here).
          PAYMENTS_STRIPE_SECRET_KEY: 'sk_test_unused',
          PAYMENTS_STRIPE_WEBHOOK_SECRETS: 'whsec_unused',
          PAYMENTS_STRIPE_API_URL: 'http://127.0.0.1:9',
          SB_ROOM_SIZE: '2',
          SB_MIN_PLAYERS: '2',
          SB_MATCH_WAIT_SECONDS: '0',
          SB_QUESTIONS_PER_GAME: '5',
          SB_START_DELAY_MS: '2000', // players open the room's channels before the first question
          SB_QUESTION_SECONDS: '60',
          SB_ANSWER_SECONDS: '30',
          SB_REVEAL_MS: '60000',
          SB_HOST_TIMEOUT_SECONDS: String(HOST_TIMEOUT_SECONDS),
        },
      });
      let output = '';
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no listening line in 90 s:\n${output}`)), 90_000);
        child.stdout?.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
          if (match) {
            clearTimeout(timer);
            resolve(match[1] as string);
          }
        });
        child.stderr?.on('data', (chunk: Buffer) => {
          output += chunk.toString();
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`exited (${code ?? signal}) before listening:\n${output}`));
        });
      });
      const node = { child, url, output };
      child.stdout?.on('data', (chunk: Buffer) => {
        node.output += chunk.toString();
      });
      return node;
    }

    beforeAll(async () => {
      if (postgres === undefined) return;
      // The database, migrated, with the game claimed and questions imported; the users come
      // from here (the nodes share its SECRET_KEY and database).
      setup = await startBuzzerWorld(postgres, { timers: false, questions: 10 });
      // One after the other: the first applies the built-in modules' migrations.
      for (let index = 0; index < 2; index++) nodes.push(await startNode());
    }, 240_000);
    afterAll(async () => {
      for (const player of players) player.pusher.disconnect();
      for (const node of nodes) if (node.child.exitCode === null) node.child.kill('SIGKILL');
      await setup?.socle.dispose();
      for (const directory of directories) rmSync(directory, { recursive: true, force: true });
    });

    const http = async (
      index: number,
      user: Pick<TestUser, 'token'>,
      method: string,
      url: string,
      body?: object,
    ) => {
      const response = await fetch(`${(nodes[index] as Node).url}${url}`, {
        method,
        headers: {
          authorization: `Bearer ${user.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(user === setup.admin ? { 'x-org-id': setup.admin.orgId } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      // biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked by the assertions
      const answer: any = response.status === 204 ? null : await response.json();
      return { status: response.status, body: answer };
    };

    it('ends the game cleanly on the surviving node, scores of the last answer kept, players free to play again', {
      timeout: 180_000,
    }, async () => {
      const users = [await setup.socle.newUser(), await setup.socle.newUser()];
      const group = [
        await connectPlayer((nodes[0] as Node).url, setup.app.appKey, users[0] as TestUser),
        await connectPlayer((nodes[1] as Node).url, setup.app.appKey, users[1] as TestUser),
      ];
      players.push(...group);
      const code = setup.services.game.newCode();
      for (const [index, user] of users.entries()) {
        const played = await http(index, user, 'POST', '/strategybuzzer/play', {
          mode: 'classic',
          language: 'fr',
          code,
        });
        expect(played.status, JSON.stringify(played.body)).toBe(202);
      }
      await expect
        .poll(() => group.every((player) => player.roomId !== undefined), { timeout: 30_000 })
        .toBe(true);
      const roomId = group[0]?.roomId as string;
      expect(group[1]?.roomId).toBe(roomId);

      // Which node hosts the room: each node names itself in the admin overview.
      const overviews = await Promise.all(
        [0, 1].map((index) => http(index, setup.admin, 'GET', '/strategybuzzer/admin/overview')),
      );
      const room = overviews[0]?.body.rooms.find((candidate: { id: string }) => candidate.id === roomId);
      const hostIndex = overviews.findIndex((overview) => overview.body.node === room.host);
      expect(hostIndex).toBeGreaterThanOrEqual(0);
      const survivorIndex = 1 - hostIndex;
      const survivor = group[survivorIndex] as FleetPlayer;

      // Question 0: the survivor's player (its socket on the node that stays) buzzes and answers
      // right: +10, kept in the room's checkpoint.
      await expect
        .poll(() => group.every((player) => eventsOf(player, 'room', 'question').length > 0), {
          timeout: 30_000,
        })
        .toBe(true);
      survivor.trigger('client-buzz', { no: 0 });
      // The order that gives the floor carries it; a right answer comes as the reveal.
      await expect
        .poll(() => eventsOf(survivor, 'room', 'order').length, { timeout: 30_000 })
        .toBeGreaterThan(0);
      survivor.trigger('client-answer', { no: 0, choice: 0 });
      await expect
        .poll(() => eventsOf(survivor, 'room', 'reveal').length, { timeout: 30_000 })
        .toBeGreaterThan(0);
      await expect
        .poll(
          async () =>
            (await setup.services.store.liveRooms())
              .find((live) => live.id === roomId)
              ?.results.find((result) => result.userId === survivor.user.userId)?.score,
          { timeout: 30_000 },
        )
        .toBe(10);

      // The host dies mid-game (the answer is revealed for a minute: the game is running).
      const host = nodes[hostIndex] as Node;
      host.child.kill('SIGKILL');
      await new Promise((resolve) => host.child.once('exit', resolve));
      const killedAt = Date.now();

      // The surviving node notices the silent host and ends the game: its players are told,
      // with the scores as of the last answer.
      await expect
        .poll(() => eventsOf(survivor, 'room', 'finished').length, {
          timeout: (HOST_TIMEOUT_SECONDS + 30) * 1000,
          interval: 200,
        })
        .toBe(1);
      console.info(
        `the game ended on the surviving node ${Date.now() - killedAt} ms after kill -9 (SB_HOST_TIMEOUT_SECONDS=${HOST_TIMEOUT_SECONDS})`,
      );
      const finished = eventsOf(survivor, 'room', 'finished')[0]?.data as {
        reason: string;
        results: { userId: string; score: number; rank: number }[];
      };
      expect(finished.reason).toBe('host_lost');
      expect(finished.results).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ userId: survivor.user.userId, score: 10, rank: 1 }),
          expect.objectContaining({
            userId: (group[hostIndex] as FleetPlayer).user.userId,
            score: 0,
            rank: 2,
          }),
        ]),
      );

      // The results are saved once; both players are free to play again (on the node that stays).
      const results = await http(survivorIndex, survivor.user, 'GET', `/strategybuzzer/games/${roomId}`);
      expect(results.body.players).toHaveLength(2);
      expect(results.body.players[0]).toMatchObject({ userId: survivor.user.userId, score: 10 });
      for (const user of users) {
        const again = await http(survivorIndex, user, 'POST', '/strategybuzzer/play', {
          mode: 'classic',
          language: 'fr',
        });
        expect(again.status, JSON.stringify(again.body)).toBe(202);
        await http(survivorIndex, user, 'DELETE', '/strategybuzzer/play');
      }
      const me = await http(survivorIndex, survivor.user, 'GET', '/strategybuzzer/me');
      expect(me.body.player).toMatchObject({ games: 1, points: 10 });
    });
  },
);
