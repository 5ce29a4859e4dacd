import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../kernel/clock/index.js';
import { createSilentLogger } from '../../kernel/log/index.js';
import { createAccessTokens } from './access-tokens.service.js';
import type { SigningKey, SigningKeysStore } from './signing-keys.store.js';

/** The signing-key table in memory, with what a store answers. */
function createKeyTable(clock: { now(): Date }) {
  const rows: (SigningKey & { retired_at: Date | null })[] = [];
  const store: SigningKeysStore = {
    async listPublishable(since) {
      return rows
        .filter((row) => row.retired_at === null || row.retired_at > since)
        .sort((left, right) => right.created_at.getTime() - left.created_at.getTime());
    },
    async insert(key) {
      rows.push({
        kid: key.kid,
        algorithm: key.algorithm,
        privateJwk: key.privateJwk,
        public_jwk: key.publicJwk,
        created_at: clock.now(),
        retired_at: null,
      });
    },
    async resealAll() {
      return 0;
    },
    async retireAllExcept(kid, at) {
      for (const row of rows) if (row.kid !== kid && row.retired_at === null) row.retired_at = at;
    },
  };
  return { rows, store };
}

/** Access tokens on an in-memory key table, started (first key created). */
async function startAccessTokens(ttlSeconds: number) {
  const clock = createManualClock();
  const keys = createKeyTable(clock);
  const accessTokens = createAccessTokens({
    store: keys.store,
    clock,
    log: createSilentLogger(),
    ttlSeconds,
  });
  await accessTokens.start();
  return { clock, keys, accessTokens };
}

describe('access tokens', () => {
  it('accepts a verified token again only while it has not expired and its key is still published', async () => {
    const { clock, keys, accessTokens } = await startAccessTokens(600);
    const { token } = await accessTokens.sign({ userId: 'user-1', sessionId: 'session-1' });
    expect(await accessTokens.verify(token)).toMatchObject({ userId: 'user-1', sessionId: 'session-1' });

    // A rotation keeps the old key published while its tokens may live: the token still passes.
    clock.advance(1000);
    const [first] = keys.rows;
    await accessTokens.rotate();
    expect(await accessTokens.verify(token)).toMatchObject({ userId: 'user-1' });

    // The old key removed from the table (a compromised key): once keys are reloaded, the token
    // is refused, although it was verified and cached before.
    keys.rows.splice(keys.rows.indexOf(first as (typeof keys.rows)[number]), 1);
    clock.advance(1000);
    await accessTokens.rotate();
    await expect(accessTokens.verify(token)).rejects.toMatchObject({ code: 'auth.token_invalid' });
  });

  it('refuses a cached token once it has expired', async () => {
    const { clock, accessTokens } = await startAccessTokens(60);
    const { token } = await accessTokens.sign({ userId: 'user-1', sessionId: 'session-1' });
    await accessTokens.verify(token);
    clock.advance(61_000);
    await expect(accessTokens.verify(token)).rejects.toMatchObject({ code: 'auth.token_expired' });
  });

  it('accepts only the canonical base64url encoding of each segment (no padding, no unused bits set)', async () => {
    const { accessTokens } = await startAccessTokens(600);
    const { token } = await accessTokens.sign({ userId: 'user-1', sessionId: 'session-1' });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // Other last characters that decode to the same bytes (the unused low bits differ), and padding.
    const sameBytes = (segment: string) =>
      [...alphabet]
        .map((last) => `${segment.slice(0, -1)}${last}`)
        .filter(
          (variant) =>
            variant !== segment &&
            Buffer.from(variant, 'base64url').equals(Buffer.from(segment, 'base64url')),
        );
    const variants = [
      ...[`${signature}=`, `${signature}==`, ...sameBytes(signature)].map(
        (variant) => `${header}.${payload}.${variant}`,
      ),
      ...sameBytes(payload).map((variant) => `${header}.${variant}.${signature}`),
      ...sameBytes(header).map((variant) => `${variant}.${payload}.${signature}`),
      `${header}=.${payload}.${signature}`,
    ];
    // An Ed25519 signature is 64 bytes: 86 characters whose last carries 4 unused bits, so 15
    // other last characters, plus the two paddings: the 17 strings jose accepted per token.
    expect(variants.filter((variant) => variant.startsWith(`${header}.${payload}.`))).toHaveLength(17);
    for (const variant of variants)
      await expect(accessTokens.verify(variant), variant).rejects.toMatchObject({
        code: 'auth.token_invalid',
      });
    expect(await accessTokens.verify(token)).toMatchObject({ userId: 'user-1' });
  });
});
