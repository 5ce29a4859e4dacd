import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Generated, Transaction } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFilesModule,
  createManualClock,
  defineBucket,
  defineModule,
  type FileObject,
  type FilesServices,
  type SetupContext,
} from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import type { PrivacyService } from '../src/modules/privacy/index.js';
import { createTestSocle, type TestSocle, type TestTenant } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { startS3Server, TEST_S3_CREDENTIALS } from './support/s3-server.js';

// A real PNG header (signature and IHDR) followed by filler: file-type sniffs image/png.
const PNG_HEAD = Buffer.from('89504e470d0a1a0a0000000d4948445200000010000000100806000000', 'hex');
const png = (bytes: number) => Buffer.concat([PNG_HEAD, Buffer.alloc(bytes - PNG_HEAD.length, 7)]);
const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\n'), Buffer.alloc(4096, 32)]);
// MPEG audio frame header (MP3 without ID3): file-type sniffs audio/mpeg.
const mp3 = (bytes: number) => {
  const frame = Buffer.alloc(417, 0);
  Buffer.from('fffb9064', 'hex').copy(frame);
  return Buffer.concat(Array.from({ length: Math.ceil(bytes / 417) }, () => frame)).subarray(0, bytes);
};
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const photos = defineBucket({ name: 'photos', maxBytes: 64 * 1024, allowedTypes: ['image/*'] });
const avatars = defineBucket({
  name: 'avatars',
  maxBytes: 64 * 1024,
  allowedTypes: ['image/png'],
  public: true,
  scope: 'user',
});
/** Minutes of meetings: they stay the organization's when their uploader is erased. */
const minutes = defineBucket({
  name: 'minutes',
  maxBytes: 64 * 1024,
  allowedTypes: ['image/*'],
  keepOnErase: true,
});
const recordings = defineBucket({
  name: 'recordings',
  maxBytes: 256 * 1024 * 1024,
  allowedTypes: ['audio/*'],
  lifecycle: { archiveAfterDays: 180, deleteAfterDays: 730 },
});
/** Organizations on the small plan (the quota test's). */
const smallPlan = new Set<string>();
const SMALL_QUOTA_BYTES = 100_000;

interface CallsTables {
  'calls.calls': { id: number; tenant_id: Generated<string>; recording_id: string };
}

/** An app module that attaches a recording to its own row and enqueues a job, in one transaction. */
const callsModule = defineModule<CallsTables, { files: FilesServices }>({
  name: 'calls',
  dependsOn: ['files'],
  migrations: [
    {
      name: '0001_calls.sql',
      sql: `
        create table calls (
          id integer not null, tenant_id uuid not null default socle.current_tenant_id(),
          recording_id uuid not null references files.objects (id), primary key (tenant_id, id));
        alter table calls enable row level security;
        alter table calls force row level security;
        create policy calls_tenant on calls using (tenant_id = socle.current_tenant_id())
          with check (tenant_id = socle.current_tenant_id());`,
    },
  ],
  setup: (context: SetupContext<CallsTables>) => ({ files: context.servicesOf<FilesServices>('files') }),
  jobs: {
    transcribe: { handler: async () => undefined },
  },
});

/** Armed by the crash test: the next organization deletion stops right after its commit. */
let dieAfterOrganizationDeletion = false;
/**
 * Stands for a node dying between an organization's deletion commit and the removal of its files
 * (organization-deletion-crash.test.ts kills a real process there):
 * its hook comes before the files module's (module order) and throws once armed, so nothing after
 * the commit runs, as after a `kill -9` there.
 */
const nodeDeathModule = defineModule({
  name: 'node_death',
  dependsOn: ['tenancy'],
  privacy: () => ({
    exportSubject: async () => ({}),
    eraseSubject: async () => undefined,
    organizationDeleted: async () => {
      if (!dieAfterOrganizationDeletion) return;
      dieAfterOrganizationDeletion = false;
      throw new Error('The node died after the deleting commit');
    },
  }),
});

const backends = ['local', 's3'] as const;
const S3_BUCKET = 'socle-files';
let s3: Awaited<ReturnType<typeof startS3Server>>;
beforeAll(async () => {
  s3 = await startS3Server(S3_BUCKET);
  process.env.AWS_ACCESS_KEY_ID = TEST_S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = TEST_S3_CREDENTIALS.secretAccessKey;
});
afterAll(() => s3?.close());

