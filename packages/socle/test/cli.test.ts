import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killCliProcesses, runCli, spawnCli, waitForListening } from './support/cli-process.js';
import { httpGet } from './support/http-request.js';
import {
  createEmbeddedDataDirectory,
  createTempDirectory,
  removeTempDirectories,
} from './support/temp-directories.js';

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
const NOTES_MODULE_DIRECTORY = fileURLToPath(new URL('./fixtures/notes-module/', import.meta.url));
const NOTES_MODULE = path.join(NOTES_MODULE_DIRECTORY, 'notes-module.ts');
const SETTINGS_MODULE = fileURLToPath(new URL('./fixtures/settings-module.ts', import.meta.url));
/** Each test spawns Node with tsx, and some open PGlite: seconds each on a busy 2-core machine. */
const TIMEOUT_MS = 120_000;
/** A line of a Node stack trace: users must never see one for a mistake of theirs. */
const STACK_FRAME = /^ {4}at /m;

afterEach(killCliProcesses);
afterAll(removeTempDirectories);

/** Runs the CLI in an empty directory (no socle.config.json around) with its own DATA_DIR. */
function runIsolated(args: readonly string[], env: Readonly<Record<string, string>> = {}) {
  const directory = createTempDirectory('socle-cli-');
  return runCli(args, { cwd: directory, env: { DATA_DIR: path.join(directory, 'state'), ...env } });
}

describe('socle help and version', { timeout: TIMEOUT_MS }, () => {
  it('prints the usage and each help topic on stdout, exit 0', async () => {
    const [main, mainShort, start, migrate, config, startFlag] = await Promise.all([
      runIsolated(['--help']),
      runIsolated(['-h']),
      runIsolated(['help', 'start']),
      runIsolated(['help', 'migrate']),
      runIsolated(['help', 'config']),
      runIsolated(['start', '--help']),
    ]);
    for (const result of [main, mainShort, start, migrate, config, startFlag]) {
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toBe('');
    }
    expect(main.stdout).toContain('Usage: socle <command> [options]');
    expect(main.stdout).toMatch(/Exit codes:[\s\S]*2 {2}usage or configuration error/);
    expect(mainShort.stdout).toBe(main.stdout);
    expect(start.stdout).toContain('Usage: socle start');
    expect(start.stdout).toContain('SIGTERM');
    expect(start.stdout).toContain('--processes <n|auto>');
    expect(startFlag.stdout).toBe(start.stdout);
    expect(migrate.stdout).toContain('Usage: socle migrate [apply|status]');
    for (const variable of [
      'PORT',
      'PROCESSES',
      'DATABASE_URL',
      'DATA_DIR',
      'SHUTDOWN_TIMEOUT_MS',
      'SOCLE_MODULES',
    ]) {
      expect(config.stdout).toMatch(new RegExp(`^ {2}${variable} `, 'm'));
    }
  });

  it('prints the package version with --version and -v', async () => {
    const [long, short] = await Promise.all([runIsolated(['--version']), runIsolated(['-v'])]);
    expect(long.code).toBe(0);
    expect(long.stdout).toBe(`${PACKAGE_VERSION}\n`);
    expect(short.stdout).toBe(`${PACKAGE_VERSION}\n`);
  });
});

