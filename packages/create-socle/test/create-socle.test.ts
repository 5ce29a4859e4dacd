import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killCliProcesses, spawnLogged } from '../../socle/test/support/cli-process.js';
import { httpGet } from '../../socle/test/support/http-request.js';
import { packagingTests, run, userEnvironment } from '../../socle/test/support/packaging.js';
import { createTempDirectory, removeTempDirectories } from '../../socle/test/support/temp-directories.js';

const PACKAGES = fileURLToPath(new URL('../../', import.meta.url));
const CREATE_SOCLE = path.join(PACKAGES, 'create-socle', 'bin', 'create-socle.js');

afterEach(killCliProcesses);
afterAll(removeTempDirectories);

describe('create-socle', () => {
  it('refuses a directory that is not empty and a name npm would refuse, exit 2 naming why', () => {
    const parent = createTempDirectory('create-socle-');
    const create = (name: string) =>
      spawnSync(process.execPath, [CREATE_SOCLE, name], { cwd: parent, encoding: 'utf8' });
    const first = create('taken');
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain('Created taken');
    const again = create('taken');
    expect(again.status).toBe(2);
    expect(again.stderr).toContain('exists and is not empty');
    const badName = create('My Product');
    expect(badName.status).toBe(2);
    expect(badName.stderr).toContain('"My Product" cannot be an npm package name');
    expect(existsSync(path.join(parent, 'My Product'))).toBe(false);
  });

  describe.skipIf(!packagingTests.run)(`from packed tarballs${packagingTests.skipped}`, () => {
    it('creates a product that installs the socle tarball, builds, passes its tests and starts', {
      timeout: 600_000,
    }, async () => {
      const work = createTempDirectory('create-socle-packed-');
      // What npm would publish: `npm pack` honours `files`, so the product only sees that.
      await run('npm', ['pack', '--pack-destination', work], path.join(PACKAGES, 'socle'));
      await run('npm', ['pack', '--pack-destination', work], path.join(PACKAGES, 'create-socle'));
      const socleVersion = (
        JSON.parse(readFileSync(path.join(PACKAGES, 'socle', 'package.json'), 'utf8')) as { version: string }
      ).version;
      const socleTarball = path.join(work, `socle-${socleVersion}.tgz`);
      const createTarball = path.join(work, `create-socle-${socleVersion}.tgz`);

      // `npm create socle` runs the create-socle package's bin, as this does from the tarball.
      await run(
        'npm',
        ['exec', '--yes', `--package=${createTarball}`, '--', 'create-socle', 'my-product'],
        work,
      );
      const product = path.join(work, 'my-product');
      expect(JSON.parse(readFileSync(path.join(product, 'package.json'), 'utf8'))).toMatchObject({
        name: 'my-product',
        dependencies: { socle: `^${socleVersion}` },
      });
      expect(existsSync(path.join(product, '.gitignore'))).toBe(true);

      // Dependencies come from the npm cache (the network only for what it lacks).
      await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', socleTarball], product);
      // tsc type-checks the module against the published types, and emits what `npm start` loads.
      await run('npm', ['run', 'build'], product);
      const tested = await run('npm', ['test'], product, userEnvironment({ SOCLE_TEST_POSTGRES: 'off' }));
      expect(stripVTControlCharacters(tested.stdout)).toMatch(/Tests +2 passed/);

      const server = spawnLogged('npm', ['start'], {
        cwd: product,
        env: { DATA_DIR: path.join(product, '.socle') },
        detached: true,
      });
      const banner = await server.waitForLog((line) => typeof line.url === 'string', 120_000);
      const notes = await httpGet(`${banner.url as string}/notes`);
      expect(notes.status).toBe(401); // the product's module is loaded, and asks for a token
      expect((await httpGet(`${banner.url as string}/openapi.json`)).body).toContain('"/notes"');
      server.signal('SIGTERM');
      expect((await server.waitForExit(30_000)).code).toBe(0);
    });
  });
});