describeEachDatabase('files', (target) => {
  describe.each(backends)('%s backend', (backend) => {
    let socle: TestSocle;
    let files: FilesServices;
    let tenant: TestTenant;
    let other: TestTenant;
    const clock = createManualClock(new Date());
    const localBlobs = mkdtempSync(path.join(tmpdir(), 'socle-files-test-'));

    beforeAll(async () => {
      socle = await createTestSocle(target, {
        clock,
        modules: [
          ...createBuiltInModules(),
          nodeDeathModule,
          createFilesModule({
            buckets: [photos, avatars, recordings, minutes],
            quotaBytes: (scope) => (smallPlan.has(scope.id) ? SMALL_QUOTA_BYTES : 1024 * 1024 * 1024),
          }),
          callsModule,
        ],
        config: {
          jobsQueues: [],
          // Each suite its own blobs: the abandoned-upload sweep would take other suites' for its own.
          blobUrl:
            backend === 's3'
              ? s3.blobUrl(`run-${Date.now()}-${target.dialect}`)
              : pathToFileURL(localBlobs).href,
        },
      });
      files = socle.servicesOf<FilesServices>('files');
      tenant = await socle.newTenant();
      other = await socle.newTenant();
      // Migrating every built-in module on a busy 2-core machine can take most of a minute.
    }, 180_000);
    afterAll(async () => {
      await socle?.dispose();
      rmSync(localBlobs, { recursive: true, force: true });
    });

    const headersOf = (t: TestTenant, extra: Record<string, string> = {}) => ({
      authorization: `Bearer ${t.owner.token}`,
      'x-org-id': t.id,
      ...extra,
    });
    const upload = (
      bucket: string,
      body: Buffer | Readable,
      headers: Record<string, string>,
      name?: string,
    ) =>
      socle.app.inject({
        method: 'POST',
        url: `/files/${bucket}${name === undefined ? '' : `?name=${encodeURIComponent(name)}`}`,
        payload: body,
        headers,
      });
    /** Blob keys of the tenant's scope, as the store lists them. */
    const blobKeys = async (prefix: string) => {
      const keys: string[] = [];
      for await (const info of socle.blobs.list(prefix)) keys.push(info.key);
      return keys;
    };
    /** GETs a download link: Socle's own path through inject, an S3 presigned URL with fetch. */
    const download = async (url: string, headers: Record<string, string> = {}) => {
      if (url.startsWith('/')) {
        const response = await socle.app.inject({ method: 'GET', url, headers });
        return {
          status: response.statusCode,
          headers: response.headers as Record<string, string>,
          body: response.rawPayload,
          json: () => response.json(),
        };
      }
      const response = await fetch(url, { headers });
      const body = Buffer.from(await response.arrayBuffer());
      return {
        status: response.status,
        headers: Object.fromEntries(response.headers),
        body,
        json: () => JSON.parse(body.toString()),
      };
    };

    it('stores an upload once verified and serves it back through its link, with Range and ETag', async () => {
      const bytes = png(20_000);
      const response = await upload(
        'photos',
        bytes,
        headersOf(tenant, { 'content-type': 'image/png' }),
        'été.png',
      );
      expect(response.statusCode, response.body).toBe(201);
      const object = response.json();
      expect(object).toMatchObject({
        bucket: 'photos',
        tenantId: tenant.id,
        ownerId: tenant.owner.userId,
        size: bytes.length,
        sha256: sha256(bytes),
        contentType: 'image/png',
        name: 'été.png',
      });

      const whole = await download(object.url);
      expect(whole.status).toBe(200);
      expect(sha256(whole.body)).toBe(sha256(bytes));
      expect(whole.headers['content-disposition']).toContain("filename*=UTF-8''%C3%A9t%C3%A9.png");

      const part = await download(object.url, { range: 'bytes=8-15' });
      expect(part.status).toBe(206);
      expect(part.body).toEqual(bytes.subarray(8, 16));
      expect(part.headers['content-range']).toBe(`bytes 8-15/${bytes.length}`);

      if (backend === 'local') {
        expect(whole.headers.etag).toBe(`"${object.sha256}"`);
        expect(whole.headers['cache-control']).toMatch(/^private, max-age=\d+$/);
        const cached = await download(object.url, { 'if-none-match': whole.headers.etag as string });
        expect(cached.status).toBe(304);
        expect(cached.body.length).toBe(0);
        const suffix = await download(object.url, { range: 'bytes=-4' });
        expect(suffix.body).toEqual(bytes.subarray(-4));
        const outside = await download(object.url, { range: `bytes=${bytes.length}-` });
        expect(outside.status).toBe(416);
      }

      if (backend === 's3') {
        // s3rver never verifies SigV4, so check the link against the SDK's own signer: signed again
        // with the same date, credentials and parameters, it must carry the same signature (and a
        // link whose disposition was changed would not).
        const link = new URL(object.url);
        const parameter = (name: string) => link.searchParams.get(name) ?? undefined;
        const signingDate = new Date(
          (parameter('X-Amz-Date') as string).replace(
            /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/,
            '$1-$2-$3T$4:$5:$6Z',
          ),
        );
        const client = new S3Client({
          region: 'us-east-1',
          endpoint: s3.endpoint,
          forcePathStyle: true,
          credentials: TEST_S3_CREDENTIALS,
        });
        const resign = (disposition: string | undefined) =>
          getSignedUrl(
            client,
            new GetObjectCommand({
              Bucket: S3_BUCKET,
              Key: link.pathname.split('/').slice(2).map(decodeURIComponent).join('/'),
              ResponseContentDisposition: disposition,
              ResponseContentType: parameter('response-content-type'),
            }),
            { expiresIn: Number(parameter('X-Amz-Expires')), signingDate },
          );
        const signatureOf = (url: string) => new URL(url).searchParams.get('X-Amz-Signature');
        expect(signatureOf(await resign(parameter('response-content-disposition')))).toBe(
          parameter('X-Amz-Signature'),
        );
        expect(signatureOf(await resign('attachment'))).not.toBe(parameter('X-Amz-Signature'));
        client.destroy();
      }

      const listed = await socle.app.inject({
        method: 'GET',
        url: '/files/photos',
        headers: headersOf(tenant),
      });
      expect(listed.json().objects.map((item: { id: string }) => item.id)).toContain(object.id);
    });

    it('refuses a file whose bytes are not an allowed type, whatever its header says (415), leaving nothing', async () => {
      const before = await blobKeys(`t.${tenant.id}/photos/`);
      const response = await upload('photos', PDF, headersOf(tenant, { 'content-type': 'image/png' }));
      expect(response.statusCode).toBe(415);
      expect(response.json()).toMatchObject({
        code: 'files.type_not_allowed',
        detected: 'application/pdf',
      });
      expect(await blobKeys(`t.${tenant.id}/photos/`)).toEqual(before);
    });

    it('refuses a file shorter than the sniffing window the same way, with no uncaught error', async () => {
      // Decided at the end of the body (the stream's flush): its 'error' came after the blob store
      // stopped listening, an uncaught exception Vitest reports (the process would have crashed).
      const response = await upload(
        'photos',
        Buffer.from('%PDF-1.4\n%%EOF\n'),
        headersOf(tenant, { 'content-type': 'image/png' }),
      );
      expect(response.statusCode).toBe(415);
      expect(response.json()).toMatchObject({ code: 'files.type_not_allowed', detected: 'application/pdf' });
    });

    it('refuses a file over the bucket limit, announced or streamed (413), leaving nothing', async () => {
      const before = await blobKeys(`t.${tenant.id}/photos/`);
      const announced = await upload(
        'photos',
        png(70_000),
        headersOf(tenant, { 'content-type': 'image/png' }),
      );
      expect(announced.statusCode).toBe(413);
      expect(announced.json().code).toBe('files.too_large');
      // No Content-Length: the limit is found while streaming.
      const streamed = await upload(
        'photos',
        Readable.from([png(40_000), Buffer.alloc(40_000, 1)]),
        headersOf(tenant, { 'content-type': 'image/png' }),
      );
      expect(streamed.statusCode).toBe(413);
      expect(streamed.json().code).toBe('files.too_large');
      expect(await blobKeys(`t.${tenant.id}/photos/`)).toEqual(before);
    });

    it("answers 404 for another organization's object, by id or by its link's path", async () => {
      const created = (await upload('photos', png(5000), headersOf(tenant))).json();
      const probe = await socle.app.inject({
        method: 'GET',
        url: `/files/photos/${created.id}`,
        headers: headersOf(other),
      });
      expect(probe.statusCode).toBe(404);
      const removal = await socle.app.inject({
        method: 'DELETE',
        url: `/files/photos/${created.id}`,
        headers: headersOf(other),
      });
      expect(removal.statusCode).toBe(404);
      // The other organization's own link, re-pointed at this object: the signature is the tenant's.
      const own = (await upload('photos', png(5000), headersOf(other))).json();
      if (backend === 'local') {
        const forged = await download(own.url.replace(own.id, created.id));
        expect(forged.status).toBe(403);
        expect(forged.json().code).toBe('files.signature_invalid');
      }
      expect((await files.find({ tenantId: other.id }, 'photos', created.id)) === undefined).toBe(true);
    });

    it('refuses a tampered or expired link (local backend: Socle verifies its HMAC)', async () => {
      if (backend === 's3') return; // s3rver does not check SigV4 signatures: see docs/files.md.
      const created = (await upload('photos', png(3000), headersOf(tenant))).json();
      const tampered = await download(created.url.replace('disposition=inline', 'disposition=attachment'));
      expect(tampered.status).toBe(403);
      expect(tampered.json().code).toBe('files.signature_invalid');
      const longer = await download(created.url.replace(/expires=\d+/, 'expires=9999999999'));
      expect(longer.json().code).toBe('files.signature_invalid');
      clock.advance(3601 * 1000);
      const expired = await download(created.url);
      expect(expired.status).toBe(403);
      expect(expired.json().code).toBe('files.signature_expired');
      clock.advance(-3601 * 1000);
    });

    it('serves public per-user objects without a signature, immutable and cacheable', async () => {
      const created = (
        await upload('avatars', png(2000), { authorization: `Bearer ${tenant.owner.token}` })
      ).json();
      expect(created.url).toBe(`/files/public/avatars/${tenant.owner.userId}/${created.id}`);
      expect(created.urlExpiresAt).toBeNull();
      const served = await download(created.url);
      expect(served.status).toBe(200);
      expect(served.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      const wrongOwner = await download(`/files/public/avatars/${other.owner.userId}/${created.id}`);
      expect(wrongOwner.status).toBe(404);
    });

    it('attaches an upload to a module row and enqueues its job in one transaction; a failing attach leaves nothing', async () => {
      const bytes = mp3(50_000);
      const { object, attached } = await files.upload(
        {
          bucket: 'recordings',
          tenantId: tenant.id,
          userId: tenant.owner.userId,
          body: Readable.from([bytes]),
        },
        async (trx: Transaction<CallsTables>, recording) => {
          await trx.insertInto('calls.calls').values({ id: 42, recording_id: recording.id }).execute();
          return socle.jobs.enqueue(trx, 'calls.transcribe', { recordingId: recording.id });
        },
      );
      expect(object.contentType).toBe('audio/mpeg');
      const job = await socle.jobs.get(attached.id, tenant.id);
      expect(job.name).toBe('calls.transcribe');
      expect(job.payload).toEqual({ recordingId: object.id });

      const before = await blobKeys(`t.${tenant.id}/recordings/`);
      await expect(
        files.upload(
          {
            bucket: 'recordings',
            tenantId: tenant.id,
            userId: tenant.owner.userId,
            body: Readable.from([bytes]),
          },
          async (trx: Transaction<CallsTables>, recording) => {
            // Call 42 exists: the primary key refuses it, the whole transaction rolls back.
            await trx.insertInto('calls.calls').values({ id: 42, recording_id: recording.id }).execute();
          },
        ),
      ).rejects.toThrow();
      expect(await blobKeys(`t.${tenant.id}/recordings/`)).toEqual(before);
      expect((await files.list({ tenantId: tenant.id }, 'recordings', 10)).length).toBe(1);
    });

    it('streams a 200 MB upload over a socket with bounded memory', async () => {
      const url = await socle.listen();
      const size = 200 * 1024 * 1024;
      // The client runs in its own process: this process's memory is the server's alone.
      const client = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `
          import { request } from 'node:http';
          import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
          const [url, size, token, org] = process.argv.slice(1);
          const chunk = Buffer.alloc(1024 * 1024, 0);
          Buffer.from('fffb9064', 'hex').copy(chunk);
          const hash = createHash('sha256');
          const req = request(url + '/files/recordings', { method: 'POST', headers: {
            authorization: 'Bearer ' + token, 'x-org-id': org, 'content-type': 'audio/mpeg' } }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body, sha256: hash.digest('hex') })));
          });
          let sent = 0;
          const write = () => {
            while (sent < Number(size)) {
              sent += chunk.length;
              hash.update(chunk);
              if (!req.write(chunk)) return req.once('drain', write);
            }
            req.end();
          };
          write();`,
          url,
          String(size),
          tenant.owner.token,
          tenant.id,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      const sample = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 10);
      let output = '';
      client.stdout.on('data', (data) => {
        output += data;
      });
      await once(client, 'exit');
      clearInterval(sample);
      const result = JSON.parse(output) as { status: number; body: string; sha256: string };
      expect(result.status, result.body).toBe(201);
      const object = JSON.parse(result.body) as { size: number; sha256: string; id: string };
      expect(object.size).toBe(size);
      expect(object.sha256).toBe(result.sha256);
      // Streamed: the server holds buffers, never the file (S3: at most two 8 MB parts in flight);
      // what grows is garbage the collector has not taken yet (about 55 MB here for 200 MB, 72 MB
      // once on a loaded machine). Buffering the upload would add at least its 200 MB.
      // S3: lib-storage also copies each part into a buffer of its own before sending it.
      expect(peak - baseline).toBeLessThan(size / 2);
      await files.delete({ tenantId: tenant.id }, 'recordings', object.id);
    }, 120_000);

    it("refuses an upload past the organization's quota (409), leaving nothing", async () => {
      const quotaTenant = await socle.newTenant();
      smallPlan.add(quotaTenant.id);
      const big = await files.upload({
        bucket: 'recordings',
        tenantId: quotaTenant.id,
        userId: quotaTenant.owner.userId,
        body: Readable.from([mp3(SMALL_QUOTA_BYTES - 10_000)]),
      });
      expect(big.object.size).toBe(SMALL_QUOTA_BYTES - 10_000);
      const over = await upload(
        'recordings',
        mp3(20_000),
        headersOf(quotaTenant, { 'content-type': 'audio/mpeg' }),
      );
      expect(over.statusCode).toBe(409);
      expect(over.json().code).toBe('files.quota_exceeded');
      const streamed = await upload('recordings', Readable.from([mp3(20_000)]), headersOf(quotaTenant));
      expect(streamed.json().code).toBe('files.quota_exceeded');
      expect(await blobKeys(`t.${quotaTenant.id}/`)).toEqual([
        `t.${quotaTenant.id}/recordings/${big.object.id}`,
      ]);
      // Deleting frees the quota.
      await files.delete({ tenantId: quotaTenant.id }, 'recordings', big.object.id);
      const after = await upload('recordings', mp3(20_000), headersOf(quotaTenant));
      expect(after.statusCode).toBe(201);
    });

    it('exports a person’s files with links and erases their blobs and records', async () => {
      const person = await socle.newMember(tenant);
      const mine = (
        await upload('photos', png(4000), { authorization: `Bearer ${person.token}`, 'x-org-id': tenant.id })
      ).json();
      const hooks = socle.context.privacyHooks().find((entry) => entry.module === 'files')?.hooks;
      const subject = { userId: person.userId, email: person.email };
      const exported = (await hooks?.exportSubject(subject)) as { objects: { id: string; url: string }[] };
      expect(exported.objects.map((object) => object.id)).toEqual([mine.id]);
      expect((await download(exported.objects[0]?.url as string)).status).toBe(200);
      await hooks?.eraseSubject(subject);
      expect(await files.find({ tenantId: tenant.id }, 'photos', mine.id)).toBeUndefined();
      expect(await socle.blobs.head(`t.${tenant.id}/photos/${mine.id}`)).toBeUndefined();
      await hooks?.eraseSubject(subject); // idempotent
    });

    it("deletes an organization's stored bytes with the organization, not only its rows", async () => {
      const doomed = await socle.newTenant();
      const kept = (await upload('minutes', png(3000), headersOf(doomed), 'minutes.png')).json() as {
        id: string;
      };
      const photo = (await upload('photos', png(3500), headersOf(doomed))).json() as { id: string };
      const another = (await upload('minutes', png(3000), headersOf(other))).json() as { id: string };
      expect(await blobKeys(`t.${doomed.id}/`)).toHaveLength(2);
      // Its only member is erased: the organization goes with them. Their photo goes with their
      // files; the minutes stay the organization's (keepOnErase), and so go with the organization.
      const { privacy } = socle.servicesOf<{ privacy: PrivacyService }>('privacy');
      await privacy.erase(await privacy.findSubject(doomed.owner.userId));
      expect(await files.find({ tenantId: doomed.id }, 'minutes', kept.id)).toBeUndefined();
      expect(await socle.blobs.head(`t.${doomed.id}/photos/${photo.id}`)).toBeUndefined();
      expect(await blobKeys(`t.${doomed.id}/`)).toEqual([]);
      // Another organization's bytes are untouched.
      expect(await socle.blobs.head(`t.${other.id}/minutes/${another.id}`)).toBeDefined();
      expect(await files.find({ tenantId: other.id }, 'minutes', another.id)).toBeDefined();
    });

    it("removes a deleted organization's files even when its node dies right after the deleting commit", async () => {
      const doomed = await socle.newTenant();
      // Minutes stay the organization's when their uploader is erased: only its deletion removes them.
      const kept = (await upload('minutes', png(3000), headersOf(doomed), 'minutes.png')).json() as {
        id: string;
      };
      expect((await files.organizationUsage(doomed.id)).usedBytes).toBe(3000);
      const { privacy } = socle.servicesOf<{ privacy: PrivacyService }>('privacy');
      dieAfterOrganizationDeletion = true;
      await expect(privacy.erase(await privacy.findSubject(doomed.owner.userId))).rejects.toThrow();
      // The organization is gone, its files not yet: record, usage and bytes are all still there.
      expect(await files.find({ tenantId: doomed.id }, 'minutes', kept.id)).toBeDefined();
      expect(await blobKeys(`t.${doomed.id}/`)).toEqual([`t.${doomed.id}/minutes/${kept.id}`]);
      // What the deleting transaction committed runs on a worker (this node's once restarted, or another's).
      await socle.jobs.runDueJobs();
      expect(await files.find({ tenantId: doomed.id }, 'minutes', kept.id)).toBeUndefined();
      expect((await files.organizationUsage(doomed.id)).usedBytes).toBe(0);
      expect(await blobKeys(`t.${doomed.id}/`)).toEqual([]);
      // Another organization's files are untouched.
      expect(await blobKeys(`t.${other.id}/`)).not.toEqual([]);
    });

    it('archives and then deletes recordings as the lifecycle says (manual clock)', async () => {
      const { object } = await files.upload({
        bucket: 'recordings',
        tenantId: other.id,
        userId: other.owner.userId,
        body: Readable.from([mp3(10_000)]),
      });
      const key = `t.${other.id}/recordings/${object.id}`;
      clock.advance(181 * 24 * 3600 * 1000);
      expect((await files.runLifecycle()).archived).toBeGreaterThanOrEqual(1);
      const archived = await files.find({ tenantId: other.id }, 'recordings', object.id);
      expect(archived?.storageClass).toBe('archive');
      // The local backend has one class; s3rver keeps the class the copy set (x-amz-storage-class).
      expect((await socle.blobs.head(key))?.storageClass).toBe(backend === 'local' ? 'standard' : 'archive');
      expect((await download((await files.downloadUrl(archived as FileObject)).url)).status).toBe(200);
      clock.advance(550 * 24 * 3600 * 1000);
      expect((await files.runLifecycle()).deleted).toBeGreaterThanOrEqual(1);
      expect(await files.find({ tenantId: other.id }, 'recordings', object.id)).toBeUndefined();
      expect(await socle.blobs.head(key)).toBeUndefined();
    });

    it('removes blobs no record names (abandoned uploads) once old, and keeps recorded ones', async () => {
      clock.set(new Date());
      const { object } = await files.upload({
        bucket: 'recordings',
        tenantId: other.id,
        userId: other.owner.userId,
        body: Readable.from([mp3(10_000)]),
      });
      const orphan = `t.${other.id}/recordings/00000000-0000-4000-8000-000000000001`;
      await socle.blobs.put(orphan, Readable.from([Buffer.from('half an upload')]));
      expect(await files.removeAbandonedUploads()).toBe(0); // too young: its upload may be committing
      clock.advance(2 * 3600 * 1000);
      expect(await files.removeAbandonedUploads()).toBe(1);
      expect(await socle.blobs.head(orphan)).toBeUndefined();
      expect(await socle.blobs.head(`t.${other.id}/recordings/${object.id}`)).toBeDefined();
    });
  });
});
