import { defineModule, Type } from 'socle';
import { createTestAccounts } from 'socle/testing';

/** Most accounts one request opens (a room's players, with room to spare). */
const MAX_PLAYERS_PER_REQUEST = 64;

/**
 * The bench's players' accounts (bench only, never in an app): `POST /bench/players { count }`
 * answers `{ players: [{ userId, token }] }`, opened with `createTestAccounts` of `socle/testing`,
 * which shares one Argon2id hash among them instead of hashing each password at sign-up. Sign-up
 * is not what this scenario measures, and its hashes (≈ 20 ms of CPU and 19 MiB of working
 * memory each, at 1,000 players) slowed each step's setup by minutes on a loaded machine and
 * inflated the server's memory per player.
 */
export function createBenchPlayersModule() {
  return defineModule({
    name: 'benchplayers',
    dependsOn: ['identity'],
    routes(app, { servicesOf }) {
      app.post(
        '/bench/players',
        {
          schema: {
            body: Type.Object({ count: Type.Integer({ minimum: 1, maximum: MAX_PLAYERS_PER_REQUEST }) }),
          },
        },
        async (request) => {
          const { count } = request.body as { count: number };
          const players = await createTestAccounts({ servicesOf }, count, { emailPrefix: 'sb-player' });
          return { players: players.map(({ userId, token }) => ({ userId, token })) };
        },
      );
    },
  });
}
