import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSocleError } from '../errors/index.js';
import { type Config, describeSettings, loadConfig, resolveModuleSettings } from './config.js';
import { defineSettings, setting } from './settings.js';

function configError(run: () => unknown) {
  try {
    run();
  } catch (error) {
    if (isSocleError(error)) return error;
    throw error;
  }
  throw new Error('expected a config.invalid error');
}

describe('loadConfig', () => {
  it('defaults to embedded mode on port 8080', () => {
    const config = loadConfig({ env: {}, configFile: false });
    expect(config.port).toBe(8080);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toBe('.socle');
    expect(config.shutdownTimeoutMs).toBe(10_000);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('parses environment values into their types', () => {
    const config = loadConfig({
      env: {
        PORT: '3000',
        DATABASE_URL: 'postgres://app@db:5432/app',
        CORS_ORIGINS: 'https://a.example, https://b.example',
        TRUST_PROXY: 'yes',
        SHUTDOWN_TIMEOUT_MS: '2500',
      },
      configFile: false,
    });
    expect(config).toMatchObject({
      port: 3000,
      databaseUrl: 'postgres://app@db:5432/app',
      corsOrigins: ['https://a.example', 'https://b.example'],
      trustProxy: true,
      shutdownTimeoutMs: 2500,
    });
  });

  it('reads SHARDS with each shard’s replicas after |, and names a bad replica without echoing it', () => {
    const config = loadConfig({
      env: {
        DATABASE_URL: 'postgres://app@db:5432/app',
        SHARDS:
          'eu1=postgres://app@db-eu1/app|postgres://app@db-eu1-r1/app|postgres://app@db-eu1-r2/app,eu2=postgres://app@db-eu2/app',
      },
      configFile: false,
    });
    expect(config.shards).toEqual([
      {
        name: 'eu1',
        url: 'postgres://app@db-eu1/app',
        replicaUrls: ['postgres://app@db-eu1-r1/app', 'postgres://app@db-eu1-r2/app'],
      },
      { name: 'eu2', url: 'postgres://app@db-eu2/app' },
    ]);
    const error = configError(() =>
      loadConfig({
        env: { SHARDS: 'eu1=postgres://app:secret@db-eu1/app|https://secret-replica/app' },
        configFile: false,
      }),
    );
    expect(error.message).toContain('item 1 (eu1): replica 1 after | is not a postgres:// URL');
    expect(error.message).not.toContain('secret');
  });

  it('takes TRUST_PROXY as a flag, a number of proxy hops or proxy addresses', () => {
    const trustProxy = (value: string) =>
      loadConfig({ env: { TRUST_PROXY: value }, configFile: false }).trustProxy;
    expect(trustProxy('off')).toBe(false);
    expect(trustProxy('1')).toBe(1);
    expect(trustProxy('10.0.0.0/8, 192.0.2.7, ::1')).toEqual(['10.0.0.0/8', '192.0.2.7', '::1']);
    const error = configError(() => loadConfig({ env: { TRUST_PROXY: 'lb.internal' }, configFile: false }));
    expect(error.errors.map((item) => item.field)).toEqual(['TRUST_PROXY']);
  });

  it('reports every invalid variable in one error, without echoing the database password', () => {
    const error = configError(() =>
      loadConfig({
        env: {
          PORT: '70000x',
          LOG_LEVEL: 'loud',
          DATABASE_URL: 'mysql://root:hunter2@db/app',
          TRUST_PROXY: 'maybe',
        },
        configFile: false,
      }),
    );
    expect(error.code).toBe('config.invalid');
    expect(error.errors.map((item) => item.field)).toEqual([
      'PORT',
      'DATABASE_URL',
      'LOG_LEVEL',
      'TRUST_PROXY',
    ]);
    expect(error.message).toContain('4 problems');
    expect(error.message).toContain('PORT must be an integer from 0 to 65535, got "70000x"');
    expect(error.message).not.toContain('hunter2');
  });

  it('reads socle.config.json, lets the environment win, and rejects unknown keys', () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'socle-config-'));
    writeFileSync(
      path.join(directory, 'socle.config.json'),
      JSON.stringify({ port: 4000, logLevel: 'debug' }),
    );
    const config = loadConfig({ env: { LOG_LEVEL: 'warn' }, cwd: directory });
    expect(config.port).toBe(4000);
    expect(config.logLevel).toBe('warn');
    expect(config.baseDir).toBe(directory);

    writeFileSync(path.join(directory, 'socle.config.json'), JSON.stringify({ prot: 4000, port: 'x' }));
    const error = configError(() => loadConfig({ env: {}, cwd: directory }));
    expect(error.errors).toEqual([
      { field: 'socle.config.json:prot', message: 'is not a known setting' },
      { field: 'socle.config.json:port', message: 'must be an integer from 0 to 65535, got "x"' },
    ]);
  });

  it('names a config file that is not JSON', () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'socle-config-'));
    writeFileSync(path.join(directory, 'custom.json'), '{ port: 1 ');
    const error = configError(() => loadConfig({ env: {}, cwd: directory, configFile: 'custom.json' }));
    expect(error.errors[0]?.field).toBe(path.join(directory, 'custom.json'));
    expect(error.errors[0]?.message).toMatch(/^is not valid JSON/);
  });

  it('reads PROCESSES as a count or auto, lets a flag win over env and file, and names the flag when bad', () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'socle-config-'));
    writeFileSync(path.join(directory, 'socle.config.json'), JSON.stringify({ processes: 3 }));
    expect(loadConfig({ env: {}, configFile: false }).processes).toBe(1);
    expect(loadConfig({ env: {}, cwd: directory }).processes).toBe(3);
    expect(loadConfig({ env: { PROCESSES: '2' }, cwd: directory }).processes).toBe(2);
    expect(loadConfig({ env: { PROCESSES: 'auto' }, configFile: false }).processes).toBe(
      availableParallelism(),
    );
    expect(loadConfig({ env: { PROCESSES: '2' }, cwd: directory, flags: { processes: '5' } }).processes).toBe(
      5,
    );

    const error = configError(() =>
      loadConfig({ env: { PROCESSES: '0' }, configFile: false, flags: { processes: 'many' } }),
    );
    expect(error.errors).toEqual([
      { field: '--processes', message: 'must be auto or an integer from 1 to 1024, got "many"' },
    ]);
    const fromEnv = configError(() => loadConfig({ env: { PROCESSES: '0' }, configFile: false }));
    expect(fromEnv.errors).toEqual([
      { field: 'PROCESSES', message: 'must be auto or an integer from 1 to 1024, got "0"' },
    ]);
  });
});

