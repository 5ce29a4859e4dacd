import type { Clock } from '../kernel/clock/index.js';
import { type Config, loadConfig } from '../kernel/config/index.js';
import { createSilentLogger, type Logger } from '../kernel/log/index.js';
import type { ModuleDefinition } from '../kernel/modules/index.js';
import { createSocle, type Socle } from '../kernel/socle.js';
import type { TestDatabase, TestDatabaseTarget } from './test-databases.js';
import { createTestFactory, type TestFactory } from './test-factory.js';

/**
 * The SECRET_KEY of test servers (Postgres mode requires one). Fixed, so several nodes of one test
 * and CLI processes a test spawns share it.
 */
export const TEST_SECRET_KEY = Buffer.alloc(32, 's').toString('base64');

export interface TestSocleOptions {
  // biome-ignore lint/suspicious/noExplicitAny: each module is typed with its own tables
  readonly modules?: readonly ModuleDefinition<any>[];
  readonly config?: Partial<Config>;
  /**
   * Values of modules' settings by module name (`{ mail: { from: 'Acme <a@acme.test>' } }`),
   * winning over their defaults and the environment.
   */
  readonly settings?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly log?: Logger;
  /** A clock the test controls (createManualClock), for expiry and grace windows. */
  readonly clock?: Clock;
  /** Reuse an existing test database instead of creating one (several nodes on one database). */
  readonly database?: TestDatabase;
}

/**
 * A Socle of a test, with the factory of its tenants and users (`newUser()`, `newTenant()`…), which
 * needs the identity and tenancy modules.
 */
export interface TestSocle extends Socle, TestFactory {
  readonly database: TestDatabase;
  /** Closes Socle and drops its database (unless it was passed in). */
  dispose(): Promise<void>;
}

/**
 * A Socle on a fresh database of the target dialect, listening on a free loopback port only when
 * `listen()` is called; `app.inject()` works without a socket.
 */
export async function createTestSocle(
  target: TestDatabaseTarget,
  options: TestSocleOptions = {},
): Promise<TestSocle> {
  const database = options.database ?? (await target.create());
  const ownsDatabase = options.database === undefined;
  const config = loadConfig({
    env: {},
    configFile: false,
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      shutdownTimeoutMs: 2000,
      databaseUrl: database.url,
      databasePoolMax: 5,
      secretKey: TEST_SECRET_KEY,
      ...(database.dataDir === undefined ? {} : { dataDir: database.dataDir }),
      ...options.config,
      ...(options.settings === undefined ? {} : { moduleSettings: options.settings }),
    },
  });
  let socle: Socle;
  try {
    socle = await createSocle({
      config,
      modules: options.modules ?? [],
      log: options.log ?? createSilentLogger(),
      ...(options.clock ? { clock: options.clock } : {}),
    });
  } catch (error) {
    if (ownsDatabase) await database.drop();
    throw error;
  }
  return Object.assign(socle, createTestFactory(socle), {
    database,
    async dispose() {
      await socle.close();
      if (ownsDatabase) await database.drop();
    },
  });
}
