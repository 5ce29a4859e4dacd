import { randomUUID } from 'node:crypto';
import {
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from 'jose';
import type { Clock, Logger } from '../../kernel/index.js';
import { sessionErrors } from './sessions.errors.js';
import type { SigningKeysStore } from './signing-keys.store.js';

const ALGORITHM = 'EdDSA';
const ISSUER = 'socle';
/** Verified tokens kept in memory: a client reuses its token for many requests. */
const VERIFIED_CACHE_SIZE = 10_000;
/** A token signed by a key this node does not know yet makes it reload keys, at most this often. */
const RELOAD_INTERVAL_MS = 10_000;

/**
 * Whether each of the three segments of a JWT is canonical base64url: no padding, and the unused
 * low bits of the last character are zero. jose (like Node's decoder) accepts `sig==` or another
 * last character decoding to the same bytes, so one token would have 17 spellings that all verify:
 * a client, cache or revocation list comparing token strings would be fooled.
 */
function isCanonicalCompactJwt(token: string): boolean {
  const segments = token.split('.');
  return (
    segments.length === 3 &&
    segments.every((segment) => Buffer.from(segment, 'base64url').toString('base64url') === segment)
  );
}

/** What an access token proves. */
export interface AccessClaims {
  readonly userId: string;
  readonly sessionId: string;
  readonly expiresAt: number;
}

/** A verified token as cached: its claims and the key that signed it. */
interface VerifiedToken {
  readonly claims: AccessClaims;
  readonly kid: string;
}

type VerifyKey = Awaited<ReturnType<typeof importJWK>>;

export interface AccessTokensOptions {
  readonly store: SigningKeysStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly ttlSeconds: number;
}

/**
 * Short-lived access tokens: JWTs signed with Ed25519 keys kept in the database, so every node
 * signs and verifies with the same keys and a rotation reaches all of them. The public keys are
 * published as a JWKS so other services can verify tokens without calling Socle.
 */
export function createAccessTokens(options: AccessTokensOptions) {
  const { store, clock, log, ttlSeconds } = options;
  let signer: { kid: string; key: VerifyKey } | undefined;
  let verifiers = new Map<string, VerifyKey>();
  let publicJwks: JWK[] = [];
  let lastLoad = 0;
  // Verified tokens (an EdDSA verification costs ~0.1 ms of CPU; a client reuses its token for
  // many requests). A hit still checks what a verification would: the expiry, and that the
  // signing key is still published (a key dropped from the database stops its tokens here too).
  const verified = new Map<string, VerifiedToken>();

  async function load(): Promise<void> {
    lastLoad = clock.now().getTime();
    // A key retired less than one token lifetime ago may still have live tokens to verify.
    const rows = await store.listPublishable(new Date(lastLoad - ttlSeconds * 1000));
    const next = new Map<string, VerifyKey>();
    const jwks: JWK[] = [];
    for (const row of rows) {
      const publicJwk = row.public_jwk as JWK;
      next.set(row.kid, await importJWK(publicJwk, ALGORITHM));
      jwks.push({ ...publicJwk, kid: row.kid, alg: ALGORITHM, use: 'sig' });
    }
    const active = rows.find((row) => row.retired_at === null);
    signer = active
      ? { kid: active.kid, key: await importJWK(active.privateJwk as JWK, ALGORITHM) }
      : undefined;
    verifiers = next;
    publicJwks = jwks;
  }

  const accessTokens = {
    /** Loads keys, creating the first one on a new database. */
    async start(): Promise<void> {
      const resealed = await store.resealAll();
      if (resealed > 0) log.info({ keys: resealed }, 'Signing keys resealed with the current SECRET_KEY');
      await load();
      if (signer === undefined) await accessTokens.rotate();
    },

    /** Creates a new signing key; older keys keep verifying until their tokens have expired. */
    async rotate(): Promise<string> {
      const { privateKey, publicKey } = await generateKeyPair(ALGORITHM, { extractable: true });
      const kid = randomUUID();
      await store.insert({
        kid,
        algorithm: ALGORITHM,
        privateJwk: await exportJWK(privateKey),
        publicJwk: await exportJWK(publicKey),
      });
      await store.retireAllExcept(kid, clock.now());
      await load();
      log.info({ kid }, 'Access-token signing key rotated');
      return kid;
    },

    async sign(subject: {
      userId: string;
      sessionId: string;
    }): Promise<{ token: string; expiresIn: number }> {
      if (signer === undefined) await accessTokens.start();
      const current = signer as { kid: string; key: VerifyKey };
      const now = Math.floor(clock.now().getTime() / 1000);
      const token = await new SignJWT({ sid: subject.sessionId })
        .setProtectedHeader({ alg: ALGORITHM, kid: current.kid, typ: 'at+jwt' })
        .setIssuer(ISSUER)
        .setSubject(subject.userId)
        .setIssuedAt(now)
        .setExpirationTime(now + ttlSeconds)
        .sign(current.key);
      return { token, expiresIn: ttlSeconds };
    },

    /**
     * The claims of a token verified before, without waiting: undefined when it was not verified
     * yet (then call `verify`). Throws like `verify` when the token has since expired or its
     * signing key was removed. The request path uses it so an authenticated request does not wait
     * a turn of the event loop for a known token.
     */
    verifiedBefore(token: string): AccessClaims | undefined {
      const cached = verified.get(token);
      if (cached === undefined) return undefined;
      if (!verifiers.has(cached.kid)) {
        verified.delete(token);
        throw sessionErrors.tokenInvalid();
      }
      if (cached.claims.expiresAt > clock.now().getTime()) return cached.claims;
      verified.delete(token);
      throw sessionErrors.tokenExpired();
    },

    /** Verifies a token, or throws `auth.token_expired` / `auth.token_invalid`. */
    async verify(token: string): Promise<AccessClaims> {
      const known = accessTokens.verifiedBefore(token);
      if (known !== undefined) return known;
      if (!isCanonicalCompactJwt(token)) throw sessionErrors.tokenInvalid();
      const now = clock.now().getTime();
      try {
        const { payload, protectedHeader } = await jwtVerify(
          token,
          async (header) => {
            let key = header.kid === undefined ? undefined : verifiers.get(header.kid);
            if (key === undefined && now - lastLoad > RELOAD_INTERVAL_MS) {
              await load();
              key = header.kid === undefined ? undefined : verifiers.get(header.kid);
            }
            if (key === undefined) throw sessionErrors.tokenInvalid();
            return key;
          },
          { issuer: ISSUER, algorithms: [ALGORITHM], typ: 'at+jwt', currentDate: new Date(now) },
        );
        if (
          typeof payload.sub !== 'string' ||
          typeof payload.sid !== 'string' ||
          typeof payload.exp !== 'number'
        ) {
          throw sessionErrors.tokenInvalid();
        }
        const claims: AccessClaims = {
          userId: payload.sub,
          sessionId: payload.sid,
          expiresAt: payload.exp * 1000,
        };
        if (verified.size >= VERIFIED_CACHE_SIZE) verified.clear();
        // jwtVerify found a key for this kid, so it is a string here.
        verified.set(token, { claims, kid: protectedHeader.kid as string });
        return claims;
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) throw sessionErrors.tokenExpired();
        throw sessionErrors.tokenInvalid();
      }
    },

    /** The public keys, as served at `/.well-known/jwks.json`. */
    jwks: (): { keys: JWK[] } => ({ keys: publicJwks }),
  };
  return accessTokens;
}

export type AccessTokens = ReturnType<typeof createAccessTokens>;
