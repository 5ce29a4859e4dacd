import { defineModule, type ModuleContext } from '../../kernel/modules/index.js';
import { createAccessTokens } from './access-tokens.js';
import { createAccountService } from './accounts.service.js';
import { installAuthentication } from './authentication.js';
import { registerIdentityRoutes } from './identity.routes.js';
import type { IdentityTables } from './identity.tables.js';
import { createSessionService } from './sessions.service.js';
import { createSessionsStore } from './sessions.store.js';
import { createSigningKeysStore } from './signing-keys.store.js';
import { createUsersStore } from './users.store.js';

export interface IdentityOptions {
  /** Lifetime of access tokens; also how long a signed-out session's access token keeps working. */
  readonly accessTokenTtlSeconds?: number;
  /** Lifetime of a session (refresh tokens) without signing in again. */
  readonly sessionTtlMs?: number;
  /** How long a used refresh token may be presented again (concurrent tabs) before it counts as stolen. */
  readonly refreshReuseGraceMs?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function createIdentityServices(context: ModuleContext<IdentityTables>, options: IdentityOptions) {
  const { db, clock, log } = context;
  const accessTokens = createAccessTokens({
    store: createSigningKeysStore(db),
    clock,
    log,
    ttlSeconds: options.accessTokenTtlSeconds ?? 900,
  });
  const sessions = createSessionService({
    db,
    store: createSessionsStore(db),
    accessTokens,
    clock,
    sessionTtlMs: options.sessionTtlMs ?? 30 * DAY_MS,
    reuseGraceMs: options.refreshReuseGraceMs ?? 10_000,
  });
  const accounts = createAccountService({ db, users: createUsersStore(db), sessions });
  return { accessTokens, sessions, accounts };
}

/**
 * Accounts (email + password), sessions with rotating refresh tokens, access tokens (EdDSA JWTs,
 * JWKS) and request authentication for every module.
 */
export function createIdentityModule(options: IdentityOptions = {}) {
  let services: ReturnType<typeof createIdentityServices> | undefined;
  const servicesOf = (context: ModuleContext<IdentityTables>) => {
    services ??= createIdentityServices(context, options);
    return services;
  };
  return defineModule<IdentityTables>({
    name: 'identity',
    migrations: new URL('./migrations/', import.meta.url),
    async onStart(context) {
      await servicesOf(context).accessTokens.start();
    },
    configureHttp(app, context) {
      installAuthentication(app, servicesOf(context).accessTokens, context.scope);
    },
    routes(app, context) {
      registerIdentityRoutes(app, servicesOf(context));
    },
  });
}
