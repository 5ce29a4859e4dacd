import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type CliProcess, killCliProcesses, runCli, spawnLogged } from './support/cli-process.js';
import { httpGet } from './support/http-request.js';
import { createEmbeddedDataDirectory, removeTempDirectories } from './support/temp-directories.js';

/** The repository root, where the README says to run `npm start`. */
const REPOSITORY = fileURLToPath(new URL('../../../', import.meta.url));
/** npm builds first (tsc -b, up to date here: seconds), then starts Socle. */
const TIMEOUT_MS = 120_000;

const servers = new Set<number>();

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterEach(async () => {
  // A server this test could not stop through npm must not outlive it.
  for (const pid of servers) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  servers.clear();
  await killCliProcesses();
});
afterAll(removeTempDirectories);

/** `npm start` in the repository, in a process group of its own as a shell or a container runs it. */
async function npmStart(): Promise<{ npm: CliProcess; serverPid: number; url: string; dataDir: string }> {
  const dataDir = await createEmbeddedDataDirectory();
  const npm = spawnLogged('npm', ['start'], {
    cwd: REPOSITORY,
    env: { DATA_DIR: dataDir },
    detached: true,
  });
  const banner = await npm.waitForLog((line) => typeof line.url === 'string', 90_000);
  const serverPid = banner.pid as number;
  servers.add(serverPid);
  return { npm, serverPid, url: banner.url as string, dataDir };
}

/** Resolves once `pid` is gone; rejects after `timeoutMs`. */
async function waitUntilGone(pid: number, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (isRunning(pid)) {
    if (performance.now() > deadline) throw new Error(`Process ${pid} still runs ${timeoutMs} ms later`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('npm start', { timeout: TIMEOUT_MS }, () => {
  it('stops Socle when a process manager sends SIGTERM to npm, and releases the data directory', async () => {
    const { npm, serverPid, url, dataDir } = await npmStart();
    expect((await httpGet(`${url}/livez`)).status).toBe(200);
    expect(serverPid).not.toBe(npm.pid);

    npm.signal('SIGTERM');
    await waitUntilGone(serverPid);
    await npm.waitForExit();
    expect(npm.logs().map((line) => line.msg)).toContain('Stopped');

    // The data directory is free again: another process opens it.
    const status = await runCli(['migrate', 'status'], { cwd: dataDir, env: { DATA_DIR: dataDir } });
    expect(status.stderr).not.toContain('data_dir_in_use');
    expect(status.code, status.stderr).toBe(0);
  });

  it('drains once on Ctrl-C (the terminal signals npm and Socle, npm forwards it again)', async () => {
    const { npm, serverPid } = await npmStart();

    process.kill(-npm.pid, 'SIGINT');
    await waitUntilGone(serverPid);
    const exit = await npm.waitForExit();
    const messages = npm.logs().map((line) => line.msg);
    expect(messages).toContain('Stopped');
    expect(messages).not.toContain('Second signal: exiting now');
    expect(exit.code).toBe(0);
  });
});
