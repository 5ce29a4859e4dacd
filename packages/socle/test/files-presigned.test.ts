import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFilesModule, createManualClock, defineBucket, type FilesServices } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestSocle, type TestTenant } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { startS3Server, TEST_S3_CREDENTIALS } from './support/s3-server.js';

const PNG_HEAD = Buffer.from('89504e470d0a1a0a0000000d4948445200000010000000100806000000', 'hex');
const png = (bytes: number) => {
  const filler = Buffer.alloc(bytes - PNG_HEAD.length);
  for (let i = 0; i + 4 <= filler.length; i += 1024) filler.writeUInt32BE(i, i);
  return Buffer.concat([PNG_HEAD, filler]);
};
const PDF = Buffer.concat([
  Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\n'),
  Buffer.alloc(8 * 1024, 32),
]);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const MIB = 1024 * 1024;

const S3_BUCKET = 'socle-presigned';
const scans = defineBucket({ name: 'scans', maxBytes: 32 * MIB, allowedTypes: ['image/*'] });

const backends = ['local', 's3'] as const;
let s3: Awaited<ReturnType<typeof startS3Server>>;
beforeAll(async () => {
  s3 = await startS3Server(S3_BUCKET);
  process.env.AWS_ACCESS_KEY_ID = TEST_S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = TEST_S3_CREDENTIALS.secretAccessKey;
});
afterAll(() => s3?.close());

interface Started {
  uploadId: string;
  token: string;
  url?: string;
  parts?: { partNumber: number; url: string; size: number }[];
}

