import { createHash } from 'node:crypto';
import { Upload } from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFilesModule, createManualClock, defineBucket, type FilesServices } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestSocle, type TestTenant } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { startS3Server, TEST_S3_CREDENTIALS } from './support/s3-server.js';

// A real PNG header followed by filler (file-type sniffs image/png); a PDF for the lying-type case.
const PNG_HEAD = Buffer.from('89504e470d0a1a0a0000000d4948445200000010000000100806000000', 'hex');
const png = (bytes: number) => {
  const filler = Buffer.alloc(bytes - PNG_HEAD.length);
  for (let i = 0; i < filler.length; i += 4096) filler.writeUInt32BE(i, i);
  return Buffer.concat([PNG_HEAD, filler]);
};
const PDF = Buffer.concat([
  Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\n'),
  Buffer.alloc(64 * 1024, 32),
]);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const b64 = (text: string) => Buffer.from(text).toString('base64');

/** 20 MB: 60 % of it crosses the S3 tus store's 8 MiB part, so S3 keeps something to resume from. */
const LARGE = 20 * 1024 * 1024;
const scans = defineBucket({ name: 'scans', maxBytes: 32 * 1024 * 1024, allowedTypes: ['image/*'] });

const backends = ['local', 's3'] as const;
let s3: Awaited<ReturnType<typeof startS3Server>>;
beforeAll(async () => {
  s3 = await startS3Server('socle-tus');
  process.env.AWS_ACCESS_KEY_ID = TEST_S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = TEST_S3_CREDENTIALS.secretAccessKey;
});
afterAll(() => s3?.close());

interface Finished {
  readonly status: number;
  readonly objectId: string | null;
}

