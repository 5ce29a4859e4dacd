import { randomUUID } from 'node:crypto';
import { testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuzzerWorld, caller, startBuzzerWorld } from './support.js';

/** An 8×8 red PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP4z8CAFWEXHbQSACj/P8Fu7N9hAAAAAElFTkSuQmCC',
  'base64',
);

const targets = await testDatabaseTargets();

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer player profiles and avatars [%s]',
  (_, target) => {
    let world: BuzzerWorld;

    beforeAll(async () => {
      if (!target.available) return;
      world = await startBuzzerWorld(target);
    });
    afterAll(() => world?.socle.dispose());

    const call = (...args: Parameters<ReturnType<typeof caller>>) => caller(world.socle)(...args);
    const putAvatar = (token: string, body: Buffer, type: string) =>
      world.socle.app.inject({
        method: 'PUT',
        url: '/strategybuzzer/me/avatar',
        headers: { authorization: `Bearer ${token}`, 'content-type': type },
        payload: body,
      });

    it.skipIf(!target.available)(
      "stores a player's avatar in the files module and shows it to others as signed WebP variants; refuses what is not an image",
      async () => {
        const owner = await world.socle.newUser();
        const viewer = await world.socle.newUser();
        await call(owner, 'PUT', '/strategybuzzer/me', { name: 'Avatarix' });

        const refused = await putAvatar(owner.token, Buffer.from('%PDF-1.7\n% not an image\n'), 'image/png');
        expect(refused.statusCode).toBe(415);
        expect(refused.json()).toMatchObject({ code: 'files.type_not_allowed' });

        const stored = await putAvatar(owner.token, PNG, 'image/png');
        expect(stored.statusCode).toBe(200);
        const { avatar } = stored.json() as { avatar: { small: string; large: string } };

        const profile = await call(viewer, 'GET', `/strategybuzzer/players/${owner.userId}`);
        expect(profile.statusCode).toBe(200);
        expect(profile.json()).toMatchObject({
          userId: owner.userId,
          name: 'Avatarix',
          stats: { games: 0, wins: 0, points: 0, winRate: 0 },
          week: { points: 0, games: 0 },
          recentGames: [],
        });
        const links = profile.json().avatar as { small: string; large: string };
        expect(new URL(links.small, 'http://x').searchParams.get('variant')).toBe(
          new URL(avatar.small, 'http://x').searchParams.get('variant'),
        );
        // The variant is an image of the size asked, read by another player through the signed link.
        const small = await world.socle.app.inject({ method: 'GET', url: links.small });
        expect(small.statusCode).toBe(200);
        expect(small.headers['content-type']).toBe('image/webp');
        // A link changed to ask for another size is refused.
        const forged = await world.socle.app.inject({
          method: 'GET',
          url: links.small.replace(
            /variant=[^&]+/,
            `variant=${new URL(links.large, 'http://x').searchParams.get('variant')}`,
          ),
        });
        expect(forged.statusCode).toBe(403);

        // A new avatar replaces the old one; the old object is deleted.
        const replaced = await putAvatar(owner.token, PNG, 'image/png');
        expect(replaced.statusCode).toBe(200);
        const listed = await call(owner, 'GET', '/files/sb-avatars');
        expect(listed.statusCode).toBe(200);
        expect((listed.json() as { objects: unknown[] }).objects).toHaveLength(1);
      },
    );

    it.skipIf(!target.available)('answers 404 problem+json for a player who does not exist', async () => {
      const viewer = await world.socle.newUser();
      const missing = await call(viewer, 'GET', `/strategybuzzer/players/${randomUUID()}`);
      expect(missing.statusCode).toBe(404);
      expect(missing.json()).toMatchObject({ code: 'strategybuzzer.player_not_found' });
    });
  },
);
