import { Redis } from 'ioredis';

/**
 * Redis of the tests: required in CI (or SOCLE_TEST_REDIS=required), visibly skipped elsewhere
 * when absent, like the Postgres target. Probed once when imported (top-level await), so it is not
 * re-exported from `socle/testing`: import this file directly in tests that need Redis.
 */
export const testRedisUrl = process.env.SOCLE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function redisRequirement(): 'required' | 'auto' | 'off' {
  const value = process.env.SOCLE_TEST_REDIS ?? (process.env.CI ? 'required' : 'auto');
  if (value !== 'required' && value !== 'auto' && value !== 'off')
    throw new Error(`SOCLE_TEST_REDIS must be required, auto or off, got "${value}"`);
  return value;
}

async function probeRedis(url: string): Promise<string | undefined> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    retryStrategy: () => null,
  });
  let cause: Error | undefined;
  client.on('error', (error: Error) => {
    cause = error;
  });
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (error) {
    // connect() only says "Connection is closed"; the 'error' event says why.
    return (cause ?? (error as Error)).message || String(error);
  } finally {
    client.disconnect();
  }
}

const requirement = redisRequirement();
/** Why Redis tests cannot run here, or undefined when Redis answers. Throws when Redis is required but down. */
export const redisUnavailable: string | undefined =
  requirement === 'off' ? 'SOCLE_TEST_REDIS=off' : await probeRedis(testRedisUrl);
if (redisUnavailable !== undefined && requirement === 'required') {
  throw new Error(
    `Redis is required for these tests (SOCLE_TEST_REDIS=required or CI set) but ${new URL(testRedisUrl).host} is unreachable: ${redisUnavailable}`,
  );
}
