import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { assertBlobKey } from './blob-store.js';
import { createLocalBlobStore } from './local-blob-store.js';
import { parseS3Url } from './s3-blob-store.js';

const root = mkdtempSync(path.join(tmpdir(), 'socle-blobs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A body that sends `bytes`, then fails as a client hanging up would. */
function failingBody(bytes: number): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(Buffer.alloc(bytes, 1));
      } else this.destroy(new Error('client went away'));
    },
  });
}

describe('local blob store', () => {
  const store = createLocalBlobStore(root);

  it('makes a blob visible only once complete: a failed, oversized or aborted write leaves nothing', async () => {
    await expect(store.put('a/failed', failingBody(100_000))).rejects.toThrow('client went away');
    await expect(
      store.put('a/large', Readable.from([Buffer.alloc(2000)]), { maxBytes: 1000 }),
    ).rejects.toMatchObject({ code: 'blobs.too_large' });
    const controller = new AbortController();
    const aborted = store.put('a/aborted', failingBody(10), { signal: controller.signal });
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow();
    expect(await store.head('a/failed')).toBeUndefined();
    expect(await store.head('a/large')).toBeUndefined();
    expect(readdirSync(path.join(root, '.tmp'))).toEqual([]);
  });

  it('replaces a blob whole, reads ranges, lists by prefix and deletes idempotently', async () => {
    await store.put('b/one', Readable.from([Buffer.from('first version')]));
    await store.put('b/one', Readable.from([Buffer.from('0123456789')]));
    await store.put('b/two', Readable.from([Buffer.from('x')]));
    const read = await store.get('b/one', { range: { start: 2, end: 4 } });
    expect(read?.contentLength).toBe(3);
    expect(read?.size).toBe(10);
    const chunks: Buffer[] = [];
    for await (const chunk of read?.body ?? []) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('234');
    const listed: string[] = [];
    for await (const info of store.list('b/')) listed.push(info.key);
    expect(listed).toEqual(['b/one', 'b/two']);
    await store.delete('b/two');
    await store.delete('b/two');
    expect(await store.get('b/two')).toBeUndefined();
  });

  it('refuses keys that could leave the directory', async () => {
    for (const key of ['../etc/passwd', 'a/../../b', '/abs', 'a//b', 'a/./b', '']) {
      expect(() => assertBlobKey(key), key).toThrow(/blob key/i);
    }
    await expect(store.put('../escape', Readable.from([Buffer.from('x')]))).rejects.toMatchObject({
      code: 'blobs.invalid_key',
    });
  });
});

describe('BLOB_URL', () => {
  it('parses an S3 URL with its endpoint, region, path style and prefix', () => {
    expect(
      parseS3Url('s3://media/prod/files?endpoint=http%3A%2F%2Fminio%3A9000&region=eu&forcePathStyle=true'),
    ).toEqual({
      bucket: 'media',
      prefix: 'prod/files/',
      endpoint: 'http://minio:9000',
      region: 'eu',
      forcePathStyle: true,
      archiveStorageClass: 'STANDARD_IA',
    });
    expect(() => parseS3Url('s3://media?endpont=x')).toThrow(/unknown parameter "endpont"/);
  });

  it('is one kernel setting, refusing credentials in the URL without echoing them', () => {
    expect(loadConfig({ env: { BLOB_URL: 's3://media?region=eu' }, configFile: false }).blobUrl).toBe(
      's3://media?region=eu',
    );
    expect(loadConfig({ env: {}, configFile: false }).blobUrl).toBeUndefined();
    try {
      loadConfig({ env: { BLOB_URL: 's3://key:hunter2@media' }, configFile: false });
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).toContain('BLOB_URL');
      expect(String((error as Error).message)).not.toContain('hunter2');
    }
  });
});