describeEachDatabase('files: tus resumable uploads', (target) => {
  describe.each(backends)('%s backend', (backend) => {
    let socle: TestSocle;
    let baseUrl: string;
    let tenant: TestTenant;
    let other: TestTenant;

    beforeAll(async () => {
      socle = await createTestSocle(target, {
        clock: createManualClock(new Date()),
        modules: [
          ...createBuiltInModules(),
          createFilesModule({ buckets: [scans], quotaBytes: 64 * 1024 * 1024 }),
        ],
        config: {
          jobsQueues: [],
          ...(backend === 's3' ? { blobUrl: s3.blobUrl(`tus-${Date.now()}-${target.dialect}`) } : {}),
        },
      });
      baseUrl = await socle.listen();
      tenant = await socle.newTenant();
      other = await socle.newTenant();
    });
    afterAll(() => socle?.dispose());

    const headersOf = (t: TestTenant) => ({ authorization: `Bearer ${t.owner.token}`, 'x-org-id': t.id });
    const endpoint = () => `${baseUrl}/files/tus`;
    const listed = async (t: TestTenant) => {
      const response = await socle.app.inject({ method: 'GET', url: '/files/scans', headers: headersOf(t) });
      return (response.json().objects as { id: string; sha256: string }[]).map((object) => object.id);
    };
    const stagedOffset = async (url: string, t: TestTenant) => {
      const response = await fetch(url, {
        method: 'HEAD',
        headers: { ...headersOf(t), 'tus-resumable': '1.0.0' },
      });
      return { status: response.status, offset: Number(response.headers.get('upload-offset')) };
    };

    /** Runs a tus-js-client upload to its end: success, or the server's refusal. */
    const runUpload = (
      file: Buffer,
      options: {
        readonly tenant: TestTenant;
        readonly metadata: Record<string, string>;
        readonly uploadUrl?: string;
        readonly abortAt?: number;
        readonly chunkSize?: number;
        readonly onStart?: (offset: number) => void;
      },
    ) =>
      new Promise<Finished & { readonly url: string | null; readonly body: string | undefined }>(
        (resolve, reject) => {
          let first = true;
          const upload: Upload = new Upload(file, {
            endpoint: endpoint(),
            ...(options.uploadUrl === undefined ? {} : { uploadUrl: options.uploadUrl }),
            ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
            headers: headersOf(options.tenant),
            metadata: options.metadata,
            retryDelays: [],
            onProgress(sent) {
              if (first) {
                first = false;
                options.onStart?.(sent);
              }
              if (options.abortAt !== undefined && sent >= options.abortAt) {
                // Drops the connection mid-PATCH, as a lost network would.
                void upload
                  .abort()
                  .then(() => resolve({ status: 0, objectId: null, url: upload.url, body: undefined }));
              }
            },
            onSuccess({ lastResponse }) {
              resolve({
                status: lastResponse.getStatus(),
                objectId: lastResponse.getHeader('socle-object-id') ?? null,
                url: upload.url,
                body: undefined,
              });
            },
            onError(error) {
              const response = (error as { originalResponse?: { getStatus(): number; getBody(): string } })
                .originalResponse;
              if (response === undefined || response === null) return reject(error);
              resolve({
                status: response.getStatus(),
                objectId: null,
                url: upload.url,
                body: response.getBody(),
              });
            },
          });
          upload.start();
        },
      );

    it('resumes an upload interrupted at 60 % and commits the object only once it is complete', async () => {
      const file = png(LARGE);
      const metadata = { bucket: 'scans', filename: 'scan.png', filetype: 'image/png', page: '7' };
      const before = await listed(tenant);

      // PATCHes of 2 MiB, so the connection is dropped while the 7th is in flight, whatever the
      // socket buffers: the upload cannot have finished.
      const interrupted = await runUpload(file, {
        tenant,
        metadata,
        abortAt: LARGE * 0.6,
        chunkSize: 2 * 1024 * 1024,
      });
      expect(interrupted.status).toBe(0);
      const url = interrupted.url as string;
      expect(url).toMatch(/\/files\/tus\/[0-9a-f-]{36}$/);

      // The server kept what arrived; no object exists yet.
      const staged = await stagedOffset(url, tenant);
      expect(staged.status).toBe(200);
      expect(staged.offset).toBeGreaterThan(0);
      expect(staged.offset).toBeLessThan(LARGE);
      expect(await listed(tenant)).toEqual(before);

      // Another organization cannot see, resume or cancel it.
      expect((await stagedOffset(url, other)).status).toBe(404);
      const stolen = await fetch(url, {
        method: 'PATCH',
        headers: {
          ...headersOf(other),
          'tus-resumable': '1.0.0',
          'upload-offset': String(staged.offset),
          'content-type': 'application/offset+octet-stream',
        },
        body: file.subarray(staged.offset),
      });
      expect(stolen.status).toBe(404);
      expect(stolen.headers.get('content-type')).toContain('application/problem+json');
      expect(((await stolen.json()) as { code: string }).code).toBe('files.not_found');
      // tus-js-client, told the upload does not exist (404), starts a new one of its own.
      const otherResume = await runUpload(file, { tenant: other, metadata, uploadUrl: url });
      expect(otherResume.url).not.toBe(url);
      expect(await listed(other)).toContain(otherResume.objectId);
      expect(await stagedOffset(url, tenant)).toEqual(staged);

      // The uploader resumes from the server's offset and completes.
      let resumedFrom = -1;
      const resumed = await runUpload(file, {
        tenant,
        metadata,
        uploadUrl: url,
        onStart: (sent) => {
          resumedFrom = sent;
        },
      });
      expect(resumed.status).toBe(204);
      expect(resumedFrom).toBeGreaterThanOrEqual(0);
      const objectId = resumed.objectId as string;
      expect(objectId).toMatch(/^[0-9a-f-]{36}$/);

      const files = socle.servicesOf<FilesServices>('files');
      const object = await files.find(
        { tenantId: tenant.id, userId: tenant.owner.userId },
        'scans',
        objectId,
      );
      expect(object).toMatchObject({
        size: LARGE,
        sha256: sha256(file),
        contentType: 'image/png',
        name: 'scan.png',
        metadata: { page: '7' },
        ownerId: tenant.owner.userId,
      });
      expect(await listed(tenant)).toContain(objectId);
      expect(await listed(other)).not.toContain(objectId);
      // The staged upload is gone once committed.
      expect((await stagedOffset(url, tenant)).status).toBe(404);
    });

    it('refuses bytes that are not the type the bucket takes, whatever Upload-Metadata says (415), leaving nothing', async () => {
      const before = await listed(tenant);
      const refused = await runUpload(PDF, {
        tenant,
        metadata: { bucket: 'scans', filename: 'scan.png', filetype: 'image/png' },
      });
      expect(refused.status).toBe(415);
      expect(JSON.parse(refused.body as string)).toMatchObject({
        code: 'files.type_not_allowed',
        detected: 'application/pdf',
      });
      expect(await listed(tenant)).toEqual(before);
      expect((await stagedOffset(refused.url as string, tenant)).status).toBe(404);
    });

    it("answers the tus server's own refusals as problem+json (a PATCH of the wrong type, an upload already terminated)", async () => {
      const created = await fetch(endpoint(), {
        method: 'POST',
        headers: {
          ...headersOf(tenant),
          'tus-resumable': '1.0.0',
          'upload-length': '10',
          'upload-metadata': `bucket ${b64('scans')}`,
        },
      });
      expect(created.status).toBe(201);
      const location = new URL(created.headers.get('location') as string, baseUrl).href;
      const wrongType = await fetch(location, {
        method: 'PATCH',
        headers: {
          ...headersOf(tenant),
          'tus-resumable': '1.0.0',
          'upload-offset': '0',
          'content-type': 'text/plain',
        },
        body: 'hello',
      });
      expect(wrongType.status).toBe(400);
      expect(wrongType.headers.get('content-type')).toContain('application/problem+json');
      expect(((await wrongType.json()) as { code: string }).code).toBe('files.tus_refused');

      const terminate = () =>
        fetch(location, { method: 'DELETE', headers: { ...headersOf(tenant), 'tus-resumable': '1.0.0' } });
      expect((await terminate()).status).toBe(204);
      const again = await terminate();
      expect(again.status).toBe(404);
      expect(again.headers.get('content-type')).toContain('application/problem+json');
    });

    it('refuses an upload whose declared length is over the bucket limit (413) or names no bucket (400)', async () => {
      const tooLarge = await fetch(endpoint(), {
        method: 'POST',
        headers: {
          ...headersOf(tenant),
          'tus-resumable': '1.0.0',
          'upload-length': String(scans.maxBytes + 1),
          'upload-metadata': `bucket ${b64('scans')},filename ${b64('big.png')}`,
        },
      });
      expect(tooLarge.status).toBe(413);
      expect(tooLarge.headers.get('content-type')).toContain('application/problem+json');
      expect(((await tooLarge.json()) as { code: string }).code).toBe('files.too_large');

      const deferred = await fetch(endpoint(), {
        method: 'POST',
        headers: {
          ...headersOf(tenant),
          'tus-resumable': '1.0.0',
          'upload-defer-length': '1',
          'upload-metadata': `bucket ${b64('scans')}`,
        },
      });
      expect(deferred.status).toBe(400);
      expect(((await deferred.json()) as { code: string }).code).toBe('files.length_required');

      const noBucket = await fetch(endpoint(), {
        method: 'POST',
        headers: { ...headersOf(tenant), 'tus-resumable': '1.0.0', 'upload-length': '10' },
      });
      expect(noBucket.status).toBe(400);
      expect(((await noBucket.json()) as { code: string }).code).toBe('files.bucket_required');

      const anonymous = await fetch(endpoint(), {
        method: 'POST',
        headers: {
          'tus-resumable': '1.0.0',
          'upload-length': '10',
          'upload-metadata': `bucket ${b64('scans')}`,
        },
      });
      expect(anonymous.status).toBe(401);
    });
  });
});