describe('socle usage errors', { timeout: TIMEOUT_MS }, () => {
  it('exits 2 with the usage on stderr for an unknown command, flag or help topic', async () => {
    const [command, flag, topic] = await Promise.all([
      runIsolated(['frobnicate']),
      runIsolated(['start', '--frobnicate']),
      runIsolated(['help', 'frobnicate']),
    ]);
    for (const result of [command, flag, topic]) {
      expect(result.code, result.stderr).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('Usage: socle <command> [options]');
      expect(result.stderr).not.toMatch(STACK_FRAME);
    }
    expect(command.stderr).toContain('Unknown command "frobnicate"');
    expect(flag.stderr).toContain('--frobnicate');
    expect(topic.stderr).toContain('Unknown help topic "frobnicate"');
  });

  it('exits 2 naming every invalid variable in one message, without a stack trace or the URL', async () => {
    const result = await runIsolated(['start'], {
      PORT: 'abc',
      LOG_LEVEL: 'loud',
      DATABASE_URL: 'mysql://admin:hunter2@db.example/app',
    });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('Invalid configuration (3 problems)');
    expect(result.stderr).toMatch(/^ {2}PORT must be an integer from 0 to 65535, got "abc"$/m);
    expect(result.stderr).toMatch(/^ {2}LOG_LEVEL must be one of .*, got "loud"$/m);
    expect(result.stderr).toMatch(/^ {2}DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL$/m);
    expect(result.stderr).toContain('socle help config');
    expect(result.stderr).not.toContain('hunter2');
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(result.stdout).toBe('');
  });

  it('reports bad settings of the kernel, a built-in module and an app module in the same message', async () => {
    const env = { SOCLE_MODULES: SETTINGS_MODULE };
    const result = await runIsolated(['start'], {
      ...env,
      PORT: 'abc',
      MAIL_MAX_ATTEMPTS: '0',
      SETTINGS_FIXTURE_LIMIT: 'lots',
    });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('Invalid configuration (3 problems)');
    expect(result.stderr).toMatch(/^ {2}PORT must be an integer from 0 to 65535, got "abc"$/m);
    expect(result.stderr).toMatch(/^ {2}MAIL_MAX_ATTEMPTS must be an integer from 1 to 100, got "0"$/m);
    expect(result.stderr).toMatch(
      /^ {2}SETTINGS_FIXTURE_LIMIT must be an integer from 1 to 10, got "lots"$/m,
    );
    const help = await runIsolated(['help', 'config'], env);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(
      /^ {2}SETTINGS_FIXTURE_LIMIT +settingsFixtureLimit +5\n +\(settings_fixture\) How many/m,
    );
    expect(help.stdout).toMatch(/^ {2}MAIL_FROM +mailFrom /m);
    // Provider secrets are listed by name, never by value.
    const withSecret = await runIsolated(['help', 'config'], {
      ...env,
      OPENAI_API_KEY: 'sk-cli-test-hunter2',
    });
    expect(withSecret.stdout).toMatch(/^ {2}OPENAI_API_KEY +openaiApiKey +\(unset\)\n +\(outbound\)/m);
    expect(withSecret.stdout).toMatch(/^ {2}ZOOM_CLIENT_SECRET +zoomClientSecret /m);
    expect(withSecret.stdout + withSecret.stderr).not.toContain('hunter2');
  });

  it('exits 2 when Postgres is configured without SECRET_KEY, and never echoes a bad key', async () => {
    const missing = await runIsolated(['start'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' });
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toMatch(/^ {2}SECRET_KEY is required with DATABASE_URL/m);
    expect(missing.stderr).toContain('openssl rand -base64 32');
    expect(missing.stderr).not.toMatch(STACK_FRAME);

    const short = await runIsolated(['start'], { SECRET_KEY: 'c2hvcnQtc2VjcmV0LXZhbHVl' });
    expect(short.code, short.stderr).toBe(2);
    expect(short.stderr).toMatch(/^ {2}SECRET_KEY must be a base64 .* of 32 random bytes/m);
    expect(short.stderr).not.toContain('c2hvcnQtc2VjcmV0LXZhbHVl');
  });

  it('exits 2 naming socle.config.json and the key when the file has an unknown setting', async () => {
    const directory = createTempDirectory('socle-cli-');
    writeFileSync(
      path.join(directory, 'socle.config.json'),
      JSON.stringify({ port: 0, colour: 'blue', shutdownTimeoutMs: 'soon' }),
    );
    const result = await runCli(['start'], { cwd: directory, env: { DATA_DIR: directory } });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('Invalid configuration (2 problems)');
    expect(result.stderr).toMatch(/^ {2}socle\.config\.json:colour is not a known setting$/m);
    expect(result.stderr).toMatch(/^ {2}socle\.config\.json:shutdownTimeoutMs must be an integer/m);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });

  it('exits 2 naming the file when --config is not valid JSON or does not exist', async () => {
    const directory = createTempDirectory('socle-cli-');
    const broken = path.join(directory, 'broken.json');
    writeFileSync(broken, '{ "port": 8080, ');
    const missing = path.join(directory, 'missing.json');
    const [badJson, absent] = await Promise.all([
      runCli(['start', '--config', broken], { cwd: directory, env: { DATA_DIR: directory } }),
      runCli(['migrate', '--config', missing], { cwd: directory, env: { DATA_DIR: directory } }),
    ]);
    expect(badJson.code, badJson.stderr).toBe(2);
    expect(badJson.stderr).toContain(`${broken} is not valid JSON`);
    expect(badJson.stderr).not.toMatch(STACK_FRAME);
    expect(absent.code, absent.stderr).toBe(2);
    expect(absent.stderr).toContain(`${missing} cannot be read`);
    expect(absent.stderr).not.toMatch(STACK_FRAME);
  });
});

describe('socle migrate (embedded)', { timeout: TIMEOUT_MS }, () => {
  it('lists pending migrations (exit 1), applies them (exit 0), then lists them as applied (exit 0)', async () => {
    const directory = createTempDirectory('socle-migrate-');
    const options = { cwd: directory, env: { DATA_DIR: directory, SOCLE_MODULES: NOTES_MODULE } };

    const before = await runCli(['migrate', 'status'], options);
    expect(before.code, before.stderr).toBe(1);
    expect(before.stdout).toMatch(/^pending\s+notes_fixture\/0001_create_notes\.sql\s*$/m);
    expect(before.stdout).toMatch(/^pending\s+notes_fixture\/0002_add_note_created_at\.sql\s*$/m);

    // Built-in modules ship migrations too: everything pending before is applied now.
    const pending = before.stdout.match(/^pending\s/gm)?.length ?? 0;
    const apply = await runCli(['migrate'], options);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toContain(`Applied ${pending} migration(s).`);

    const after = await runCli(['migrate', 'status'], options);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toMatch(/^applied\s+notes_fixture\/0001_create_notes\.sql\s+\d{4}-\d\d-\d\dT/m);
    expect(after.stdout).toMatch(
      /^applied\s+notes_fixture\/0002_add_note_created_at\.sql\s+\d{4}-\d\d-\d\dT/m,
    );
    expect(after.stdout).not.toMatch(/^pending/m);

    const again = await runCli(['migrate', 'apply'], options);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('Nothing to apply');
  });

  it('refuses to start, exit 1, naming the module and file of an applied migration that was edited', async () => {
    const moduleDirectory = createTempDirectory('socle-module-');
    cpSync(NOTES_MODULE_DIRECTORY, moduleDirectory, { recursive: true });
    const dataDirectory = await createEmbeddedDataDirectory();
    const options = {
      cwd: dataDirectory,
      env: { DATA_DIR: dataDirectory, SOCLE_MODULES: path.join(moduleDirectory, 'notes-module.ts') },
    };
    const apply = await runCli(['migrate'], options);
    expect(apply.code, apply.stderr).toBe(0);

    const migration = path.join(moduleDirectory, 'migrations', '0001_create_notes.sql');
    writeFileSync(migration, readFileSync(migration, 'utf8').replace('body text not null', 'body text'));

    const start = await runCli(['start'], options);
    expect(start.code, start.stderr).toBe(1);
    expect(start.stderr).toContain('notes_fixture/0001_create_notes.sql was changed after it was applied');
    expect(start.stderr).toContain('[migration.edited]');
    expect(start.stderr).not.toMatch(STACK_FRAME);
    expect(start.stdout).not.toContain('listening on');

    const status = await runCli(['migrate', 'status'], options);
    expect(status.code, status.stderr).toBe(1);
    expect(status.stdout).toMatch(/^edited\s+notes_fixture\/0001_create_notes\.sql/m);
    expect(status.stdout).toMatch(/^applied\s+notes_fixture\/0002_add_note_created_at\.sql/m);
  });
});

describe('socle start (embedded)', { timeout: TIMEOUT_MS }, () => {
  it('refuses a second server on the same DATA_DIR, exit 1, naming the running process', async () => {
    const directory = await createEmbeddedDataDirectory();
    const options = { cwd: directory, env: { DATA_DIR: directory } };
    const first = spawnCli(['start'], options);
    const url = await waitForListening(first);

    const second = await runCli(['start'], options);
    expect(second.code, second.stderr).toBe(1);
    expect(second.stderr).toContain(`is in use by process ${first.pid}`);
    expect(second.stderr).toContain('[db.data_dir_in_use]');
    expect(second.stderr).not.toMatch(STACK_FRAME);

    // The first server was not disturbed.
    const live = await httpGet(`${url}/livez`);
    expect(live.status).toBe(200);
    first.signal('SIGTERM');
    expect((await first.waitForExit()).code).toBe(0);
  });
});
