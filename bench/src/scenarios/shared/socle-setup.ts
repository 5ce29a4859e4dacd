import { createHash } from 'node:crypto';
/**
 * What the Socle server children of the authenticated scenarios share: the configuration they
 * start with and the bench user they sign in as, through Socle's own routes (`app.inject`, no
 * network).
 */
import {
  type Config,
  createLogSender,
  createMailModule,
  createSilentLogger,
  type HttpServer,
  loadConfig,
  type MailModule,
} from 'socle';
import type { ServerSettings } from '../../server-protocol.js';

/** The account the authenticated scenarios use. The password passes Socle's strength policy. */
export const BENCH_USER = Object.freeze({
  email: 'bench-user@example.com',
  password: 'quartz-lantern-hollow-91-meadow',
  name: 'Bench User',
});

const BENCH_SECRET_KEY = createHash('sha256').update('socle bench secret key').digest('base64');

/** Socle's configuration for a bench child: a free port, quiet logs, the run's database and pool. */
export function benchSocleConfig(settings: ServerSettings, overrides: Partial<Config> = {}): Config {
  return loadConfig({
    // Only load shedding's threshold is read from the bench's environment (0 turns it off, to
    // compare); everything else is fixed so every run measures the same server.
    env:
      process.env.DATABASE_POOL_QUEUE_MAX === undefined
        ? {}
        : { DATABASE_POOL_QUEUE_MAX: process.env.DATABASE_POOL_QUEUE_MAX },
    configFile: false,
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'warn',
      logFormat: 'json',
      shutdownTimeoutMs: 2000,
      databaseUrl: settings.databaseUrl,
      databasePoolMax: settings.poolMax,
      // Bench databases are thrown away after the run; later rounds restart Socle on the same
      // database, so every bench server uses this one fixed key.
      secretKey: BENCH_SECRET_KEY,
      // The load generator is one address opening thousands of sockets (realtime-fanout: 10,000):
      // the per-address cap (HTTP_MAX_CONNECTIONS_PER_IP, 1,000) would reset them past 1,000.
      httpMaxConnectionsPerIp: 0,
      ...overrides,
    },
  });
}

/**
 * The mail module, which identity and tenancy depend on (verification mails, invitations). Its
 * delivery jobs run as in production; the silent log sender keeps the "SMTP_URL is
 * not set" warning and the sign-up's verification mail out of the bench output.
 */
export function benchMailModule(): MailModule {
  return createMailModule({ sender: createLogSender(createSilentLogger()) });
}

/** Sends one JSON request to the app in-process; throws unless it answers `expected`. */
export async function injectJson(
  app: HttpServer,
  request: {
    method: 'GET' | 'POST';
    url: string;
    payload?: Readonly<Record<string, unknown>>;
    headers?: Readonly<Record<string, string>>;
  },
  expected: readonly number[],
): Promise<{ status: number; body: unknown }> {
  const response = await app.inject({
    method: request.method,
    url: request.url,
    ...(request.payload === undefined ? {} : { payload: request.payload }),
    ...(request.headers === undefined ? {} : { headers: request.headers }),
  });
  if (!expected.includes(response.statusCode)) {
    throw new Error(
      `${request.method} ${request.url} answered ${response.statusCode}: ${response.body.slice(0, 500)}`,
    );
  }
  return { status: response.statusCode, body: response.json() };
}

/**
 * Makes sure {@link BENCH_USER} exists: signs up, or (a later round on the same database) finds
 * the email taken, which is fine: the password is the same.
 */
export async function ensureBenchUser(app: HttpServer): Promise<void> {
  await injectJson(app, { method: 'POST', url: '/auth/sign-up', payload: BENCH_USER }, [201, 409]);
}

/** Signs {@link BENCH_USER} in (creating it first if needed) and returns its access token. */
export async function signInBenchUser(app: HttpServer): Promise<string> {
  await ensureBenchUser(app);
  const { body } = await injectJson(
    app,
    {
      method: 'POST',
      url: '/auth/sign-in',
      payload: { email: BENCH_USER.email, password: BENCH_USER.password },
    },
    [200],
  );
  const token = (body as { accessToken?: unknown }).accessToken;
  if (typeof token !== 'string') throw new Error('sign-in answered no access token');
  return token;
}

/** The bench organization's id (slug `slug`): created through `POST /orgs` the first time, found later. */
export async function ensureBenchOrg(app: HttpServer, accessToken: string, slug: string): Promise<string> {
  const headers = { authorization: `Bearer ${accessToken}` };
  const { body } = await injectJson(app, { method: 'GET', url: '/orgs', headers }, [200]);
  const existing = (body as { id: string; slug: string }[]).find((org) => org.slug === slug);
  if (existing !== undefined) return existing.id;
  const created = await injectJson(
    app,
    { method: 'POST', url: '/orgs', headers, payload: { name: 'Bench org', slug } },
    [201],
  );
  return (created.body as { id: string }).id;
}
