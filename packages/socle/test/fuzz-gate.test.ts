import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBuiltInModules } from '../src/modules/index.js';
import {
  createTestSocle,
  type FuzzCredential,
  fuzzEveryOperation,
  type TestSocle,
} from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

const PASSWORD = 'correct horse battery staple orbit';
const OPERATOR_TOKEN = 'fuzz-operator-token-0123456789abcdef';

describeEachDatabase('Fuzz gate over every operation of /openapi.json', (target) => {
  let socle: TestSocle;
  let url: string;
  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: createBuiltInModules(),
      config: { operatorToken: OPERATOR_TOKEN },
    });
    url = await socle.listen();
  });
  afterAll(() => socle?.dispose());

  let callers = 0;
  /** A signed-up user with an organization, an admin API key and a realtime app of it. */
  async function newCaller(): Promise<FuzzCredential[]> {
    // From an address of its own: the fuzzed requests use up the sign-up limit of theirs.
    const remoteAddress = `10.0.${++callers}.1`;
    const post = async (path: string, payload: object, headers: Record<string, string> = {}) => {
      const response = await socle.app.inject({ method: 'POST', url: path, payload, headers, remoteAddress });
      if (response.statusCode >= 300) throw new Error(`${path} failed: ${response.body}`);
      return response.json();
    };
    const email = `fuzz-${randomUUID().slice(0, 8)}@example.com`;
    const signUp = await post('/auth/sign-up', { email, password: PASSWORD });
    const bearer = { authorization: `Bearer ${signUp.tokens.accessToken}` };
    const org = await post('/orgs', { name: 'Fuzz' }, bearer);
    const user = { ...bearer, 'x-org-id': org.id as string };
    const apiKey = await post('/org/api-keys', { name: 'fuzz', scopes: ['fuzz:all'], role: 'admin' }, user);
    return [
      { name: 'anonymous', headers: {} },
      { name: 'user', headers: user, scheme: 'accessToken' },
      { name: 'api key', headers: { 'x-api-key': apiKey.key }, scheme: 'apiKey' },
      { name: 'operator', headers: { 'x-operator-token': OPERATOR_TOKEN }, scheme: 'operatorToken' },
    ];
  }

  /** The credentials, the user's with a new realtime app of its organization. */
  async function withNewApp(credentials: FuzzCredential[]): Promise<FuzzCredential[]> {
    const user = credentials.find((credential) => credential.name === 'user') as FuzzCredential;
    const response = await socle.app.inject({
      method: 'POST',
      url: '/realtime/apps',
      payload: { name: 'fuzz' },
      headers: user.headers,
    });
    if (response.statusCode !== 201) throw new Error(`app creation failed: ${response.body}`);
    const app = response.json();
    return credentials.map((credential) =>
      credential === user
        ? { ...credential, app: { id: app.id, key: app.key, secret: app.secret } }
        : credential,
    );
  }

  it('answers every malformed request with a 4xx problem+json, never a 5xx', {
    timeout: 300_000,
  }, async () => {
    let credentials = await newCaller();
    const stillValid = async () => {
      const [me, key] = await Promise.all([
        socle.app.inject({ method: 'GET', url: '/org', headers: credentials[1]?.headers }),
        socle.app.inject({ method: 'GET', url: '/org', headers: credentials[2]?.headers }),
      ]);
      return me.statusCode === 200 && key.statusCode === 200;
    };
    const report = await fuzzEveryOperation(socle, {
      url,
      async credentials() {
        // An operation may have ended the session (sign-out, erasure) or revoked the key: start
        // again. And a new realtime app each time: one may have been deleted or its secret rotated.
        if (!(await stillValid())) credentials = await newCaller();
        credentials = await withNewApp(credentials);
        return credentials;
      },
    });
    console.log(
      `fuzz gate [${target.dialect}]: ${report.sent} requests over ${report.operations.length} operations, ${report.serverErrors} × 5xx, ${report.findings.length} findings; answers by status: ${JSON.stringify(report.statuses)}`,
    );
    console.log(
      `operations never answered 2xx: ${report.operations.filter((operation) => !report.succeeded.includes(operation)).join(', ')}`,
    );
    expect(report.findings).toEqual([]);
    expect(report.serverErrors).toBe(0);
    // It went through the built-in modules' routes, the Pusher HTTP API included.
    expect(report.operations.length).toBeGreaterThan(50);
    expect(report.operations).toContain('POST /apps/{appId}/events');
    expect(report.sent).toBeGreaterThan(report.operations.length * 100);
  });
});
