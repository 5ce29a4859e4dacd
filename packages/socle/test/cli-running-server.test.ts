import { statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CONTROL_SOCKET_FILE } from '../src/cli/control-socket.js';
import { TEST_PASSWORD } from './support/api-client.js';
import { killCliProcesses, runCli, spawnCli, waitForListening } from './support/cli-process.js';
import { createEmbeddedDataDirectory, removeTempDirectories } from './support/temp-directories.js';

/** Each command spawns Node with tsx; the server opens PGlite: seconds each on a busy machine. */
const TIMEOUT_MS = 120_000;

afterEach(killCliProcesses);
afterAll(removeTempDirectories);

describe('socle one-shot commands beside a running embedded server', { timeout: TIMEOUT_MS }, () => {
  it('are run by the server that holds the data directory, instead of failing with data_dir_in_use', async () => {
    const dataDir = await createEmbeddedDataDirectory();
    const env = { DATA_DIR: dataDir };
    const server = spawnCli(['start'], { cwd: dataDir, env });
    const url = await waitForListening(server);
    // The banner is the one line saying where Socle listens (Fastify prints none of its own).
    expect(server.logs().filter((line) => /listening/i.test(line.msg))).toHaveLength(1);
    const signUp = await fetch(`${url}/auth/sign-up`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'ada@example.com', password: TEST_PASSWORD }),
    });
    expect(signUp.status).toBe(201);

    // One after the other: the point is what each answers, not how they share the server.
    const jobs = await runCli(['jobs', 'list', '--json'], { cwd: dataDir, env });
    const status = await runCli(['migrate', 'status'], { cwd: dataDir, env });
    const exported = await runCli(['privacy', 'export', '--user', 'ada@example.com'], { cwd: dataDir, env });
    const unknown = await runCli(['privacy', 'export', '--user', 'nobody@example.com'], {
      cwd: dataDir,
      env,
    });
    const apply = await runCli(['migrate'], { cwd: dataDir, env });

    for (const result of [jobs, status, exported]) {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
    }
    expect(JSON.parse(jobs.stdout)).toHaveProperty('jobs');
    expect(status.stdout).toMatch(/^applied +identity\/0001_accounts_and_sessions\.sql/m);
    expect(JSON.parse(exported.stdout)).toMatchObject({ subject: { email: 'ada@example.com' } });
    // Errors still come back as the command's own: message and code, exit 1.
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^socle: .*\[privacy\.[a-z_]+\]\n$/);
    // Applying migrations needs the database to itself: said plainly, not as a lock error.
    expect(apply.code).toBe(1);
    expect(apply.stderr).toContain('A Socle server is running');
    expect(apply.stderr).not.toContain('data_dir_in_use');

    // Only the user the server runs as may connect.
    expect(statSync(path.join(dataDir, CONTROL_SOCKET_FILE)).mode & 0o777).toBe(0o600);
    expect(server.logs().filter((line) => line.msg === 'CLI command from the control socket')).toHaveLength(
      5,
    );

    server.signal('SIGTERM');
    expect((await server.waitForExit()).code).toBe(0);
    // Stopped: the next command opens the database itself, and says nothing but its answer.
    const alone = await runCli(['jobs', 'list'], { cwd: dataDir, env });
    expect(alone.stderr).toBe('');
    expect(alone.stdout).toMatch(/^ID +JOB +QUEUE/); // the sign-up's mail delivery job
    expect(alone.code).toBe(0);
  });
});
