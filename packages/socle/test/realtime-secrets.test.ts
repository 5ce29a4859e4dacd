import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { defineModule } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import type { TestSocle } from '../src/testing/index.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase, nodesOnSharedDatabase } from './support/each-database.js';
import { nextEvent, pusherClient, pusherServer } from './support/realtime-clients.js';

const keyOne = randomBytes(32).toString('base64');
const keyTwo = randomBytes(32).toString('base64');
const quiz = defineModule({
  name: 'quiz',
  dependsOn: ['realtime'],
  channels: { 'private-encrypted-{name}': () => true },
});

describeEachDatabase(
  'Realtime: app secrets and encryption keys resealed after a SECRET_KEY rotation',
  (target) => {
    /** A node on the shared database with the given keys; the database outlives it. */
    const startNode = nodesOnSharedDatabase(target, () => ({
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createRealtimeModule(),
        quiz,
      ],
    }));
    const storedValues = async (socle: TestSocle, appId: string) =>
      (
        await socle.db.withConnection(
          (connection) =>
            connection.query<{ secret: string; encryption_master_key: string }>(
              'select secret, encryption_master_key from realtime.apps where id = $1',
              [appId],
            ),
          'owner',
        )
      ).rows[0];

    it('reseals at start what a previous key sealed; without the old key, the SDK still publishes and encrypted channels still work', async () => {
      const first = await startNode({ secretKey: keyOne });
      const owner = await first.newUser({ email: `realtime-rotation-${Date.now()}@example.com` });
      const orgId = (await first.newTenant({ owner: owner, name: 'Rotating Co' })).id;
      const created = await callAs(first, owner, 'POST', '/realtime/apps', {
        orgId,
        payload: { name: 'Quiz' },
      });
      const orgApp = created.json() as {
        id: string;
        key: string;
        secret: string;
        encryptionMasterKey: string;
      };
      const sealedBefore = await storedValues(first, orgApp.id);
      expect(sealedBefore?.secret.startsWith(first.secrets.currentPrefix)).toBe(true);
      await first.close();

      const second = await startNode({ secretKey: keyTwo, previousSecretKeys: [keyOne] });
      try {
        const resealed = await storedValues(second, orgApp.id);
        expect(resealed?.secret.startsWith(second.secrets.currentPrefix)).toBe(true);
        expect(resealed?.encryption_master_key.startsWith(second.secrets.currentPrefix)).toBe(true);
        expect(second.secrets.currentPrefix).not.toBe(sealedBefore?.secret.slice(0, 13));
      } finally {
        await second.close();
      }

      // keyOne is gone from the configuration: everything was resealed, so nothing needs it.
      const third = await startNode({ secretKey: keyTwo });
      try {
        const baseUrl = await third.listen();
        const config = {
          appId: orgApp.id,
          appKey: orgApp.key,
          appSecret: orgApp.secret,
          appEncryptionMasterKey: orgApp.encryptionMasterKey,
        };
        const subscriber = pusherClient(baseUrl, config, owner.token);
        try {
          const channel = subscriber.subscribe('quiz-news');
          await nextEvent(channel, 'pusher:subscription_succeeded');
          const received = nextEvent(channel, 'hello');
          expect(
            (await pusherServer(baseUrl, config).trigger('quiz-news', 'hello', 'after rotation')).status,
          ).toBe(200);
          expect(await received).toBe('after rotation');
        } finally {
          subscriber.disconnect();
        }
        const socketId = '1234.5678';
        const authorized = await callAs(third, owner, 'POST', '/realtime/auth', {
          orgId,
          payload: { socket_id: socketId, channel_name: 'private-encrypted-quiz', app_key: orgApp.key },
        });
        expect(authorized.json()).toEqual(
          pusherServer(baseUrl, config).authorizeChannel(socketId, 'private-encrypted-quiz'),
        );
      } finally {
        await third.close();
      }
    });
  },
);
