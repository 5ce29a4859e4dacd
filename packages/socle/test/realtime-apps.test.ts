import { expect, it } from 'vitest';
import { channelAuth } from '../src/modules/realtime/index.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';
import { nextEvent, pusherClient, pusherServer } from './support/realtime-clients.js';

import { useRealtimeServer } from './support/realtime-server.js';

describeEachDatabase("Realtime: the HTTP API and organizations' apps", (target) => {
  const server = useRealtimeServer(target);

  it('refuses HTTP API calls with a wrong secret, an expired timestamp or a tampered body', async () => {
    await expect(
      pusherServer(server.baseUrl, server.app, 'wrong-secret').trigger('scores', 'x', {}),
    ).rejects.toMatchObject({
      status: 401,
    });
    // Signed correctly, 11 minutes ago.
    server.clock.advance(11 * 60 * 1000);
    try {
      await expect(pusherServer(server.baseUrl, server.app).trigger('scores', 'x', {})).rejects.toMatchObject(
        {
          status: 401,
        },
      );
    } finally {
      server.clock.advance(-11 * 60 * 1000);
    }
    const channels = await pusherServer(server.baseUrl, server.app).get({ path: '/channels', params: {} });
    expect(channels.status).toBe(200);

    const signed = new URL(`${server.baseUrl}/apps/${server.app.appId}/events`);
    const body = JSON.stringify({ name: 'x', channel: 'scores', data: '{}' });
    const query = await server.signedQuery('POST', signed.pathname, body);
    const tampered = await fetch(`${signed}?${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body.replace('scores', 'other'),
    });
    expect(tampered.status).toBe(401);
  });

  it("serves an organization's app: created by an admin, used by pusher-js and the pusher SDK, secret rotated", async () => {
    const orgId = (await server.socle.newTenant({ owner: server.alice, name: 'Quiz Co' })).id;
    const created = await callAs(server.socle, server.alice, 'POST', '/realtime/apps', {
      orgId,
      payload: { name: 'Quiz' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const orgApp = created.json() as { id: string; key: string; secret: string };
    const config = { appId: orgApp.id, appKey: orgApp.key, appSecret: orgApp.secret };

    const listed = await callAs(server.socle, server.alice, 'GET', '/realtime/apps', { orgId });
    expect(listed.json()).toEqual([expect.objectContaining({ id: orgApp.id, key: orgApp.key })]);
    expect(listed.body).not.toContain(orgApp.secret);
    // At rest the secret is sealed (secret box), never the value clients sign with.
    const { rows } = await server.socle.db.withConnection(
      (connection) =>
        connection.query<{ secret: string }>('select secret from realtime.apps where id = $1', [orgApp.id]),
      'owner',
    );
    expect(rows[0]?.secret).toMatch(/^sb1\./);
    expect(rows[0]?.secret).not.toContain(orgApp.secret);

    const subscriber = pusherClient(server.baseUrl, config);
    server.clients.push(subscriber);
    const channel = subscriber.subscribe('org-news');
    await nextEvent(channel, 'pusher:subscription_succeeded');
    const received = nextEvent(channel, 'hello');
    await pusherServer(server.baseUrl, config).trigger('org-news', 'hello', 'world');
    expect(await received).toBe('world');

    const rotated = await callAs(
      server.socle,
      server.alice,
      'POST',
      `/realtime/apps/${orgApp.id}/rotate-secret`,
      {
        orgId,
      },
    );
    expect(rotated.statusCode).toBe(200);
    await expect(
      pusherServer(server.baseUrl, config).trigger('org-news', 'hello', 'again'),
    ).rejects.toMatchObject({
      status: 401,
    });
    const fresh = { ...config, appSecret: rotated.json().secret as string };
    expect((await pusherServer(server.baseUrl, fresh).trigger('org-news', 'hello', 'again')).status).toBe(
      200,
    );

    // Channel authorization for an organization's app takes a member acting in that organization.
    const socketId = await server.raw(undefined, orgApp.key).socketId();
    const outsider = await server.socle.app.inject({
      method: 'POST',
      url: '/realtime/auth',
      headers: { authorization: `Bearer ${server.bob.token}` },
      payload: { socket_id: socketId, channel_name: 'private-chat-1', app_key: orgApp.key },
    });
    expect(outsider.statusCode).toBe(400);
    const member = await callAs(server.socle, server.alice, 'POST', '/realtime/auth', {
      orgId,
      payload: { socket_id: socketId, channel_name: 'private-chat-1', app_key: orgApp.key },
    });
    expect(member.json().auth).toBe(
      channelAuth({ key: orgApp.key, secret: rotated.json().secret }, socketId, 'private-chat-1'),
    );
  });

  it("gives an organization's app an encryption master key: shown at creation, sealed at rest, rotated, required for encrypted channels", async () => {
    const orgId = (await server.socle.newTenant({ owner: server.alice, name: 'Secret Quiz Co' })).id;
    const created = await callAs(server.socle, server.alice, 'POST', '/realtime/apps', {
      orgId,
      payload: { name: 'Quiz' },
    });
    const orgApp = created.json() as { id: string; key: string; secret: string; encryptionMasterKey: string };
    expect(Buffer.from(orgApp.encryptionMasterKey, 'base64')).toHaveLength(32);
    const config = {
      appId: orgApp.id,
      appKey: orgApp.key,
      appSecret: orgApp.secret,
      appEncryptionMasterKey: orgApp.encryptionMasterKey,
    };
    const listed = await callAs(server.socle, server.alice, 'GET', '/realtime/apps', { orgId });
    expect(listed.json()).toEqual([expect.objectContaining({ id: orgApp.id, hasEncryptionMasterKey: true })]);
    expect(listed.body).not.toContain(orgApp.encryptionMasterKey);
    const stored = async () =>
      (
        await server.socle.db.withConnection(
          (connection) =>
            connection.query<{ encryption_master_key: string | null }>(
              'select encryption_master_key from realtime.apps where id = $1',
              [orgApp.id],
            ),
          'owner',
        )
      ).rows[0]?.encryption_master_key;
    expect(await stored()).toMatch(/^sb1\./);
    expect(await stored()).not.toContain(orgApp.encryptionMasterKey);

    const socketId = await server.raw(undefined, orgApp.key).socketId();
    const authorize = () =>
      callAs(server.socle, server.alice, 'POST', '/realtime/auth', {
        orgId,
        payload: { socket_id: socketId, channel_name: 'private-encrypted-room-7', app_key: orgApp.key },
      });
    expect((await authorize()).json()).toEqual(
      pusherServer(server.baseUrl, config).authorizeChannel(socketId, 'private-encrypted-room-7'),
    );

    // An app from before encryption keys existed has none: encrypted channels are refused until
    // an admin creates one (rotating the secret drops the cached app).
    await server.socle.db.withConnection(
      (connection) =>
        connection.query('update realtime.apps set encryption_master_key = null where id = $1', [orgApp.id]),
      'owner',
    );
    await callAs(server.socle, server.alice, 'POST', `/realtime/apps/${orgApp.id}/rotate-secret`, { orgId });
    const refused = await authorize();
    expect(refused.statusCode).toBe(409);
    expect(refused.json().code).toBe('realtime.no_encryption_key');
    const listedWithout = await callAs(server.socle, server.alice, 'GET', '/realtime/apps', { orgId });
    expect(listedWithout.json()).toEqual([expect.objectContaining({ hasEncryptionMasterKey: false })]);

    const rotated = await callAs(
      server.socle,
      server.alice,
      'POST',
      `/realtime/apps/${orgApp.id}/rotate-encryption-key`,
      {
        orgId,
      },
    );
    expect(rotated.statusCode).toBe(200);
    const newKey = rotated.json().encryptionMasterKey as string;
    expect(newKey).not.toBe(orgApp.encryptionMasterKey);
    expect(rotated.json().hasEncryptionMasterKey).toBe(true);
    const fresh = { ...config, appEncryptionMasterKey: newKey };
    expect((await authorize()).json().shared_secret).toBe(
      pusherServer(server.baseUrl, fresh).authorizeChannel(socketId, 'private-encrypted-room-7')
        .shared_secret,
    );
  });
});
