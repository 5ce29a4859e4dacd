import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createAuditModule,
  createFilesModule,
  createIdentityModule,
  createMailModule,
  createTenancyModule,
  defineBucket,
} from '../src/index.js';
import { createTestSocle, type TestSocle, type TestTenant, type TestUser } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

const OPERATOR_TOKEN = 'operator-token-of-the-operator-files-suite-0123456789';
const operator = { 'x-operator-token': OPERATOR_TOKEN };
const PNG_HEAD = Buffer.from('89504e470d0a1a0a0000000d4948445200000010000000100806000000', 'hex');
const png = (bytes: number) => Buffer.concat([PNG_HEAD, Buffer.alloc(bytes - PNG_HEAD.length, 7)]);

const avatars = defineBucket({
  name: 'avatars',
  maxBytes: 64 * 1024,
  allowedTypes: ['image/png'],
  scope: 'user',
});
const drafts = defineBucket({
  name: 'drafts',
  maxBytes: 64 * 1024,
  allowedTypes: ['image/png'],
  scope: 'user',
});
const photos = defineBucket({ name: 'photos', maxBytes: 64 * 1024, allowedTypes: ['image/png'] });

interface Listed {
  id: string;
  bucket: string;
  name: string | null;
  size: number;
}

/**
 * The operator reads a person's objects in per-user buckets (the console's Files page): names and
 * sizes, never content, page after page, and the audit log keeps a trace of each read.
 */
describeEachDatabase("Operator: a person's objects in per-user buckets", (target) => {
  let socle: TestSocle;
  const audit = createAuditModule({ flushIntervalMs: 60_000 });
  const blobs = mkdtempSync(path.join(tmpdir(), 'socle-operator-files-'));
  let alice: TestUser;
  let bruno: TestUser;
  let tenant: TestTenant;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [
        createMailModule(),
        createIdentityModule({ rateLimits: false }),
        createTenancyModule(),
        audit,
        createFilesModule({ buckets: [avatars, drafts, photos] }),
      ],
      settings: { identity: { operatorToken: OPERATOR_TOKEN } },
      config: { blobUrl: pathToFileURL(blobs).href },
    });
    alice = await socle.newUser({ email: 'alice@operator-files.test' });
    bruno = await socle.newUser({ email: 'bruno@operator-files.test' });
    tenant = await socle.newTenant({ owner: alice });
  }, 180_000);
  afterAll(async () => {
    await socle?.dispose();
    rmSync(blobs, { recursive: true, force: true });
  });

  const upload = async (
    user: TestUser,
    bucket: string,
    name: string,
    headers: Record<string, string> = {},
  ) => {
    const response = await socle.app.inject({
      method: 'POST',
      url: `/files/${bucket}?name=${encodeURIComponent(name)}`,
      payload: png(1000 + name.length),
      headers: { authorization: `Bearer ${user.token}`, ...headers },
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<{ id: string }>().id;
  };
  const get = (url: string, headers: Record<string, string> = operator) =>
    socle.app.inject({ method: 'GET', url, headers });

  it("lists a person's objects of every per-user bucket, newest first, page after page, and no one else's", async () => {
    const mine = [];
    for (const [bucket, name] of [
      ['avatars', 'a-1.png'],
      ['drafts', 'd-1.png'],
      ['avatars', 'a-2.png'],
      ['drafts', 'd-2.png'],
      ['avatars', 'a-3.png'],
    ] as const)
      mine.push(await upload(alice, bucket, name));
    await upload(bruno, 'avatars', 'bruno.png');
    await upload(alice, 'photos', 'of-the-organization.png', { 'x-org-id': tenant.id });

    const url = `/operator/files/users/${alice.userId}/objects`;
    const seen: Listed[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response = await get(`${url}?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json<{ objects: Listed[]; next: string | null }>();
      expect(page.objects.length).toBeLessThanOrEqual(2);
      seen.push(...page.objects);
      cursor = page.next;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(seen.map((object) => object.id)).toEqual([...mine].reverse());
    expect(seen[0]).toMatchObject({ bucket: 'avatars', name: 'a-3.png', size: 1007 });
    expect(seen[0]).not.toHaveProperty('url');

    const onlyDrafts = (await get(`${url}?bucket=drafts`)).json<{ objects: Listed[]; next: null }>();
    expect(onlyDrafts.objects.map((object) => object.name)).toEqual(['d-2.png', 'd-1.png']);
    expect(onlyDrafts.next).toBeNull();
    const nobody = await get(`/operator/files/users/${tenant.id}/objects`);
    expect(nobody.json()).toEqual({ objects: [], next: null });
  });

  it('names what is wrong: an organization bucket, an unknown one, a forged cursor, no operator token', async () => {
    const url = `/operator/files/users/${alice.userId}/objects`;
    const organizationBucket = await get(`${url}?bucket=photos`);
    expect(organizationBucket.statusCode).toBe(400);
    expect(organizationBucket.json().code).toBe('files.not_per_user_bucket');
    expect((await get(`${url}?bucket=nope`)).json().code).toBe('files.bucket_not_found');
    const forged = await get(`${url}?cursor=${Buffer.from('yesterday|x').toString('base64url')}`);
    expect(forged.statusCode).toBe(400);
    expect(forged.json().code).toBe('files.invalid_cursor');
    expect((await get('/operator/files/users/not-a-uuid/objects')).statusCode).toBe(400);
    expect((await get(url, {})).statusCode).toBe(401);
    expect((await get(url, { authorization: `Bearer ${alice.token}` })).statusCode).toBe(401);
  });

  it("records the operator's read in the audit log (a person's file names are personal data)", async () => {
    const url = `/operator/files/users/${bruno.userId}/objects`;
    expect((await get(url)).statusCode).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    await socle.servicesOf(audit).flush();
    const events = (
      await get(
        `/operator/audit-events?action=${encodeURIComponent('GET /operator/files/users/:userId/objects')}`,
      )
    ).json<{ events: { actorOperator: boolean; target: Record<string, string> | null; status: number }[] }>()
      .events;
    expect(events).toContainEqual(
      expect.objectContaining({ actorOperator: true, target: { userId: bruno.userId }, status: 200 }),
    );
    // Other reads stay unrecorded.
    const listings = (
      await get(`/operator/audit-events?action=${encodeURIComponent('GET /operator/audit-events')}`)
    ).json<{ events: unknown[] }>().events;
    expect(listings).toEqual([]);
  });
});
