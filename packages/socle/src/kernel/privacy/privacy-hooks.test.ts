import { describe, expect, it } from 'vitest';
import { combinePrivacyHooks, mergeExports, type PrivacyHooks } from './privacy-hooks.js';

describe('privacy hooks of a module on several databases (SHARDS)', () => {
  it('merges exports: lists concatenated in database order, objects key by key, other values the first', () => {
    expect(
      mergeExports([
        { accounts: [{ id: 1 }], transfers: [], note: 'primary' },
        { accounts: [{ id: 2 }], transfers: [{ id: 9 }], note: 'shard', extra: { rows: [3] } },
      ]),
    ).toEqual({
      accounts: [{ id: 1 }, { id: 2 }],
      transfers: [{ id: 9 }],
      note: 'primary',
      extra: { rows: [3] },
    });
    expect(mergeExports([[1], [2, 3]])).toEqual([1, 2, 3]);
  });

  it('runs erasure, revocation and organization deletion on every database, in order', async () => {
    const calls: string[] = [];
    const hooks = (name: string): PrivacyHooks => ({
      exportSubject: async () => ({ rows: [name] }),
      eraseSubject: async () => void calls.push(`erase ${name}`),
      revokeAccess: async () => void calls.push(`revoke ${name}`),
      organizationDeleted: async (orgId) => void calls.push(`deleted ${orgId} ${name}`),
    });
    const combined = combinePrivacyHooks([hooks('primary'), hooks('eu1')]);
    const subject = { userId: 'u', email: 'e@example.com' };
    expect(await combined.exportSubject(subject)).toEqual({ rows: ['primary', 'eu1'] });
    await combined.revokeAccess?.(subject);
    await combined.eraseSubject(subject);
    await combined.organizationDeleted?.('o');
    expect(calls).toEqual([
      'revoke primary',
      'revoke eu1',
      'erase primary',
      'erase eu1',
      'deleted o primary',
      'deleted o eu1',
    ]);
    // Hooks a module does not have stay absent.
    const bare = combinePrivacyHooks([
      { exportSubject: async () => ({}), eraseSubject: async () => {} },
      { exportSubject: async () => ({}), eraseSubject: async () => {} },
    ]);
    expect(bare.revokeAccess).toBeUndefined();
    expect(bare.organizationDeleted).toBeUndefined();
  });
});
