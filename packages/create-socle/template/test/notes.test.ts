import { createBuiltInModules } from 'socle';
import { createTestSocle, type TestSocle, testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import notes from '../src/notes/notes.module.js';

const PASSWORD = 'correct horse battery staple orbit';

/** Signs up through the real route and returns the access token. */
async function signUp(socle: TestSocle, email: string): Promise<string> {
  const response = await socle.app.inject({
    method: 'POST',
    url: '/auth/sign-up',
    payload: { email, password: PASSWORD },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json().tokens.accessToken;
}

// Embedded PGlite always; Postgres too when SOCLE_TEST_POSTGRES_URL (default 127.0.0.1:5432) answers.
for (const target of await testDatabaseTargets()) {
  describe.skipIf(!target.available)(`notes on ${target.dialect}`, () => {
    let socle: TestSocle;

    beforeAll(async () => {
      socle = await createTestSocle(target, { modules: [...createBuiltInModules(), notes] });
    });
    afterAll(() => socle?.dispose());

    it("keeps each user's notes to themselves", async () => {
      const ada = await signUp(socle, 'ada@example.com');
      const bob = await signUp(socle, 'bob@example.com');
      const written = await socle.app.inject({
        method: 'POST',
        url: '/notes',
        headers: { authorization: `Bearer ${ada}` },
        payload: { body: 'buy milk' },
      });
      expect(written.statusCode, written.body).toBe(201);

      const mine = await socle.app.inject({ url: '/notes', headers: { authorization: `Bearer ${ada}` } });
      expect(mine.json().notes.map((note: { body: string }) => note.body)).toEqual(['buy milk']);
      const theirs = await socle.app.inject({ url: '/notes', headers: { authorization: `Bearer ${bob}` } });
      expect(theirs.json().notes).toEqual([]);
    });

    it('answers 401 without a token and 400 naming the field for an empty note', async () => {
      const anonymous = await socle.app.inject({ url: '/notes' });
      expect(anonymous.statusCode).toBe(401);
      const token = await signUp(socle, 'cy@example.com');
      const empty = await socle.app.inject({
        method: 'POST',
        url: '/notes',
        headers: { authorization: `Bearer ${token}` },
        payload: { body: '' },
      });
      expect(empty.statusCode).toBe(400);
      expect(empty.body).toContain('body');
    });
  });
}
