import { PassThrough, Readable } from 'node:stream';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { createVariantRenderer, variantCacheKey } from './render-variant.js';
import { parseVariantSpec, type VariantFormat } from './variant-spec.js';

/** A 640 × 320 JPEG with GPS coordinates in its EXIF, stored sideways (Orientation 6: shown 320 × 640). */
async function photoWithGps(): Promise<Buffer> {
  return sharp({ create: { width: 640, height: 320, channels: 3, background: '#3a7' } })
    .withExif({
      IFD0: { Make: 'TestCam', Model: 'Phone 1' },
      IFD3: {
        GPSLatitudeRef: 'N',
        GPSLatitude: '48/1 51/1 2396/100',
        GPSLongitudeRef: 'E',
        GPSLongitude: '2/1 21/1 758/100',
      },
    })
    .withMetadata({ orientation: 6 })
    .jpeg()
    .toBuffer();
}

/** Whether a JPEG's EXIF block points to a GPS IFD (tag 0x8825 in IFD0). */
function exifHasGps(exif: Buffer): boolean {
  const tiff = exif.subarray(6); // after "Exif\0\0"
  const little = tiff.toString('latin1', 0, 2) === 'II';
  const u16 = (at: number) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  const ifd0 = u32(4);
  for (let entry = 0; entry < u16(ifd0); entry += 1) {
    if (u16(ifd0 + 2 + entry * 12) === 0x8825) return true;
  }
  return false;
}