describeEachDatabase('files: presigned direct uploads', (target) => {
  describe.each(backends)('%s backend', (backend) => {
    let socle: TestSocle;
    let baseUrl: string;
    let tenant: TestTenant;
    let other: TestTenant;
    const clock = createManualClock(new Date());
    const blobDirectory = mkdtempSync(path.join(tmpdir(), 'socle-presigned-'));

    beforeAll(async () => {
      socle = await createTestSocle(target, {
        clock,
        modules: [...createBuiltInModules(), createFilesModule({ buckets: [scans] })],
        config: {
          jobsQueues: [],
          // Its own blob directory even on Postgres (no DATA_DIR there): staging starts empty.
          blobUrl:
            backend === 's3'
              ? s3.blobUrl(`presigned-${Date.now()}-${target.dialect}`)
              : pathToFileURL(blobDirectory).href,
        },
      });
      baseUrl = await socle.listen();
      tenant = await socle.newTenant();
      other = await socle.newTenant();
    });
    afterAll(async () => {
      await socle?.dispose();
      rmSync(blobDirectory, { recursive: true, force: true });
    });

    const headersOf = (t: TestTenant) => ({ authorization: `Bearer ${t.owner.token}`, 'x-org-id': t.id });
    const start = async (body: Record<string, unknown>, t = tenant) => {
      const response = await socle.app.inject({
        method: 'POST',
        url: '/files/presigned/scans',
        headers: headersOf(t),
        payload: body,
      });
      return { status: response.statusCode, json: response.json() as Started & { code?: string } };
    };
    const complete = async (body: Record<string, unknown>, t = tenant) => {
      const response = await socle.app.inject({
        method: 'POST',
        url: '/files/presigned/scans/complete',
        headers: headersOf(t),
        payload: body,
      });
      return { status: response.statusCode, json: response.json() };
    };
    /** PUTs bytes where a presigned URL points: S3 (s3rver) directly, or Socle's own path. */
    const put = (url: string, body: Buffer) =>
      fetch(url.startsWith('/') ? `${baseUrl}${url}` : url, { method: 'PUT', body });
    const listed = async () => {
      const response = await socle.app.inject({
        method: 'GET',
        url: '/files/scans',
        headers: headersOf(tenant),
      });
      return (response.json().objects as { id: string }[]).map((object) => object.id);
    };
    const staged = async () => {
      const keys: string[] = [];
      for await (const info of socle.blobs.list('.staging/presigned/')) keys.push(info.key);
      return keys;
    };

    it('records a single PUT upload once Socle has read it back and checked size, type and sha256', async () => {
      const bytes = png(300 * 1024);
      const started = await start({ size: bytes.length, sha256: sha256(bytes), name: 'scan.png' });
      expect(started.status).toBe(201);
      const url = started.json.url as string;
      expect(url.startsWith(backend === 'local' ? '/files/presigned-upload/' : s3.endpoint)).toBe(true);
      expect((await put(url, bytes)).status).toBe(200);
      expect(await listed()).not.toContain(started.json.uploadId);

      const done = await complete({ token: started.json.token });
      expect(done.status, JSON.stringify(done.json)).toBe(201);
      expect(done.json).toMatchObject({
        size: bytes.length,
        sha256: sha256(bytes),
        contentType: 'image/png',
        name: 'scan.png',
      });
      expect(await listed()).toContain(done.json.id);
      expect(await staged()).toEqual([]);

      // The token is spent: the staged bytes are gone.
      expect((await complete({ token: started.json.token })).json.code).toBe('files.not_uploaded');

      if (backend === 's3') {
        // s3rver never checks SigV4: the SDK's own signer, given the same date and parameters,
        // must produce the same signature, and another key would not.
        const link = new URL(url);
        const signingDate = new Date(
          (link.searchParams.get('X-Amz-Date') as string).replace(
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
        const key = link.pathname.split('/').slice(2).map(decodeURIComponent).join('/');
        const resign = async (Key: string) =>
          new URL(
            await getSignedUrl(client, new PutObjectCommand({ Bucket: S3_BUCKET, Key }), {
              expiresIn: Number(link.searchParams.get('X-Amz-Expires')),
              signingDate,
            }),
          ).searchParams.get('X-Amz-Signature');
        expect(await resign(key)).toBe(link.searchParams.get('X-Amz-Signature'));
        expect(await resign(`${key}x`)).not.toBe(link.searchParams.get('X-Amz-Signature'));
        client.destroy();
      }
    });

    it('assembles a multipart upload from parts PUT in any order, checked by their ETags', async () => {
      const bytes = png(11 * MIB);
      const started = await start({ size: bytes.length, multipart: true, partSize: 5 * MIB });
      expect(started.status).toBe(201);
      const parts = started.json.parts as { partNumber: number; url: string; size: number }[];
      expect(parts.map((part) => part.size)).toEqual([5 * MIB, 5 * MIB, MIB]);
      const etags: { partNumber: number; etag: string }[] = [];
      for (const part of [...parts].reverse()) {
        const offset = (part.partNumber - 1) * 5 * MIB;
        const response = await put(part.url, bytes.subarray(offset, offset + part.size));
        expect(response.status).toBe(200);
        etags.push({ partNumber: part.partNumber, etag: response.headers.get('etag') as string });
      }
      expect(await listed()).not.toContain(started.json.uploadId);

      // A missing part is refused by Socle before the store is asked.
      const missing = await complete({
        token: started.json.token,
        parts: etags.filter((part) => part.partNumber !== 2),
      });
      expect(missing.status).toBe(400);
      expect(missing.json.code).toBe('files.parts_invalid');
      if (backend === 'local') {
        // A part whose bytes are not its ETag: refused, nothing recorded, the staged parts removed.
        // (On S3 the store checks ETags itself; s3rver does not, so that case is local only.)
        const wrong = await complete({
          token: started.json.token,
          parts: etags.map((part) => (part.partNumber === 2 ? { ...part, etag: '"00"' } : part)),
        });
        expect(wrong.status).toBe(400);
        expect(wrong.json.code).toBe('files.parts_invalid');
        expect(await staged()).toEqual([]);
        return;
      }
      const done = await complete({ token: started.json.token, parts: etags });
      expect(done.status, JSON.stringify(done.json)).toBe(201);
      expect(done.json).toMatchObject({ size: bytes.length, sha256: sha256(bytes) });
    });

    it('assembles a multipart upload (happy path) and refuses another organization its token', async () => {
      const bytes = png(6 * MIB);
      const started = await start({ size: bytes.length, multipart: true, partSize: 5 * MIB });
      const etags = [];
      for (const part of started.json.parts ?? []) {
        const offset = (part.partNumber - 1) * 5 * MIB;
        const response = await put(part.url, bytes.subarray(offset, offset + part.size));
        etags.push({ partNumber: part.partNumber, etag: response.headers.get('etag') as string });
      }
      if (backend === 's3') {
        // The part URL, signed again by the SDK's own signer (same date, key, upload id and part
        // number), carries the same SigV4 signature; another part number would not.
        const link = new URL((started.json.parts ?? [])[0]?.url as string);
        const signingDate = new Date(
          (link.searchParams.get('X-Amz-Date') as string).replace(
            /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/,
            '$1-$2-$3T$4:$5:$6Z',
          ),
        );
        const client = new S3Client({
          region: 'us-east-1',
          endpoint: s3.endpoint,
          forcePathStyle: true,
          credentials: TEST_S3_CREDENTIALS,
          // As Socle's staging client: no checksum parameters in part URLs.
          requestChecksumCalculation: 'WHEN_REQUIRED',
        });
        const resign = async (PartNumber: number) =>
          new URL(
            await getSignedUrl(
              client,
              new UploadPartCommand({
                Bucket: S3_BUCKET,
                Key: link.pathname.split('/').slice(2).map(decodeURIComponent).join('/'),
                UploadId: link.searchParams.get('uploadId') as string,
                PartNumber,
              }),
              { expiresIn: Number(link.searchParams.get('X-Amz-Expires')), signingDate },
            ),
          ).searchParams.get('X-Amz-Signature');
        expect(await resign(1)).toBe(link.searchParams.get('X-Amz-Signature'));
        expect(await resign(2)).not.toBe(link.searchParams.get('X-Amz-Signature'));
        client.destroy();
      }
      const stolen = await complete({ token: started.json.token, parts: etags }, other);
      expect(stolen.status).toBe(404);
      expect(stolen.json.code).toBe('files.not_found');
      const done = await complete({ token: started.json.token, parts: etags });
      expect(done.status, JSON.stringify(done.json)).toBe(201);
      expect(done.json).toMatchObject({
        size: bytes.length,
        sha256: sha256(bytes),
        contentType: 'image/png',
      });
      const files = socle.servicesOf<FilesServices>('files');
      const opened = await files.open({ kind: 'tenant', id: tenant.id }, 'scans', done.json.id, {});
      const chunks: Buffer[] = [];
      for await (const chunk of opened.read?.body ?? []) chunks.push(chunk as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(sha256(bytes));
    });

    it('refuses bytes that are not what was announced: another sha256 (400), a disguised type (415), leaving nothing', async () => {
      const before = await listed();
      const bytes = png(64 * 1024);
      const lying = await start({ size: bytes.length, sha256: sha256(Buffer.from('other')) });
      await put(lying.json.url as string, bytes);
      const mismatch = await complete({ token: lying.json.token });
      expect(mismatch.status).toBe(400);
      expect(mismatch.json.code).toBe('files.checksum_mismatch');

      const disguised = await start({ size: PDF.length, name: 'scan.png' });
      await put(disguised.json.url as string, PDF);
      const refused = await complete({ token: disguised.json.token });
      expect(refused.status).toBe(415);
      expect(refused.json).toMatchObject({ code: 'files.type_not_allowed', detected: 'application/pdf' });

      const shorter = await start({ size: bytes.length });
      await put(shorter.json.url as string, bytes.subarray(0, 1000));
      const short = await complete({ token: shorter.json.token });
      expect(short.status).toBe(400);
      expect(short.json.code).toBe('files.size_mismatch');

      expect(await listed()).toEqual(before);
      expect(await staged()).toEqual([]);
    });

    it('refuses an announced size over the bucket limit (413) and a tampered token (403)', async () => {
      const tooLarge = await start({ size: scans.maxBytes + 1 });
      expect(tooLarge.status).toBe(413);
      expect(tooLarge.json.code).toBe('files.too_large');
      const started = await start({ size: 1000 });
      const tampered = await complete({ token: started.json.token.replace('size=1000', 'size=2000') });
      expect(tampered.status).toBe(403);
      expect(tampered.json.code).toBe('files.signature_invalid');
    });

    it.runIf(backend === 'local')(
      'serves its own signed upload URLs: tampered or expired (403), more bytes than announced (413)',
      async () => {
        const bytes = png(10_000);
        const started = await start({ size: bytes.length, expiresInSeconds: 60 });
        const url = started.json.url as string;
        const tampered = await put(url.replace('max=10000', 'max=20000'), png(20_000));
        expect(tampered.status).toBe(403);
        expect(((await tampered.json()) as { code: string }).code).toBe('files.signature_invalid');
        const over = await put(url, png(10_001));
        expect(over.status).toBe(413);
        expect(((await over.json()) as { code: string }).code).toBe('files.too_large');
        clock.advance(61_000);
        const expired = await put(url, bytes);
        expect(expired.status).toBe(403);
        expect(((await expired.json()) as { code: string }).code).toBe('files.signature_expired');
      },
    );

    it('removes staged uploads never completed once a day old', async () => {
      const files = socle.servicesOf<FilesServices>('files');
      const bytes = png(10_000);
      const started = await start({ size: bytes.length });
      await put(started.json.url as string, bytes);
      expect((await staged()).length).toBe(1);
      expect(await files.presigned.removeAbandoned()).toBe(0);
      clock.advance(25 * 3600 * 1000);
      expect(await files.presigned.removeAbandoned()).toBeGreaterThanOrEqual(1);
      expect(await staged()).toEqual([]);
    });
  });
});
