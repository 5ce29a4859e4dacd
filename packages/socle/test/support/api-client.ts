import { expect } from 'vitest';
import type { Socle } from '../../src/index.js';

/** A password the policy accepts, used by every test account. */
export const TEST_PASSWORD = 'correct horse battery staple orbit';

/** A signed-up test account and its tokens. */
export interface TestUser {
  readonly userId: string;
  readonly email: string;
  readonly token: string;
  readonly refreshToken: string;
}

/** Signs up `email` through the API (the real route, not a fixture) and checks it worked. */
export async function signUpUser(socle: Pick<Socle, 'app'>, email: string): Promise<TestUser> {
  const response = await socle.app.inject({
    method: 'POST',
    url: '/auth/sign-up',
    payload: { email, password: TEST_PASSWORD },
  });
  expect(response.statusCode, response.body).toBe(201);
  const body = response.json();
  return {
    userId: body.user.id,
    email,
    token: body.tokens.accessToken,
    refreshToken: body.tokens.refreshToken,
  };
}

/** Calls the API as `user`, acting in `orgId` when given. */
export function callAs(
  socle: Pick<Socle, 'app'>,
  user: Pick<TestUser, 'token'>,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  options: {
    orgId?: string | undefined;
    payload?: object | undefined;
    headers?: Record<string, string>;
  } = {},
) {
  return socle.app.inject({
    method,
    url,
    ...(options.payload ? { payload: options.payload } : {}),
    headers: {
      authorization: `Bearer ${user.token}`,
      ...(options.orgId ? { 'x-org-id': options.orgId } : {}),
      ...options.headers,
    },
  });
}

/** A POST with a JSON body, signed in when `token` is given. */
export function post(socle: Pick<Socle, 'app'>, url: string, payload: object, token?: string) {
  return socle.app.inject({
    method: 'POST',
    url,
    payload,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
}

/** A GET, signed in when `token` is given. */
export function get(socle: Pick<Socle, 'app'>, url: string, token?: string) {
  return socle.app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });
}
