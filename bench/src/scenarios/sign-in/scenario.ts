import type { Scenario } from '../../scenario.js';
import { SIGN_IN_BODY, tokensShape } from './sign-in.js';

const signInRequest = {
  method: 'POST',
  path: '/auth/sign-in',
  headers: { 'content-type': 'application/json' },
  body: SIGN_IN_BODY,
} as const;

/**
 * `POST /auth/sign-in` with the correct password: Socle's whole sign-in (email lookup, Argon2id
 * verification, session and refresh token stored, access token signed) against one Argon2id
 * verification behind bare Fastify. Its req/s is the sign-ins per second the capacity planner
 * needs; the hash dominates, so few connections suffice to keep both cores busy.
 */
export const signIn: Scenario = {
  name: 'sign-in',
  description:
    'POST /auth/sign-in, correct password: Socle identity module (lookup, Argon2id verify, session, JWT) vs bare Fastify + one Argon2id verify (same parameters, no DB)',
  dialects: ['postgres', 'pglite'],
  goal: 0.8,
  connections: 8,
  socleServer: new URL('./socle-server.js', import.meta.url),
  baselineServer: new URL('./baseline-server.js', import.meta.url),
  nextRequest: () => signInRequest,
  probe: signInRequest,
  probeShape: tokensShape,
};
