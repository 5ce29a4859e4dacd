/**
 * Child process: the baseline for `POST /auth/sign-in` — bare Fastify 5 with Socle's body schema
 * and exactly one Argon2id verification per request (@node-rs/argon2, Socle's parameters) against
 * a hash made at start. No database, no session, no signed token: the answer has Socle's shape,
 * filled with random values. What Socle costs above it is its sign-in flow around the hash.
 * Started by the harness.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Algorithm, hash, verify } from '@node-rs/argon2';
import Fastify from 'fastify';
import { runServerChild } from '../../server-child.js';
import { BENCH_USER } from '../shared/socle-setup.js';
import { Failure, SignInBody, Tokens } from './sign-in.js';

// `Algorithm` is a `const enum`, which `isolatedModules` cannot read; 2 is `Argon2id`.
const ARGON2ID: Algorithm = 2;

/**
 * Socle's `PASSWORD_HASH_PARAMETERS` (packages/socle/src/modules/identity/passwords.ts, not
 * exported): Argon2id, 19 MiB, 2 passes, 1 lane, 32-byte output. Keep them in step.
 */
const PASSWORD_HASH_PARAMETERS = Object.freeze({
  algorithm: ARGON2ID,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
  outputLen: 32,
});

runServerChild(async () => {
  const passwordHash = await hash(BENCH_USER.password, PASSWORD_HASH_PARAMETERS);
  const app = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/auth/sign-in',
    { schema: { body: SignInBody, response: { 200: Tokens, 401: Failure } } },
    async (request, reply) => {
      const { email, password } = request.body;
      if (email !== BENCH_USER.email || !(await verify(passwordHash, password))) {
        return reply.code(401).send({ message: 'The email address or the password is incorrect' });
      }
      return {
        accessToken: randomBytes(32).toString('base64url'),
        refreshToken: randomBytes(32).toString('base64url'),
        tokenType: 'Bearer' as const,
        expiresIn: 900,
        sessionId: randomUUID(),
      };
    },
  );
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    async close() {
      await app.close();
    },
  };
});
