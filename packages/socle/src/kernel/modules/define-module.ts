import type { FastifyRequest } from 'fastify';
import type { BlobStore } from '../blobs/index.js';
import type { Bus } from '../bus/index.js';
import type { Clock } from '../clock/index.js';
import type { Config, ConfigurationEntry, SettingsSpec } from '../config/index.js';
import type { ScopeAccess } from '../context/index.js';
import type { Database, MigrationSource } from '../db/index.js';
import { SocleError } from '../errors/index.js';
import type { NodeHealth } from '../health/index.js';
import { type HttpServer, type WebClient, webClientPath } from '../http/index.js';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import type { PrivacyHooks } from '../privacy/index.js';
import type { JobDefinition, Jobs } from '../queue/index.js';
import type { RateLimiter } from '../rate-limit/index.js';
import type { RedisConnections } from '../redis/index.js';
import type { SecretBox } from '../secrets/index.js';
import type { SharedStates } from '../shared-state/index.js';

/** What a module receives: the kernel's services, nothing global. */
export interface ModuleContext<Tables = unknown, Services = unknown, Settings = object>
  extends SetupContext<Tables, Settings> {
  /** This module's services, as its `setup` built them (undefined for a module without `setup`). */
  readonly services: Services;
}

/** A module's GDPR hooks, built by the kernel from the module's own context and services. */
export interface ModulePrivacyHooks {
  readonly module: string;
  readonly hooks: PrivacyHooks;
}

/** What a module's `setup` receives: the kernel's services, before the module's own exist. */
export interface SetupContext<Tables = unknown, Settings = object> {
  readonly db: Database<Tables>;
  readonly log: Logger;
  readonly clock: Clock;
  /** The kernel's settings (port, database, Redis…); a module's own are in `settings`. */
  readonly config: Config;
  /**
   * This module's settings as it declared them (`defineModule({ settings })`), parsed and validated
   * at start with every other setting.
   */
  readonly settings: Settings;
  readonly metrics: Metrics;
  /** The acting tenant and user of the current request or job. */
  readonly scope: ScopeAccess;
  /** Seals secrets before they are stored (TOTP seeds, signing keys, app secrets); opens them back. */
  readonly secrets: SecretBox;
  /** Shared rate limits: in process when embedded, in Redis when `REDIS_URL` is set. */
  readonly rateLimiter: RateLimiter;
  /** Every module of this server, in dependency order (realtime reads their channel rules). */
  readonly modules: readonly ModuleDefinition[];
  /** Durable jobs: `jobs.enqueue(trx, 'module.job', payload)` inside a transaction; inspection. */
  readonly jobs: Jobs;
  /** Fan-out between nodes: in process when embedded, Redis pub/sub when `REDIS_URL` is set. */
  readonly bus: Bus;
  /**
   * Fleet-wide presence, counts and cache (`sharedState.open({ area, nodeId })`): in process when
   * embedded, in Redis when `REDIS_URL` is set. The module does not choose and need not know.
   */
  readonly sharedState: SharedStates;
  /**
   * The process's Redis connections when `REDIS_URL` is set, for what no kernel service above
   * covers yet: bounded (failing fast with 503 `redis.unavailable` while Redis is down), keys
   * prefixed with `redis.prefix(area)`. Built-in modules do not use it.
   */
  readonly redis: RedisConnections | undefined;
  /**
   * Where file bytes live, streamed in and out: a local directory when embedded, an S3-compatible
   * store with `BLOB_URL`. The kernel picks it; a module never knows which (the files module
   * builds buckets and objects on it).
   */
  readonly blobs: BlobStore;
  /**
   * The services another module's `setup` built: by its definition (typed) or by name. Only a
   * module this one depends on (directly or not) is set up before it; asking for another one
   * throws `module.not_set_up`.
   *
   * @example
   * const realtime = context.servicesOf<Realtime>('realtime');
   */
  // biome-ignore lint/suspicious/noExplicitAny: any module's tables
  servicesOf<S>(module: ModuleDefinition<any, S> | string): S;
  /**
   * Every module's privacy hooks, each built once from its own context and services. Built when
   * first asked, once every module is set up (the privacy module asks at request time).
   */
  privacyHooks(): readonly ModulePrivacyHooks[];
  /**
   * Every setting of the kernel and of every module with the value in effect, credentials masked
   * (settings declared `secret`): for an operator's read-only view, never for decisions.
   */
  configuration(): readonly ConfigurationEntry[];
  /**
   * The fleet's nodes as this one last heard them (each publishes a summary of its metrics on the
   * bus every few seconds: requests, 5xx, HTTP duration histogram, jobs finished, connections),
   * this node included; a node silent past the timeout is flagged `gone`. For the operator's view.
   */
  fleetHealth(): readonly NodeHealth[];
}

