import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, expect, it } from 'vitest';
import { type FilesServices, withOwnerTransaction } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import {
  createTestSocle,
  TEST_PASSWORD,
  TEST_SECRET_KEY,
  type TestDatabase,
  type TestDatabaseTarget,
  type TestTenant,
} from '../src/testing/index.js';
import {
  createOrganizationFilesModules,
  DELETION_FINISHED,
  DELETION_STALLED,
} from './fixtures/organization-files.js';
import { killCliProcesses, spawnCli, waitForListening } from './support/cli-process.js';
import { describeEachDatabase } from './support/each-database.js';

const STALLING_NODE = fileURLToPath(
  new URL('./fixtures/organization-deletion-stall-module.ts', import.meta.url),
);
const NODE = fileURLToPath(new URL('./fixtures/organization-files-module.ts', import.meta.url));
const FINISH_JOB = 'tenancy.finishOrganizationDeletion';
/** Each step spawns Node under tsx and opens the database: tens of seconds on a busy 2-core machine. */
const STEP_TIMEOUT_MS = 120_000;

// A PNG signature and IHDR chunk followed by filler: file-type sniffs image/png.
const PNG_HEAD = Buffer.from('89504e470d0a1a0a0000000d4948445200000010000000100806000000', 'hex');
const png = (bytes: number) => Buffer.concat([PNG_HEAD, Buffer.alloc(bytes - PNG_HEAD.length, 7)]);

afterEach(killCliProcesses);

/**
 * files.test.ts stands for the crash with a hook that throws; here the process really dies: a
 * `socle start` node deletes an organization (its only member erases themselves), is `kill -9`ed
 * right after the deleting commit, and the job that commit enqueued removes the organization's
 * file records, usage and bytes on the next node. On PGlite the killed node's data directory is
 * reopened (its stale lock taken over); on Postgres the next node shares the database.
 */
