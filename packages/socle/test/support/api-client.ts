import type { Socle } from '../../src/index.js';
import type { TestUser } from '../../src/testing/index.js';

export { TEST_PASSWORD, type TestUser } from '../../src/testing/index.js';

/** Calls the API as `user`, acting in `orgId` when given. */
export function callAs(
  socle: Pick<Socle, 'app'>,
  user: Pick<TestUser, 'token'>,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
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