/** A 200-byte PNG whose header declares 30000 × 30000 pixels (900 MP): a decompression bomb. */
function pngBomb(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typeAndData));
    return Buffer.concat([length, typeAndData, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(30_000, 0);
  header.writeUInt32BE(30_000, 4);
  header.writeUInt8(8, 8); // bit depth
  header.writeUInt8(0, 9); // greyscale
  // Ten rows of zeros, each a filter byte and 30000 samples: the rest would inflate the same way.
  const rows = deflateSync(Buffer.alloc(10 * 30_001));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', rows),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The format the bytes are, from their magic numbers. */
function sniff(data: Buffer): string {
  if (data.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff]))) return 'jpeg';
  if (data.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (data.toString('latin1', 0, 4) === 'RIFF' && data.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (data.toString('latin1', 4, 12) === 'ftypavif') return 'avif';
  return 'unknown';
}

describe('createVariantRenderer', () => {
  it('reads a GPS-tagged photo whose EXIF the test then expects gone', async () => {
    const photo = await photoWithGps();
    const metadata = await sharp(photo).metadata();
    expect(metadata.exif && exifHasGps(metadata.exif)).toBe(true);
    expect(metadata.orientation).toBe(6);
  });

  it.each(['webp', 'avif', 'jpeg', 'png'] as const)(
    'renders %s with no EXIF, GPS or other metadata left, oriented upright',
    async (format: VariantFormat) => {
      const renderer = createVariantRenderer();
      const spec = parseVariantSpec({ width: 100, format });
      const variant = await renderer.renderVariant(Readable.from(await photoWithGps()), spec);

      expect(variant.contentType).toBe(`image/${format}`);
      expect(sniff(variant.data)).toBe(format);
      const metadata = await sharp(variant.data).metadata();
      expect(metadata).toMatchObject({ width: 100, height: 200 });
      expect(variant).toMatchObject({ width: 100, height: 200 });
      expect(metadata.exif).toBeUndefined();
      expect(metadata.xmp).toBeUndefined();
      expect(metadata.iptc).toBeUndefined();
      expect(metadata.orientation).toBeUndefined();
      expect(variant.data.includes('TestCam')).toBe(false);
    },
  );

  it('crops to the box with cover and never enlarges', async () => {
    const png = await sharp({ create: { width: 300, height: 200, channels: 4, background: '#00f8' } })
      .png()
      .toBuffer();
    const renderer = createVariantRenderer();
    const cropped = await renderer.renderVariant(
      Readable.from(png),
      parseVariantSpec({ width: 50, height: 50, format: 'png' }),
    );
    expect(await sharp(cropped.data).metadata()).toMatchObject({ format: 'png', width: 50, height: 50 });
    const notEnlarged = await renderer.renderVariant(Readable.from(png), parseVariantSpec({ width: 1200 }));
    expect(notEnlarged).toMatchObject({ width: 300, height: 200, contentType: 'image/webp' });
  });

  it('refuses a decompression bomb from its header, with 422 files.image_too_large', async () => {
    const bomb = pngBomb();
    expect(bomb.length).toBeLessThan(1000);
    const renderer = createVariantRenderer();
    await expect(
      renderer.renderVariant(Readable.from(bomb), parseVariantSpec({ width: 100 })),
    ).rejects.toMatchObject({
      code: 'files.image_too_large',
      status: 422,
      details: { limit: 'pixels', maximum: 100_000_000, actual: 900_000_000 },
    });
  });

  it('applies a lower pixel limit when configured', async () => {
    const renderer = createVariantRenderer({ maxInputPixels: 640 * 320 - 1 });
    await expect(
      renderer.renderVariant(Readable.from(await photoWithGps()), parseVariantSpec({ width: 10 })),
    ).rejects.toMatchObject({ code: 'files.image_too_large', details: { actual: 640 * 320 } });
  });

  it('refuses a source larger than the byte limit without reading it all', async () => {
    const renderer = createVariantRenderer({ maxInputBytes: 1024 });
    const source = Readable.from([Buffer.alloc(1000), Buffer.alloc(1000), Buffer.alloc(1000)]);
    await expect(renderer.renderVariant(source, parseVariantSpec({ width: 10 }))).rejects.toMatchObject({
      code: 'files.image_too_large',
      details: { limit: 'bytes', maximum: 1024 },
    });
    expect(source.destroyed).toBe(true);
  });

  it('refuses SVG and bytes that are no image with 422', async () => {
    const renderer = createVariantRenderer();
    const svg =
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>';
    await expect(
      renderer.renderVariant(Readable.from(Buffer.from(svg)), parseVariantSpec({ width: 5 })),
    ).rejects.toMatchObject({ code: 'files.image_unsupported', status: 422, details: { format: 'svg' } });
    await expect(
      renderer.renderVariant(
        Readable.from(Buffer.from('plain text, not an image')),
        parseVariantSpec({ width: 5 }),
      ),
    ).rejects.toMatchObject({ code: 'files.image_unreadable', status: 422 });
  });

  it('refuses a truncated JPEG with 422 files.image_unreadable', async () => {
    const photo = await photoWithGps();
    const renderer = createVariantRenderer();
    await expect(
      renderer.renderVariant(
        Readable.from(photo.subarray(0, photo.length - 400)),
        parseVariantSpec({ width: 5 }),
      ),
    ).rejects.toMatchObject({ code: 'files.image_unreadable', status: 422 });
  });

  it('lets a failing source through as the server error it is', async () => {
    const renderer = createVariantRenderer();
    const source = new Readable({
      read() {
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(renderer.renderVariant(source, parseVariantSpec({ width: 5 }))).rejects.toThrow(
      'connection reset',
    );
  });

  it('runs at most `concurrency` renders, queues `maxQueued` without reading them, and refuses beyond with 503', async () => {
    const renderer = createVariantRenderer({ concurrency: 1, maxQueued: 1 });
    const spec = parseVariantSpec({ width: 10, format: 'png' });
    const first = new PassThrough();
    const second = new PassThrough();
    const running = renderer.renderVariant(first, spec);
    const waiting = renderer.renderVariant(second, spec);
    const third = new PassThrough();
    await expect(renderer.renderVariant(third, spec)).rejects.toMatchObject({
      code: 'files.variants_busy',
      status: 503,
      headers: { 'retry-after': '1' },
    });
    expect(third.destroyed).toBe(true);
    expect(renderer.load).toEqual({ active: 1, queued: 1 });
    second.end(await photoWithGps());
    // The queued render has not read its source: its bytes are still buffered in the stream.
    expect(second.readableLength).toBeGreaterThan(0);

    first.end(await photoWithGps());
    await expect(running).resolves.toMatchObject({ width: 10, height: 20 });
    await expect(waiting).resolves.toMatchObject({ width: 10, height: 20 });
    expect(renderer.load).toEqual({ active: 0, queued: 0 });
  });
});

describe('variantCacheKey', () => {
  it('depends on the source bytes and on the variant, not on how the spec was written', () => {
    const sha = 'a'.repeat(64);
    const key = variantCacheKey(sha, parseVariantSpec({ width: 400 }));
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(variantCacheKey(sha, parseVariantSpec({ width: 400, format: 'webp', quality: 80 }))).toBe(key);
    expect(variantCacheKey(sha, parseVariantSpec({ width: 401 }))).not.toBe(key);
    expect(variantCacheKey('b'.repeat(64), parseVariantSpec({ width: 400 }))).not.toBe(key);
  });
});
