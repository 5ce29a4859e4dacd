import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertBlobKey, type BlobInfo, type BlobStore, blobErrors } from './blob-store.js';

/** Temporary files live here, inside the root (same filesystem, so `rename` is atomic). */
export const TEMPORARY_DIRECTORY = '.tmp';

/** Counts bytes through it (`bytes`) and fails with `blobs.too_large` past `maxBytes`. */
export function byteLimit(maxBytes: number): Transform & { readonly bytes: number } {
  let seen = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > maxBytes) callback(blobErrors.tooLarge(maxBytes));
      else callback(null, chunk);
    },
  });
  return Object.defineProperty(limiter, 'bytes', { get: () => seen }) as Transform & {
    readonly bytes: number;
  };
}

/**
 * Blobs as files under `root` (the embedded default, `<DATA_DIR>/blobs`). A write goes to
 * `<root>/.tmp/<random>`, is flushed to disk, then renamed onto its key: readers see the old blob or
 * the whole new one, never part of one, and a crash leaves only a temporary file, which
 * `removeStaleTemporaryFiles` deletes.
 */
export function createLocalBlobStore(root: string): BlobStore {
  const temporaryDirectory = path.join(root, TEMPORARY_DIRECTORY);
  const pathOf = (key: string) => {
    assertBlobKey(key);
    return path.join(root, key);
  };
  let ready: Promise<unknown> | undefined;
  const ensureRoot = () => {
    ready ??= mkdir(temporaryDirectory, { recursive: true });
    return ready;
  };

  const infoOf = async (key: string, file: string): Promise<BlobInfo | undefined> => {
    try {
      const stats = await stat(file);
      if (!stats.isFile()) return undefined;
      return { key, size: stats.size, lastModified: stats.mtime, storageClass: 'standard' };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  };

  async function* walk(directory: string, relative: string): AsyncGenerator<BlobInfo> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (relative === '' && entry.name === TEMPORARY_DIRECTORY) continue;
      const key = relative === '' ? entry.name : `${relative}/${entry.name}`;
      const full = path.join(directory, entry.name);
      if (entry.isDirectory()) yield* walk(full, key);
      else if (entry.isFile()) {
        const info = await infoOf(key, full);
        if (info !== undefined) yield info;
      }
    }
  }

  return {
    kind: 'local',

    async put(key, body, options = {}) {
      const destination = pathOf(key);
      await ensureRoot();
      const temporary = path.join(temporaryDirectory, randomUUID());
      try {
        await pipeline(
          body,
          byteLimit(options.maxBytes ?? Number.POSITIVE_INFINITY),
          createWriteStream(temporary, { flags: 'wx' }),
          options.signal === undefined ? {} : { signal: options.signal },
        );
        // Durable before visible: the rename must not outrun the data after a power loss.
        const handle = await open(temporary, 'r');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
        await mkdir(path.dirname(destination), { recursive: true });
        await rename(temporary, destination);
        const { size } = await stat(destination);
        return { size };
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      }
    },

    async get(key, options = {}) {
      const file = pathOf(key);
      const info = await infoOf(key, file);
      if (info === undefined) return undefined;
      const range = options.range;
      // The read opens the file now: a delete that comes after still lets this read finish.
      const body =
        range === undefined
          ? createReadStream(file)
          : createReadStream(file, { start: range.start, end: range.end });
      return {
        body,
        size: info.size,
        contentLength: range === undefined ? info.size : range.end - range.start + 1,
        filePath: file,
      };
    },

    head: (key) => infoOf(key, pathOf(key)),

    async delete(key) {
      try {
        await unlink(pathOf(key));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    },

    async *list(prefix) {
      // Walk only the directory the prefix names, then filter on the rest of it.
      const slash = prefix.lastIndexOf('/');
      const directory = slash === -1 ? '' : prefix.slice(0, slash);
      if (directory !== '') assertBlobKey(directory);
      for await (const info of walk(path.join(root, directory), directory)) {
        if (info.key.startsWith(prefix)) yield info;
      }
    },

    async setStorageClass(key) {
      // One class on a local disk; still refuse a missing blob like S3 would.
      if ((await infoOf(key, pathOf(key))) === undefined)
        throw blobErrors.invalidKey(`${key} (no such blob)`);
    },

    presignGet: async () => undefined,
    presignPut: async () => undefined,

    async removeStaleTemporaryFiles(olderThan) {
      let removed = 0;
      let names: string[];
      try {
        names = await readdir(temporaryDirectory);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
        throw error;
      }
      for (const name of names) {
        const file = path.join(temporaryDirectory, name);
        const stats = await stat(file).catch(() => undefined);
        if (stats !== undefined && stats.mtime < olderThan) {
          await rm(file, { force: true });
          removed += 1;
        }
      }
      return removed;
    },

    async close() {},
  };
}
