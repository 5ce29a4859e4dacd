import { describe, expect, it } from 'vitest';
import { retryDelayMs } from './delivery.service.js';

describe('retryDelayMs', () => {
  it('backs off 30 s, 2 min, 10 min … then stays at 8 h', () => {
    const middle = () => 0.5;
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map((attempts) => retryDelayMs(attempts, middle))).toEqual([
      30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000, 28_800_000,
    ]);
  });

  it('spreads each delay by ±20 % so mail that failed together does not return together', () => {
    expect(retryDelayMs(1, () => 0)).toBe(24_000);
    expect(retryDelayMs(1, () => 0.999_999)).toBe(36_000);
  });
});