/**
 * A capability of Socle, built-in or an app: same API for both. A module owns the Postgres schema
 * named after it; its migrations run there.
 */
export interface ModuleDefinition<Tables = unknown, Services = unknown, Settings = object> {
  /** lower_snake_case; also the name of the module's Postgres schema. */
  readonly name: string;
  /**
   * The module's own settings (`defineSettings({ … })`): environment variables (and
   * `socle.config.json` keys) the kernel parses and validates at start with all the others, lists
   * in `socle help config`, and hands to every hook as `context.settings`.
   */
  readonly settings?: SettingsSpec<Settings>;
  /** Modules that must be set up (migrated, routed) before this one. */
  readonly dependsOn?: readonly string[];
  /**
   * Tables of this module that hold no tenant data and so have no row-level security, each with
   * the reason. Every other table must have RLS enabled, forced, and a policy (a test checks).
   */
  readonly globalTables?: Readonly<Record<string, string>>;
  /**
   * Where this module's tables live with `SHARDS` (tenant shards). `tenant` (default): a tenant's
   * rows live on its shard, and every statement acting for a tenant runs there. `primary`: the
   * tables stay on the primary (directory) database only, and `context.db` runs every statement
   * there whatever tenant it acts for: accounts, organizations and memberships, which must be read
   * before the tenant's shard is known. Without `SHARDS`, nothing changes.
   */
  readonly placement?: 'tenant' | 'primary';
  /** A directory of numbered `.sql` files (`new URL('./migrations/', import.meta.url)`) or inline sources. */
  readonly migrations?: URL | string | readonly MigrationSource[];
  /**
   * Builds the module's services once, after migrations and before any route, job or hook runs,
   * in dependency order. What it returns is `context.services` in every other hook, the second
   * argument of each job handler, and what other modules and apps get with `servicesOf`.
   */
  setup?(context: SetupContext<Tables, Settings>): Services | Promise<Services>;
  /**
   * Configures the whole HTTP server before any module registers routes: hooks and decorators
   * that apply to every route (authentication, for instance). Runs in dependency order.
   */
  configureHttp?(app: HttpServer, context: ModuleContext<Tables, Services, Settings>): void | Promise<void>;
  /**
   * Durable jobs of this module, enqueued as `'<module>.<key>'` with `ctx.jobs.enqueue`; see
   * docs/jobs.md.
   */
  // biome-ignore lint/suspicious/noExplicitAny: each job is typed with its own payload
  readonly jobs?: Readonly<Record<string, JobDefinition<any, NoInfer<Services>>>>;
  /**
   * A static web client (HTML, scripts, styles) served by Socle at `web.path`, by default
   * `/apps/<name>/`, from `web.root` (`new URL('../web/', import.meta.url)`), with a strict
   * Content-Security-Policy; see docs/architecture.md#web-clients.
   */
  readonly web?: WebClient;
  /** Registers HTTP routes. Routes are thin: schema, service call, reply. */
  routes?(app: HttpServer, context: ModuleContext<Tables, Services, Settings>): void | Promise<void>;
  /**
   * GDPR export and erasure of what this module stores about a person; built from the module's
   * context. Every module holding personal data provides it.
   */
  privacy?(context: ModuleContext<Tables, Services, Settings>): PrivacyHooks;
  /**
   * Who may join which realtime channel: patterns such as `presence-quiz-{roomId}` mapped to an
   * authorizer, asked by the realtime module's authorization endpoint (see docs/realtime.md).
   */
  readonly channels?: Readonly<Record<string, ChannelAuthorizer>>;
  /** Runs after migrations and before the server accepts requests. */
  onStart?(context: ModuleContext<Tables, Services, Settings>): void | Promise<void>;
  /** Runs after the server stopped accepting requests, in reverse dependency order. */
  onStop?(context: ModuleContext<Tables, Services, Settings>): void | Promise<void>;
}

