import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFilesModule,
  createManualClock,
  defineBucket,
  encodeVariantSpec,
  type FileObject,
  type FilesServices,
  parseVariantSpec,
} from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestSocle, type TestTenant } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { startS3Server, TEST_S3_CREDENTIALS } from './support/s3-server.js';

const photos = defineBucket({ name: 'photos', maxBytes: 4 * 1024 * 1024, allowedTypes: ['image/*'] });
const backends = ['local', 's3'] as const;
let s3: Awaited<ReturnType<typeof startS3Server>>;
beforeAll(async () => {
  s3 = await startS3Server('socle-variants');
  process.env.AWS_ACCESS_KEY_ID = TEST_S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = TEST_S3_CREDENTIALS.secretAccessKey;
});
afterAll(() => s3?.close());

describeEachDatabase('files: image variants through signed links', (target) => {
  describe.each(backends)('%s backend', (backend) => {
    let socle: TestSocle;
    let files: FilesServices;
    let tenant: TestTenant;
    let object: FileObject;
    const clock = createManualClock(new Date());
    const blobDirectory = mkdtempSync(path.join(tmpdir(), 'socle-variants-'));

    beforeAll(async () => {
      socle = await createTestSocle(target, {
        clock,
        modules: [...createBuiltInModules(), createFilesModule({ buckets: [photos] })],
        config: {
          jobsQueues: [],
          // Its own blob directory even on Postgres (no DATA_DIR there): the cache starts empty.
          blobUrl:
            backend === 's3'
              ? s3.blobUrl(`variants-${Date.now()}-${target.dialect}`)
              : pathToFileURL(blobDirectory).href,
        },
      });
      files = socle.servicesOf<FilesServices>('files');
      tenant = await socle.newTenant();
      const image = await sharp({
        create: { width: 800, height: 600, channels: 3, background: { r: 200, g: 40, b: 90 } },
      })
        .jpeg()
        .toBuffer();
      const response = await socle.app.inject({
        method: 'POST',
        url: '/files/photos?name=photo.jpg',
        payload: image,
        headers: { authorization: `Bearer ${tenant.owner.token}`, 'x-org-id': tenant.id },
      });
      expect(response.statusCode, response.body).toBe(201);
      object = response.json() as FileObject;
    });
    afterAll(async () => {
      await socle?.dispose();
      rmSync(blobDirectory, { recursive: true, force: true });
    });

    const get = (url: string, headers: Record<string, string> = {}) =>
      socle.app.inject({ method: 'GET', url, headers });
    const cachedVariants = async () => {
      const keys: string[] = [];
      for await (const info of socle.blobs.list('variants/')) keys.push(info.key);
      return keys;
    };

    it('renders the signed variant once, then serves it from the blob cache with its ETag', async () => {
      const { url } = files.variants.variantUrl(object, { width: 200, format: 'webp' });
      const first = await get(url);
      expect(first.statusCode, first.body).toBe(200);
      expect(first.headers['content-type']).toBe('image/webp');
      const metadata = await sharp(first.rawPayload).metadata();
      expect(metadata).toMatchObject({ format: 'webp', width: 200, height: 150 });
      expect(await cachedVariants()).toHaveLength(1);

      const second = await get(url);
      expect(second.statusCode).toBe(200);
      expect(second.rawPayload.equals(first.rawPayload)).toBe(true);
      expect(second.headers.etag).toBe(first.headers.etag);
      expect(await cachedVariants()).toHaveLength(1);
      const metrics = await socle.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/socle_files_variant_cache_hits_total [1-9]/);
      expect(metrics.body).toMatch(/socle_files_variants_rendered_total 1\b/);

      const notModified = await get(url, { 'if-none-match': first.headers.etag as string });
      expect(notModified.statusCode).toBe(304);
    });

    it('refuses a link whose variant, scope or expiry was changed (403), and a bad spec (400)', async () => {
      const { url } = files.variants.variantUrl(object, { width: 200, format: 'webp' });
      const bigger = encodeURIComponent(encodeVariantSpec(parseVariantSpec({ width: 2000, format: 'webp' })));
      const tampered = await get(url.replace(/variant=[^&]+/, `variant=${bigger}`));
      expect(tampered.statusCode).toBe(403);
      expect(tampered.headers['content-type']).toContain('application/problem+json');
      expect(tampered.json().code).toBe('files.signature_invalid');
      const otherScope = await get(url.replace(/scope=t\.[0-9a-f-]+/, `scope=t.${crypto.randomUUID()}`));
      expect(otherScope.statusCode).toBe(403);
      expect(() => files.variants.variantUrl(object, { width: 0 })).toThrow(
        expect.objectContaining({ code: 'files.variant_invalid' }),
      );
      clock.advance(3601_000);
      const expired = await get(url);
      expect(expired.statusCode).toBe(403);
      expect(expired.json().code).toBe('files.signature_expired');
    });

    it("deletes an object's cached variants with it, and the cleanup job those no object holds", async () => {
      const other = await sharp({
        create: { width: 640, height: 480, channels: 3, background: { r: 10, g: 120, b: 60 } },
      })
        .png()
        .toBuffer();
      // A tenant of its own: the clock went past the first tenant's tokens above.
      const owner = await socle.newTenant();
      const headers = { authorization: `Bearer ${owner.owner.token}`, 'x-org-id': owner.id };
      const uploaded = await socle.app.inject({
        method: 'POST',
        url: '/files/photos?name=other.png',
        payload: other,
        headers,
      });
      expect(uploaded.statusCode, uploaded.body).toBe(201);
      const second = uploaded.json() as FileObject;
      for (const width of [100, 300]) {
        const { url } = files.variants.variantUrl(second, { width, format: 'webp' });
        expect((await get(url)).statusCode).toBe(200);
      }
      const ofSecond = (keys: string[]) => keys.filter((key) => key.startsWith(`variants/${second.sha256}/`));
      expect(ofSecond(await cachedVariants())).toHaveLength(2);
      const kept = (await cachedVariants()).filter((key) => key.startsWith(`variants/${object.sha256}/`));
      expect(kept.length).toBeGreaterThan(0);

      const deleted = await socle.app.inject({
        method: 'DELETE',
        url: `/files/photos/${second.id}`,
        headers,
      });
      expect(deleted.statusCode, deleted.body).toBe(204);
      expect(ofSecond(await cachedVariants())).toEqual([]);

      // Left behind: a variant stored before variants were grouped by source, and one whose
      // source no object holds (a render that finished after its source was erased).
      const { Readable } = await import('node:stream');
      const legacy = `variants/${'a'.repeat(64)}`;
      const orphan = `variants/${'b'.repeat(64)}/${'c'.repeat(64)}`;
      for (const key of [legacy, orphan]) await socle.blobs.put(key, Readable.from([Buffer.from('x')]));
      clock.advance(2 * 3600_000);
      expect(await files.removeAbandonedUploads()).toBeGreaterThanOrEqual(2);
      const left = await cachedVariants();
      expect(left).not.toContain(legacy);
      expect(left).not.toContain(orphan);
      expect(left).toEqual(expect.arrayContaining(kept));
    });
  });
});