describe('module settings', () => {
  const quizSettings = defineSettings({
    roomSize: setting.integer({
      env: 'QUIZ_ROOM_SIZE',
      description: 'Players per room',
      default: 8,
      min: 2,
      max: 64,
    }),
    webhookUrl: setting.url({
      env: 'QUIZ_WEBHOOK_URL',
      description: 'Where results go',
      protocols: ['https:'],
    }),
    mode: setting.oneOf({
      env: 'QUIZ_MODE',
      description: 'Scoring',
      values: ['fast', 'fair'],
      default: 'fair',
    }),
  });
  const quiz = { name: 'quiz', settings: quizSettings };

  it('parses a module’s settings with the kernel’s, from the environment and the file (camelCase key)', () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'socle-config-'));
    writeFileSync(
      path.join(directory, 'socle.config.json'),
      JSON.stringify({ quizRoomSize: 12, quizMode: 'fast' }),
    );
    const config = loadConfig({ env: { QUIZ_MODE: 'fair' }, cwd: directory, modules: [quiz] });
    expect(config.moduleSettings.quiz).toEqual({ roomSize: 12, webhookUrl: undefined, mode: 'fair' });
    expect(Object.isFrozen(config.moduleSettings.quiz)).toBe(true);
  });

  it('reports every bad value of the kernel and of every module in one error, never echoing a URL', () => {
    const error = configError(() =>
      loadConfig({
        env: { PORT: 'x', QUIZ_ROOM_SIZE: '1', QUIZ_WEBHOOK_URL: 'http://user:hunter2@hooks.example' },
        configFile: false,
        modules: [quiz],
      }),
    );
    expect(error.errors.map((problem) => problem.field)).toEqual([
      'PORT',
      'QUIZ_ROOM_SIZE',
      'QUIZ_WEBHOOK_URL',
    ]);
    expect(error.message).toContain('QUIZ_WEBHOOK_URL must be an https:// URL');
    expect(error.message).not.toContain('hunter2');
  });

  it('reads later the settings of a module loadConfig was not given, from the same sources, under given values', () => {
    const config = loadConfig({
      env: { QUIZ_ROOM_SIZE: '4' },
      configFile: false,
      overrides: { moduleSettings: { quiz: { mode: 'fast' } } },
    });
    expect(resolveModuleSettings(config, [quiz]).quiz).toEqual({
      roomSize: 4,
      webhookUrl: undefined,
      mode: 'fast',
    });
    const bad = loadConfig({ env: { QUIZ_ROOM_SIZE: 'many' }, configFile: false });
    const error = configError(() => resolveModuleSettings(bad, [quiz]));
    expect(error.code).toBe('config.invalid');
    expect(error.errors.map((problem) => problem.field)).toEqual(['QUIZ_ROOM_SIZE']);
  });

  it('refuses an override that is not a kernel setting instead of ignoring it', () => {
    const error = configError(() =>
      loadConfig({ env: {}, configFile: false, overrides: { port: 0, appId: 'x' } as Partial<Config> }),
    );
    expect(error.errors).toEqual([
      {
        field: 'overrides.appId',
        message: 'is not a kernel setting (a module’s settings go under moduleSettings.<module>)',
      },
    ]);
  });

  it('refuses a given value that no loaded module reads instead of ignoring it', () => {
    const config = loadConfig({
      env: {},
      configFile: false,
      overrides: {
        moduleSettings: {
          quiz: { mode: 'fast', operatorToken: 'x' },
          mail: { from: 'a@b.test' },
          console: {},
        },
      },
    });
    const error = configError(() => resolveModuleSettings(config, [quiz, { name: 'jobs' }]));
    expect(error.code).toBe('config.invalid');
    expect(error.errors).toEqual([
      {
        field: 'moduleSettings.quiz.operatorToken',
        message: 'is not a setting of module quiz (its settings: roomSize, webhookUrl, mode)',
      },
      { field: 'moduleSettings.mail', message: 'is not a loaded module (loaded: quiz, jobs)' },
    ]);
    const misplaced = loadConfig({
      env: {},
      configFile: false,
      overrides: { moduleSettings: { jobs: { operatorToken: 'x' } } },
    });
    expect(configError(() => resolveModuleSettings(misplaced, [quiz, { name: 'jobs' }])).errors).toEqual([
      {
        field: 'moduleSettings.jobs.operatorToken',
        message: 'is not a setting of module jobs (it declares none)',
      },
    ]);
  });

  it('refuses two owners of one variable and a name that is not UPPER_SNAKE_CASE', () => {
    const clash = {
      name: 'clash',
      settings: defineSettings({
        port: setting.integer({ env: 'PORT', description: 'x', default: 1, min: 0, max: 9 }),
      }),
    };
    expect(() => loadConfig({ env: {}, configFile: false, modules: [clash] })).toThrow(
      /PORT is declared twice/,
    );
    expect(() =>
      defineSettings({ x: setting.boolean({ env: 'quiz-x', description: 'x', default: true }) }),
    ).toThrow(/UPPER_SNAKE_CASE/);
  });

  it('lists module settings after the kernel’s in help, with their module and file key', () => {
    const rows = describeSettings([quiz]);
    expect(rows.find((row) => row.env === 'PORT')?.module).toBeUndefined();
    expect(rows.filter((row) => row.module === 'quiz')).toEqual([
      {
        env: 'QUIZ_ROOM_SIZE',
        fileKey: 'quizRoomSize',
        module: 'quiz',
        description: 'Players per room',
        defaultValue: '8',
      },
      {
        env: 'QUIZ_WEBHOOK_URL',
        fileKey: 'quizWebhookUrl',
        module: 'quiz',
        description: 'Where results go',
        defaultValue: '(unset)',
      },
      {
        env: 'QUIZ_MODE',
        fileKey: 'quizMode',
        module: 'quiz',
        description: 'Scoring',
        defaultValue: '"fair"',
      },
    ]);
  });
});
