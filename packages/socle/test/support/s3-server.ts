import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** Credentials the test S3 server accepts (it never checks signatures made with them). */
export const TEST_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * What s3rver lacks of multipart uploads and @tus/s3-store needs: ListParts (GET ?uploadId) and
 * AbortMultipartUpload (DELETE ?uploadId), answered from s3rver's own part files
 * (`<bucket>/…/uploads/<uploadId>/<partNumber>` and its `.md5`) in S3's XML.
 */
const MULTIPART_SHIM = `async (ctx, next) => {
    const match = /^\\/([^/]+)\\/(.+)$/.exec(ctx.path);
    const uploadId = ctx.query.uploadId;
    if (match === null || uploadId === undefined || !['GET', 'DELETE'].includes(ctx.method)) return next();
    const { readdir, readFile, stat, rm } = await import('node:fs/promises');
    const path = await import('node:path');
    const directory = path.join(server.store.getResourcePath(match[1], undefined, 'uploads'), String(uploadId));
    const names = await readdir(directory).catch(() => undefined);
    if (names === undefined) {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
      return;
    }
    if (ctx.method === 'DELETE') {
      await rm(directory, { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    const numbers = names.filter((name) => /^\\d+$/.test(name)).map(Number).sort((a, b) => a - b);
    const parts = [];
    for (const number of numbers) {
      const file = path.join(directory, String(number));
      const [info, md5] = await Promise.all([stat(file), readFile(file + '.md5', 'utf8').catch(() => '')]);
      parts.push('<Part><PartNumber>' + number + '</PartNumber><LastModified>' + info.mtime.toISOString() +
        '</LastModified><ETag>&quot;' + md5 + '&quot;</ETag><Size>' + info.size + '</Size></Part>');
    }
    ctx.type = 'application/xml';
    ctx.body = '<?xml version="1.0" encoding="UTF-8"?><ListPartsResult><Bucket>' + match[1] + '</Bucket><Key>' +
      match[2] + '</Key><UploadId>' + uploadId + '</UploadId><PartNumberMarker>0</PartNumberMarker>' +
      '<NextPartNumberMarker>' + (numbers.at(-1) ?? 0) + '</NextPartNumberMarker><MaxParts>10000</MaxParts>' +
      '<IsTruncated>false</IsTruncated>' + parts.join('') + '</ListPartsResult>';
  }`;

const SERVER_SCRIPT = `
  import S3rver from 's3rver';
  const [directory, bucket] = process.argv.slice(1);
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true,
    configureBuckets: [{ name: bucket, configs: [] }] });
  server.middleware.unshift(${MULTIPART_SHIM});
  const { port } = await server.run();
  console.log(JSON.stringify({ port }));
`;

/**
 * A local S3-compatible server (npm `s3rver`, in its own process so it shares no memory with the
 * server under test) speaking the real wire format, for the official `@aws-sdk/client-s3` to talk
 * to. It stores objects on disk and supports multipart uploads, ranges, presigned URLs and storage
 * classes as metadata, but never verifies SigV4 signatures: tests against it cannot prove those.
 * ListParts and AbortMultipartUpload, which s3rver lacks, are added from its own part files.
 */
export async function startS3Server(bucket: string): Promise<{
  readonly endpoint: string;
  /** A BLOB_URL for this server and bucket, under its own key prefix. */
  blobUrl(prefix: string): string;
  close(): Promise<void>;
}> {
  const directory = mkdtempSync(path.join(tmpdir(), 'socle-s3-'));
  const child: ChildProcess = spawn(
    process.execPath,
    ['--input-type=module', '-e', SERVER_SCRIPT, directory, bucket],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(() => {
      throw new Error('The S3 test server (s3rver) exited before listening');
    }),
  ])) as [string];
  const { port } = JSON.parse(line) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    blobUrl: (prefix) =>
      `s3://${bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}&region=us-east-1&forcePathStyle=true`,
    async close() {
      if (child.exitCode === null) {
        child.kill();
        await once(child, 'exit');
      }
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
