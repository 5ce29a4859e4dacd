import { describe, expect, it } from 'vitest';
import { isSocleError, loadConfig } from '../../kernel/index.js';
import { realtimeSettings } from './realtime.settings.js';

const realtime = { name: 'realtime', settings: realtimeSettings };

describe('realtime settings', () => {
  it('reads channel rules as space-separated pattern:role items, and names a bad one', () => {
    const config = loadConfig({
      env: { REALTIME_CHANNEL_RULES: ' private-org-{orgId}-billing-*:admin  presence-lobby-a,b:user ' },
      configFile: false,
      modules: [realtime],
    });
    expect(config.moduleSettings.realtime?.channelRules).toEqual([
      { pattern: 'private-org-{orgId}-billing-*', role: 'admin' },
      { pattern: 'presence-lobby-a,b', role: 'user' },
    ]);
    let message = '';
    try {
      loadConfig({
        env: { REALTIME_CHANNEL_RULES: 'news-*:user private-x:boss' },
        configFile: false,
        modules: [realtime],
      });
    } catch (error) {
      if (!isSocleError(error)) throw error;
      message = error.message;
    }
    expect(message).toContain('REALTIME_CHANNEL_RULES must be pattern:role items');
    expect(message).toContain('"news-*:user"');
  });
});
