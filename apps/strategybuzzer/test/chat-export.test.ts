import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { FilesServices } from 'socle';
import { testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuzzerWorld, caller, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();
const DAY = 24 * 3600 * 1000;

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer chat export to object storage [%s]',
  (_, target) => {
    let world: BuzzerWorld;

    beforeAll(async () => {
      if (!target.available) return;
      world = await startBuzzerWorld(target, { settings: { chatRetentionDays: 30 } });
    });
    afterAll(() => world?.socle.dispose());

    it.skipIf(!target.available)(
      'writes chat past the retention as gzip NDJSON to the archive bucket, then deletes it from Postgres; recent chat stays',
      async () => {
        const player = await world.socle.newUser();
        await world.services.game.profile(player.userId, 'Chatty');
        const roomId = randomUUID();
        const now = Date.now();
        const old = [45, 40, 31].map((days, index) => ({
          id: randomUUID(),
          roomId,
          userId: player.userId,
          name: 'Chatty',
          body: `old message ${index} « é »`,
          createdAt: new Date(now - days * DAY),
        }));
        const recent = {
          ...(old[0] as (typeof old)[number]),
          id: randomUUID(),
          body: 'still here',
          createdAt: new Date(now - DAY),
        };
        for (const message of [...old, recent]) await world.services.store.addChat(message);

        expect(await world.services.purgeChat()).toBe(3);
        expect((await world.services.store.lastChat(roomId, 50)).map((message) => message.body)).toEqual([
          'still here',
        ]);
        // Nothing left to export: a second run writes no empty object.
        expect(await world.services.purgeChat()).toBe(0);

        // The archive is the game organization's object: its admin lists and downloads it.
        const listed = await caller(world.socle)(world.admin, 'GET', '/files/sb-chat-archive', undefined, {
          'x-org-id': world.admin.orgId,
        });
        expect(listed.statusCode).toBe(200);
        const objects = listed.json().objects as { url: string; contentType: string; name: string }[];
        expect(objects).toHaveLength(1);
        const [archive] = objects as [{ url: string; contentType: string; name: string }];
        expect(archive.contentType).toBe('application/gzip');
        expect(archive.name).toMatch(/^chat-.*\.ndjson\.gz$/);
        const download = await world.socle.app.inject({ method: 'GET', url: archive.url });
        expect(download.statusCode).toBe(200);
        const lines = gunzipSync(download.rawPayload).toString('utf8').trimEnd().split('\n');
        expect(lines.map((text) => JSON.parse(text))).toEqual(
          old.map((message) => ({ ...message, createdAt: message.createdAt.toISOString() })),
        );
      },
    );

    it.skipIf(!target.available)(
      "a player's privacy export includes their archived messages, and their erasure removes them from the archive",
      async () => {
        const [alice, bob] = [await world.socle.newUser(), await world.socle.newUser()];
        await world.services.game.profile(alice.userId, 'Alice');
        await world.services.game.profile(bob.userId, 'Bob');
        const roomId = randomUUID();
        const now = Date.now();
        const said = (user: { userId: string }, name: string, body: string, days: number) => ({
          id: randomUUID(),
          roomId,
          userId: user.userId,
          name,
          body,
          createdAt: new Date(now - days * DAY),
        });
        const messages = [
          said(alice, 'Alice', "je m'appelle Alice, j'habite à Lyon", 50),
          said(bob, 'Bob', 'salut Alice', 49),
          said(alice, 'Alice', 'à demain', 48),
        ];
        for (const message of messages) await world.services.store.addChat(message);
        expect(await world.services.purgeChat()).toBe(3);

        // What the files module's privacy hooks give a player's export and do on their erasure.
        const files = world.socle.servicesOf<FilesServices>('files');
        const exported = await files.archivedRecordsOf(alice.userId);
        expect(
          exported.flatMap((archive) => archive.records.map((record) => (record as { body?: unknown }).body)),
        ).toEqual(["je m'appelle Alice, j'habite à Lyon", 'à demain']);

        expect(await files.eraseArchivedRecordsOf(alice.userId)).toBe(1);
        // The archive the organization keeps holds Bob's message only; read as its admin.
        const listed = await caller(world.socle)(world.admin, 'GET', '/files/sb-chat-archive', undefined, {
          'x-org-id': world.admin.orgId,
        });
        const archives = listed.json().objects as { url: string; size: number }[];
        const bodies: string[] = [];
        for (const archive of archives) {
          const download = await world.socle.app.inject({ method: 'GET', url: archive.url });
          expect(download.statusCode).toBe(200);
          expect(download.rawPayload.length).toBe(archive.size);
          for (const text of gunzipSync(download.rawPayload).toString('utf8').split('\n'))
            if (text !== '') {
              const record = JSON.parse(text) as { userId: string; body: string };
              bodies.push(`${record.userId}:${record.body}`);
            }
        }
        expect(bodies.filter((body) => body.startsWith(alice.userId))).toEqual([]);
        expect(bodies).toContain(`${bob.userId}:salut Alice`);
        // Erasing again (a retry after a crash) changes nothing; Alice's export is empty now.
        expect(await files.eraseArchivedRecordsOf(alice.userId)).toBe(0);
        expect(await files.archivedRecordsOf(alice.userId)).toEqual([]);
      },
    );
  },
);
