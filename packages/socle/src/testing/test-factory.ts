import { randomUUID } from 'node:crypto';
import type { Socle } from '../kernel/socle.js';
import type { createAccountService } from '../modules/identity/accounts.service.js';
import { hashPassword } from '../modules/identity/passwords.js';

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
   * Makes `user` (a new account unless given) a member of `tenant` with `role` (default `member`)
   * the way a person joins: `invitedBy` (default the tenant's owner) invites them, and they accept
   * with the invitation's token, read from `invitationToken` when the test delivers invitations
   * itself (`deliverInvitation`), else from the mail outbox.
   */
  newMember(
    tenant: Pick<TestTenant, 'id'> & Partial<Pick<TestTenant, 'owner'>>,
    options?: {
      readonly role?: TestMemberRole;
      readonly user?: TestUser;
      readonly invitedBy?: Pick<TestUser, 'token'>;
      readonly invitationToken?: (email: string) => string | undefined;
    },
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

  /** The token of the last invitation mailed to `email`, from the outbox of the mail module. */
  const mailedInvitationToken = async (email: string): Promise<string> => {
    const { rows } = await socle.db.withConnection(
      (connection) =>
        connection.query<{ text_body: string }>(
          `select text_body from mail.outbox where recipient = $1 and subject like 'You are invited%'
            order by created_at desc limit 1`,
          [email],
        ),
      'owner',
    );
    const token = /Your invitation token: (\S+)/.exec(rows[0]?.text_body ?? '')?.[1];
    if (token === undefined)
      throw new Error(`Test factory: no invitation mailed to ${email}; pass invitationToken to newMember`);
    return token;
  };

  return {
    newUser,
    newTenant,

    async newMember(tenant, options = {}) {
      const user = options.user ?? (await newUser());
      const invitedBy = options.invitedBy ?? tenant.owner;
      if (invitedBy === undefined)
        throw new Error('Test factory: newMember needs the tenant owner or invitedBy');
      await send('/org/invitations', { email: user.email, role: options.role ?? 'member' }, 201, {
        authorization: `Bearer ${invitedBy.token}`,
        'x-org-id': tenant.id,
      });
      const token = options.invitationToken?.(user.email) ?? (await mailedInvitationToken(user.email));
      await send('/invitations/accept', { token }, 200, { authorization: `Bearer ${user.token}` });
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
        accessToken: string;
      };
      return body.accessToken;
    },
  };
}

/** The shared password hash of {@link createTestAccounts}, computed once per password and process. */
const sharedHashes = new Map<string, Promise<string>>();

/**
 * Opens `count` accounts at once for a test or a benchmark that needs many users (players of a
 * game, members of a channel), each signed in: `TestUser`s as `newUser` makes them, `TEST_PASSWORD`
 * unless `password` is given. Not through the sign-up route: one Argon2id hash of the password is
 * computed once (per password and process) and stored for every account, without the password
 * policy or a verification mail, in one transaction. Sign-up spends ≈ 20 ms of CPU and 19 MiB of
 * working memory per account on its hash (which the allocator keeps: a server's memory per user
 * would count it); these accounts cost an insert and a session each. They sign in through the
 * real `POST /auth/sign-in` like any account. Needs the identity module.
 *
 * @example
 * const players = await createTestAccounts(socle, 8);
 */
export async function createTestAccounts(
  socle: Pick<Socle, 'servicesOf'>,
  count: number,
  options: { readonly password?: string; readonly emailPrefix?: string } = {},
): Promise<TestUser[]> {
  const password = options.password ?? TEST_PASSWORD;
  let passwordHash = sharedHashes.get(password);
  if (passwordHash === undefined) {
    passwordHash = hashPassword(password);
    sharedHashes.set(password, passwordHash);
  }
  const { accounts } = socle.servicesOf<{ accounts: ReturnType<typeof createAccountService> }>('identity');
  const emails = Array.from(
    { length: count },
    () => `${options.emailPrefix ?? 'user'}-${randomUUID()}@example.com`,
  );
  const opened = await accounts.openTestAccounts(
    { emails, passwordHash: await passwordHash },
    { userAgent: 'socle-test-accounts', ip: null },
  );
  return opened.map(({ user, tokens }) => ({
    userId: user.id,
    email: user.email,
    token: tokens.accessToken,
    refreshToken: tokens.refreshToken,
  }));
}