describeEachDatabase('An organization deleted by a node killed right after the commit', (target) => {
  const blobDirectory = mkdtempSync(path.join(tmpdir(), 'socle-deletion-crash-blobs-'));
  const blobUrl = pathToFileURL(blobDirectory).href;
  let database: TestDatabase | undefined;
  afterAll(async () => {
    await killCliProcesses();
    await database?.drop();
    rmSync(blobDirectory, { recursive: true, force: true });
  });

  /** Files the local blob store holds under the organization's scope (`t.<id>/…`). */
  const blobFilesOf = (organization: TestTenant) => {
    const scope = path.join(blobDirectory, `t.${organization.id}`);
    if (!existsSync(scope)) return 0;
    return readdirSync(scope, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile())
      .length;
  };

  /** A Socle in this process on the nodes' database and blobs, working no job queue. */
  const openHere = (databaseOfTest: TestDatabase) =>
    createTestSocle(target, {
      database: databaseOfTest,
      modules: [...createBuiltInModules(), ...createOrganizationFilesModules()],
      config: { jobsQueues: [], blobUrl },
    });

  /** What the organization still has: its row, its file records, its usage, its stored bytes. */
  async function leftOf(databaseOfTest: TestDatabase, organization: TestTenant) {
    const socle = await openHere(databaseOfTest);
    try {
      const files = socle.servicesOf<FilesServices>('files');
      // Beneath row-level security: the organization is gone, so no tenant context can see its rows.
      const { rows } = await withOwnerTransaction(socle.db, (connection) =>
        connection.query<{ organizations: number; objects: number }>(
          `select (select count(*) from tenancy.organizations where id = $1)::int as organizations,
                  (select count(*) from files.objects where tenant_id = $1)::int as objects`,
          [organization.id],
        ),
      );
      const jobs = (await socle.jobs.list({ tenantId: null, limit: 1000 })).filter(
        (job) =>
          job.name === FINISH_JOB &&
          (job.payload as { organizationId?: string }).organizationId === organization.id,
      );
      return {
        organizationRows: rows[0]?.organizations,
        fileRecords: rows[0]?.objects,
        usedBytes: (await files.organizationUsage(organization.id)).usedBytes,
        blobFiles: blobFilesOf(organization),
        finishJobs: jobs.map((job) => job.state),
      };
    } finally {
      await socle.dispose();
    }
  }

  /** `socle start` on the test's database and blobs, with `modules` (SOCLE_MODULES) and `env`. */
  const startNode = (databaseOfTest: TestDatabase, modules: string, env: Record<string, string> = {}) =>
    spawnCli(['start'], {
      cwd: mkdtempSync(path.join(tmpdir(), 'socle-deletion-crash-node-')),
      env: {
        ...(databaseOfTest.url === undefined
          ? { DATA_DIR: databaseOfTest.dataDir as string }
          : { DATABASE_URL: databaseOfTest.url }),
        SECRET_KEY: TEST_SECRET_KEY,
        BLOB_URL: blobUrl,
        SOCLE_MODULES: modules,
        SHUTDOWN_TIMEOUT_MS: '10000',
        ...env,
      },
    });

  it('removes its file records, usage and bytes on the next node through the job committed with the deletion', {
    timeout: 5 * STEP_TIMEOUT_MS,
  }, async () => {
    database = await (target as TestDatabaseTarget).create();
    const setup = await openHere(database);
    let doomed: TestTenant;
    let other: TestTenant;
    try {
      doomed = await setup.newTenant();
      other = await setup.newTenant();
      const files = setup.servicesOf<FilesServices>('files');
      for (const organization of [doomed, other])
        await files.upload({
          bucket: 'minutes',
          tenantId: organization.id,
          userId: organization.owner.userId,
          body: Readable.from([png(3000)]),
        });
    } finally {
      await setup.dispose();
    }

    // The node that deletes works no low queue (the job's): API nodes with workers apart, as in
    // the fleet. Otherwise its own worker could take the job and stall in the same hook, and the
    // job's lease (its 15-minute timeout) would hold it from the next node.
    const deleting = startNode(database, STALLING_NODE, { JOBS_QUEUES: 'high,default' });
    const url = await waitForListening(deleting, STEP_TIMEOUT_MS);
    const erasure = fetch(`${url}/me/erase`, {
      method: 'POST',
      headers: { authorization: `Bearer ${doomed.owner.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ password: TEST_PASSWORD }),
    }).then(
      (response) => `answered ${response.status}`,
      () => 'connection lost',
    );
    await deleting.waitForLog(
      (line) => line.msg === DELETION_STALLED && line.organizationId === doomed.id,
      STEP_TIMEOUT_MS,
    );
    deleting.signal('SIGKILL');
    expect((await deleting.waitForExit(STEP_TIMEOUT_MS)).signal).toBe('SIGKILL');
    expect(await erasure).toBe('connection lost');

    // The organization is gone with the commit; its files are not: record, usage and bytes
    // are all still there, and the job the commit enqueued waits for a worker.
    expect(await leftOf(database, doomed)).toEqual({
      organizationRows: 0,
      fileRecords: 1,
      usedBytes: 3000,
      blobFiles: 1,
      finishJobs: ['created'],
    });

    const next = startNode(database, NODE);
    await waitForListening(next, STEP_TIMEOUT_MS);
    await next.waitForLog(
      (line) => line.msg === DELETION_FINISHED && line.organizationId === doomed.id,
      STEP_TIMEOUT_MS,
    );
    // Stopped cleanly, it lets the running job settle first.
    next.signal('SIGTERM');
    expect((await next.waitForExit(STEP_TIMEOUT_MS)).code).toBe(0);

    expect(await leftOf(database, doomed)).toEqual({
      organizationRows: 0,
      fileRecords: 0,
      usedBytes: 0,
      blobFiles: 0,
      finishJobs: ['completed'],
    });
    // Another organization's file is untouched.
    expect(await leftOf(database, other)).toMatchObject({
      organizationRows: 1,
      fileRecords: 1,
      usedBytes: 3000,
      blobFiles: 1,
    });
  });
});
