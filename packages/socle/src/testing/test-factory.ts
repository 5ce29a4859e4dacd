import { randomUUID } from 'node:crypto';
import type { Socle } from '../kernel/socle.js';

/** The password of every factory-made account: one the password policy accepts. */
export const TEST_PASSWORD = 'correct horse battery staple orbit';

/** A signed-up account and its tokens, as the factory made it. */
export interface TestUser {
  readonly userId: string;
  readonly email: string;
  /** A bearer access token of the account. */
  readonly token: string;
  readonly refreshToken: string;
}

/** An organization (tenant) and the account that created it, its owner. */
export interface TestTenant {
  readonly id: string;
  readonly name: string;
  readonly owner: TestUser;
}

/** An API key of a tenant: `key` is the secret sent as `X-Api-Key`. */
export interface TestApiKey {
  readonly id: string;
  readonly key: string;
}

/** A role a member can be given (the owner role is the creator's). */
export type TestMemberRole = 'admin' | 'member' | 'viewer';

/**
 * Makes the tenants and users a test needs, through the real routes of the identity and tenancy
 * modules (sign-up, `POST /orgs`, `POST /org/api-keys`), so what a test sets up is what a client
 * would have. Each call makes a new one with a unique email or name unless given.
 */
export interface TestFactory {
  /** Signs up an account (`TEST_PASSWORD` unless `password` is given). */
  newUser(options?: { readonly email?: string; readonly password?: string }): Promise<TestUser>;
  /** Creates an organization, owned by `owner` (a new account unless given). */
  newTenant(options?: { readonly name?: string; readonly owner?: TestUser }): Promise<TestTenant>;
  /**
   * Makes `user` (a new account unless given) a member of `tenant` with `role` (default `member`),
   * without the invitation round trip: tests of invitations use the routes themselves.
   */
  newMember(
    tenant: Pick<TestTenant, 'id'>,
    options?: { readonly role?: TestMemberRole; readonly user?: TestUser },
  ): Promise<TestUser>;
  /** Creates an API key of `tenant`, minted by its owner (default: role `admin`, no scopes). */
  newApiKey(
    tenant: TestTenant,
    options?: { readonly name?: string; readonly scopes?: readonly string[]; readonly role?: string },
  ): Promise<TestApiKey>;
  /** A fresh access token of `user`, by signing in again (its other sessions keep theirs). */
  newAccessToken(user: Pick<TestUser, 'email'>, password?: string): Promise<string>;
}

/** The factory of one Socle (or one node of several sharing a database). */
export function createTestFactory(socle: Pick<Socle, 'app' | 'db'>): TestFactory {
  /** POSTs `payload` to `url` and fails the test unless the route answers `expected`. */
  const send = async (
    url: string,
    payload: object,
    expected: number,
    headers: Record<string, string> = {},
  ): Promise<Record<string, unknown>> => {
    const response = await socle.app.inject({ method: 'POST', url, payload, headers });
    if (response.statusCode !== expected)
      throw new Error(
        `Test factory: POST ${url} answered ${response.statusCode}, not ${expected}: ${response.body}`,
      );
    return response.json();
  };

  const newUser: TestFactory['newUser'] = async (options = {}) => {
    const email = options.email ?? `user-${randomUUID()}@example.com`;
    const body = (await send(
      '/auth/sign-up',
      { email, password: options.password ?? TEST_PASSWORD },
      201,
    )) as { user: { id: string }; tokens: { accessToken: string; refreshToken: string } };
    return {
      userId: body.user.id,
      email,
      token: body.tokens.accessToken,
      refreshToken: body.tokens.refreshToken,
    };
  };

  const newTenant: TestFactory['newTenant'] = async (options = {}) => {
    const owner = options.owner ?? (await newUser());
    const name = options.name ?? `Tenant ${randomUUID().slice(0, 8)}`;
    const body = await send('/orgs', { name }, 201, { authorization: `Bearer ${owner.token}` });
    return { id: body.id as string, name, owner };
  };

  return {
    newUser,
    newTenant,

    async newMember(tenant, options = {}) {
      const user = options.user ?? (await newUser());
      await socle.db.withConnection(
        (connection) =>
          connection.query('insert into tenancy.memberships (tenant_id, user_id, role) values ($1, $2, $3)', [
            tenant.id,
            user.userId,
            options.role ?? 'member',
          ]),
        'owner',
      );
      return user;
    },

    async newApiKey(tenant, options = {}) {
      const body = await send(
        '/org/api-keys',
        { name: options.name ?? 'test key', scopes: options.scopes ?? [], role: options.role ?? 'admin' },
        201,
        { authorization: `Bearer ${tenant.owner.token}`, 'x-org-id': tenant.id },
      );
      return { id: body.id as string, key: body.key as string };
    },

    async newAccessToken(user, password = TEST_PASSWORD) {
      const body = (await send('/auth/sign-in', { email: user.email, password }, 200)) as {
        tokens: { accessToken: string };
      };
      return body.tokens.accessToken;
    },
  };
}
