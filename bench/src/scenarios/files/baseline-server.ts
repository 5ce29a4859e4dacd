/**
 * Child process: the baseline of the files scenarios — bare Fastify 5 serving one file from disk
 * with `fs.createReadStream` (download), or streaming a request body to a new file with
 * `fs.createWriteStream` and deleting it (upload). No auth, no database, no hashing, no type
 * sniffing, no fsync. Started by the harness with `BENCH_FILES_MODE`.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Fastify from 'fastify';
import { runServerChild } from '../../server-child.js';
import { DOWNLOAD_BYTES, downloadContent, PATH_HEADER } from './transfer.js';

const mode = process.env.BENCH_FILES_MODE === 'upload' ? 'upload' : 'download';

runServerChild(async () => {
  const directory = mkdtempSync(path.join(tmpdir(), 'socle-bench-baseline-'));
  const file = path.join(directory, 'download.txt');
  writeFileSync(file, downloadContent());
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 * 1024 });
  app.get('/file', (_request, reply) =>
    reply
      .header('content-type', 'text/plain')
      .header('content-length', DOWNLOAD_BYTES)
      .send(createReadStream(file)),
  );
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scope.post('/upload', async (request, reply) => {
      const target = path.join(directory, randomUUID());
      await pipeline(request.body as Readable, createWriteStream(target));
      await unlink(target);
      return reply.code(201).send({ ok: true });
    });
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    requestHeaders: { [PATH_HEADER]: mode === 'download' ? '/file' : '/upload' },
    async close() {
      await app.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
});