/**
 * Decides whether the signed-in caller of a channel authorization request may join a channel
 * whose name matched the pattern; `params` holds the pattern's `{placeholders}`. Return false to
 * refuse, true to allow, or, for presence channels, the member's `user_info` as `{ userInfo }`.
 */
export type ChannelAuthorizer = (
  request: FastifyRequest,
  params: Readonly<Record<string, string>>,
) => boolean | { userInfo?: unknown } | Promise<boolean | { userInfo?: unknown }>;

const MODULE_NAME = /^[a-z][a-z0-9_]{0,62}$/;
const RESERVED = new Set(['socle', 'public', 'information_schema']);

export const moduleErrors = {
  invalidName: (name: string) =>
    new SocleError(
      'module.invalid_name',
      `Module name "${name}" must be lower_snake_case (a-z, 0-9, _), start with a letter, and not be socle, public, information_schema or pg_*`,
    ),
  duplicate: (name: string) => new SocleError('module.duplicate', `Module "${name}" is registered twice`),
  missingDependency: (name: string, dependency: string) =>
    new SocleError(
      'module.missing_dependency',
      `Module "${name}" depends on "${dependency}", which is not registered. Add "${dependency}" to the modules list.`,
      { details: { module: name, dependency } },
    ),
  notSetUp: (name: string) =>
    new SocleError(
      'module.not_set_up',
      `Module "${name}" is not set up yet (or not registered): add it to dependsOn to use its services`,
      { details: { module: name } },
    ),
  cycle: (path: readonly string[]) =>
    new SocleError(
      'module.dependency_cycle',
      `Modules depend on each other in a cycle: ${path.join(' → ')}`,
      {
        details: { cycle: path },
      },
    ),
};

/**
 * Declares a module. Validates the name at definition time so a typo fails where it is written.
 * `setup` builds the module's services once; every other hook gets them as `context.services`
 * (see docs/architecture.md).
 *
 * @example
 * export const quiz = defineModule({
 *   name: 'quiz',
 *   dependsOn: ['realtime'],
 *   migrations: new URL('./migrations/', import.meta.url),
 *   setup: ({ db }: SetupContext<QuizTables>) => ({ rooms: createRoomService(createRoomStore(db)) }),
 *   routes(app, { services }) {
 *     app.get('/quiz/rooms/:id', { schema: { params: RoomParams } }, (request) => services.rooms.find(request.params.id));
 *   },
 * });
 */
export function defineModule<Tables = unknown, Services = undefined, Settings = object>(
  definition: ModuleDefinition<Tables, Services, Settings>,
): ModuleDefinition<Tables, Services, Settings> {
  if (
    !MODULE_NAME.test(definition.name) ||
    RESERVED.has(definition.name) ||
    definition.name.startsWith('pg_')
  ) {
    throw moduleErrors.invalidName(definition.name);
  }
  if (definition.web) webClientPath(definition.name, definition.web);
  return Object.freeze({ ...definition, dependsOn: Object.freeze([...(definition.dependsOn ?? [])]) });
}

/**
 * Orders modules so each comes after its dependencies, keeping registration order otherwise.
 * Refuses duplicates, missing dependencies and cycles, naming them.
 */
export function orderModules<M extends Pick<ModuleDefinition, 'name' | 'dependsOn'>>(
  modules: readonly M[],
): M[] {
  const byName = new Map<string, M>();
  for (const module of modules) {
    if (byName.has(module.name)) throw moduleErrors.duplicate(module.name);
    byName.set(module.name, module);
  }
  for (const module of modules) {
    for (const dependency of module.dependsOn ?? []) {
      if (!byName.has(dependency)) throw moduleErrors.missingDependency(module.name, dependency);
    }
  }
  const ordered: M[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (module: M) => {
    const current = state.get(module.name);
    if (current === 'done') return;
    if (current === 'visiting') {
      throw moduleErrors.cycle([...stack.slice(stack.indexOf(module.name)), module.name]);
    }
    state.set(module.name, 'visiting');
    stack.push(module.name);
    for (const dependency of module.dependsOn ?? []) visit(byName.get(dependency) as M);
    stack.pop();
    state.set(module.name, 'done');
    ordered.push(module);
  };
  for (const module of modules) visit(module);
  return ordered;
}
