import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { packagingTests, run, userEnvironment } from './support/packaging.js';
import { createTempDirectory, removeTempDirectories } from './support/temp-directories.js';

/** The repository this test runs in: its committed state is what a newcomer clones. */
const REPOSITORY = fileURLToPath(new URL('../../../', import.meta.url));

afterAll(removeTempDirectories);

describe.skipIf(!packagingTests.run)(`a fresh clone${packagingTests.skipped}`, () => {
  it('runs npx socle after the README commands, and stays clean (git status) after npm install and build', {
    timeout: 600_000,
  }, async () => {
    const clone = path.join(createTempDirectory('socle-clone-'), 'socle');
    await run('git', ['clone', '--quiet', '--no-hardlinks', REPOSITORY, clone], REPOSITORY);
    // Dependencies come from the npm cache (the network only for what it lacks).
    const installed = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], clone);
    // Quiet: no EBADENGINE warnings on the system Node, whatever its version (see .npmrc).
    expect(installed.stderr).toBe('');
    // Before any build: the command exists, and says what to do.
    const unbuilt = spawnSync('npx', ['--no', '--', 'socle', '--version'], {
      cwd: clone,
      env: userEnvironment(),
      encoding: 'utf8',
    });
    expect(unbuilt.stderr).toContain('npm run build');
    expect(unbuilt.status).toBe(1);

    await run('npm', ['run', 'build'], clone);
    const version = await run('npx', ['--no', '--', 'socle', '--version'], clone);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
    const status = await run('git', ['status', '--porcelain'], clone);
    expect(status.stdout).toBe('');
  });
});
