import { Type } from 'socle';
import { BENCH_USER } from '../shared/socle-setup.js';

/**
 * The body of `POST /auth/sign-in`, Socle's schema: the baseline validates with the same one.
 * (Copied from `packages/socle/src/modules/identity/sessions.routes.ts`, which does not export it.)
 */
export const SignInBody = Type.Object(
  {
    email: Type.String({ minLength: 3, maxLength: 254 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: false },
);

/** What a successful sign-in answers: Socle's `Tokens` schema, which the baseline also uses. */
export const Tokens = Type.Object({
  accessToken: Type.String(),
  refreshToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer(),
  sessionId: Type.String({ format: 'uuid' }),
});

/** The baseline's error body (Socle answers problem+json; only successes are measured). */
export const Failure = Type.Object({ message: Type.String() });

/** The request body of every sign-in of the load (the correct password). */
export const SIGN_IN_BODY = JSON.stringify({ email: BENCH_USER.email, password: BENCH_USER.password });

/**
 * The fields of a sign-in answer and their types, without their values: tokens and session ids
 * are fresh on every sign-in, so two servers can only agree on the shape.
 */
export function tokensShape(body: string): string {
  const parsed = JSON.parse(body) as Record<string, unknown>;
  return JSON.stringify(
    Object.entries(parsed)
      .map(([name, value]) => `${name}:${name === 'tokenType' ? String(value) : typeof value}`)
      .sort(),
  );
}
