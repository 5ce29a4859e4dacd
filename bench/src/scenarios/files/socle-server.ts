/**
 * Child process: Socle with the files module on the local blob backend (a temporary DATA_DIR).
 * `download` mode stores one 10 MB file and hands the harness its signed URL; `upload` mode hands
 * it the upload path, and deletes what was uploaded every second (off the measured requests' path,
 * but on the same cores) so the disk does not fill. Started by the harness with `BENCH_FILES_MODE`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  createFilesModule,
  createIdentityModule,
  createSocle,
  createTenancyModule,
  defineBucket,
  type FilesServices,
} from 'socle';
import { runServerChild } from '../../server-child.js';
import { benchMailModule, benchSocleConfig, ensureBenchOrg, signInBenchUser } from '../shared/socle-setup.js';
import { BENCH_BUCKET, DOWNLOAD_BYTES, downloadContent, PATH_HEADER, UPLOAD_BYTES } from './transfer.js';

const mode = process.env.BENCH_FILES_MODE === 'upload' ? 'upload' : 'download';

runServerChild(async (settings) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'socle-bench-files-'));
  const files = createFilesModule({
    buckets: [defineBucket({ name: BENCH_BUCKET, maxBytes: Math.max(DOWNLOAD_BYTES, UPLOAD_BYTES) })],
  });
  const socle = await createSocle({
    config: benchSocleConfig(settings, { dataDir, jobsQueues: [] }),
    modules: [createIdentityModule({ rateLimits: false }), benchMailModule(), createTenancyModule(), files],
    ...(settings.dialect === 'pglite' ? { inMemory: true } : {}),
  });
  let sweeper: NodeJS.Timeout | undefined;
  const close = async () => {
    clearInterval(sweeper);
    await socle.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const accessToken = await signInBenchUser(socle.app);
    const orgId = await ensureBenchOrg(socle.app, accessToken, 'bench-files');
    const service = socle.servicesOf<FilesServices>('files');
    const actor = { tenantId: orgId };
    const headers = { authorization: `Bearer ${accessToken}`, 'x-org-id': orgId };
    let benchPath: string;
    if (mode === 'download') {
      const { object } = await service.upload({
        ...actor,
        bucket: BENCH_BUCKET,
        body: Readable.from([downloadContent()]),
        declaredType: 'text/plain',
      });
      benchPath = (await service.downloadUrl(object, { expiresInSeconds: 24 * 3600 })).url;
    } else {
      benchPath = `/files/${BENCH_BUCKET}`;
      let sweeping = false;
      sweeper = setInterval(() => {
        if (sweeping) return;
        sweeping = true;
        void (async () => {
          for (const object of await service.list(actor, BENCH_BUCKET, 200))
            await service.delete(actor, BENCH_BUCKET, object.id);
        })()
          .catch((error: unknown) => console.error('sweep failed', error))
          .finally(() => {
            sweeping = false;
          });
      }, 1000);
    }
    const url = await socle.listen();
    return {
      url,
      requestHeaders:
        mode === 'download' ? { [PATH_HEADER]: benchPath } : { ...headers, [PATH_HEADER]: benchPath },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
});
