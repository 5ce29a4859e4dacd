import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import sharp from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import { createVariantRenderer } from './render-variant.js';
import { createVariantCache, type VariantBlobStore } from './variant-cache.js';
import { parseVariantSpec } from './variant-spec.js';

/** A blob store in memory, which, like a real one, takes a moment to answer. */
function memoryStore() {
  const blobs = new Map<string, Buffer>();
  const store: VariantBlobStore = {
    get: vi.fn(async (key: string) => {
      await new Promise((resolve) => setImmediate(resolve));
      const blob = blobs.get(key);
      return blob === undefined ? undefined : { body: Readable.from([blob]), size: blob.length };
    }),
    put: vi.fn(async (key: string, body: Readable) => {
      const bytes = await buffer(body);
      await new Promise((resolve) => setImmediate(resolve));
      blobs.set(key, bytes);
    }),
  };
  return { store, blobs };
}

async function setup() {
  const source = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#c40' } })
    .jpeg()
    .toBuffer();
  const { store, blobs } = memoryStore();
  const renderer = createVariantRenderer();
  const renderVariant = vi.spyOn(renderer, 'renderVariant');
  const openSource = vi.fn(async () => Readable.from([source]));
  const outcomes: string[] = [];
  const cache = createVariantCache({ store, renderer, onOutcome: (outcome) => outcomes.push(outcome) });
  const request = { sourceSha256: 'f'.repeat(64), spec: parseVariantSpec({ width: 200 }), openSource };
  return { cache, store, blobs, renderVariant, openSource, outcomes, request };
}

describe('createVariantCache', () => {
  it('renders a variant once for 20 concurrent requests, stores it once and serves it to all', async () => {
    const { cache, store, blobs, renderVariant, openSource, outcomes, request } = await setup();

    const served = await Promise.all(Array.from({ length: 20 }, () => cache.getVariant(request)));

    expect(renderVariant).toHaveBeenCalledTimes(1);
    expect(openSource).toHaveBeenCalledTimes(1);
    expect(store.put).toHaveBeenCalledTimes(1);
    expect(outcomes.filter((outcome) => outcome === 'miss')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'shared')).toHaveLength(19);
    const bodies = await Promise.all(served.map((variant) => buffer(variant.body)));
    const stored = blobs.get(served[0]?.blobKey ?? '');
    expect(stored).toBeDefined();
    for (const body of bodies) expect(body.equals(stored as Buffer)).toBe(true);
    expect(await sharp(stored).metadata()).toMatchObject({ format: 'webp', width: 200, height: 150 });
    expect(served.every((variant) => variant.contentType === 'image/webp')).toBe(true);
  });

  it('serves later requests from the store without rendering again', async () => {
    const { cache, renderVariant, outcomes, request } = await setup();
    const first = await cache.getVariant(request);
    const firstBytes = await buffer(first.body);

    const again = await cache.getVariant(request);

    expect(again).toMatchObject({ outcome: 'hit', contentType: 'image/webp', blobKey: first.blobKey });
    expect((await buffer(again.body)).equals(firstBytes)).toBe(true);
    expect(first.blobKey).toMatch(/^variants\/[0-9a-f]{64}\/[0-9a-f]{64}$/);
    expect(renderVariant).toHaveBeenCalledTimes(1);
    expect(outcomes).toEqual(['miss', 'hit']);
  });

  it('renders another variant of the same source separately', async () => {
    const { cache, renderVariant, request } = await setup();
    const small = await cache.getVariant(request);
    const large = await cache.getVariant({ ...request, spec: parseVariantSpec({ width: 400 }) });
    expect(large.blobKey).not.toBe(small.blobKey);
    expect(renderVariant).toHaveBeenCalledTimes(2);
  });

  it('fails every request of a failed render, stores nothing, and renders afresh on the next request', async () => {
    const { cache, store, openSource, request } = await setup();
    openSource.mockImplementationOnce(async () => Readable.from([Buffer.from('not an image')]));

    const failed = await Promise.allSettled(Array.from({ length: 5 }, () => cache.getVariant(request)));

    expect(failed.every((result) => result.status === 'rejected')).toBe(true);
    expect(failed[0]).toMatchObject({ reason: { code: 'files.image_unreadable' } });
    expect(store.put).not.toHaveBeenCalled();
    await expect(cache.getVariant(request)).resolves.toMatchObject({ outcome: 'miss' });
    expect(openSource).toHaveBeenCalledTimes(2);
  });

  it('still serves the variant when storing it fails and a handler is given', async () => {
    const { store, renderVariant, request } = await setup();
    vi.mocked(store.put).mockRejectedValueOnce(new Error('disk full'));
    const storeErrors: unknown[] = [];
    const cache = createVariantCache({
      store,
      renderer: { renderVariant },
      onStoreError: (error) => storeErrors.push(error),
    });

    const served = await cache.getVariant(request);

    expect(served.outcome).toBe('miss');
    expect((await buffer(served.body)).length).toBeGreaterThan(0);
    expect(storeErrors).toEqual([new Error('disk full')]);
    await expect(cache.getVariant(request)).resolves.toMatchObject({ outcome: 'miss' });
  });

  it('rejects when storing fails and no handler is given', async () => {
    const { cache, store, request } = await setup();
    vi.mocked(store.put).mockRejectedValueOnce(new Error('disk full'));
    await expect(cache.getVariant(request)).rejects.toThrow('disk full');
  });
});
