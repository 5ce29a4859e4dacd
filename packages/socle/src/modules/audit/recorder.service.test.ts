import { describe, expect, it } from 'vitest';
import { createSilentLogger } from '../../kernel/log/index.js';
import type { NewAuditEvent } from './audit.store.js';
import { createAuditRecorder } from './recorder.service.js';

function event(index: number, tenantId: string | null = 'org-a'): NewAuditEvent {
  return {
    id: `event-${index}`,
    tenantId,
    occurredAt: new Date(),
    actorUserId: null,
    actorOperator: false,
    actorApiKeyId: null,
    action: 'POST /things',
    target: null,
    changedFields: [],
    status: 201,
    ip: null,
    userAgent: null,
    requestId: `request-${index}`,
  };
}

function recorderWith(options: { fail?: (tenantId: string | null) => boolean; maxPending?: number } = {}) {
  const writes: { tenantId: string | null; ids: string[] }[] = [];
  let failures = 0;
  const recorder = createAuditRecorder({
    store: {
      async insertEvents(tenantId, events) {
        if (options.fail?.(tenantId)) throw new Error('database is down');
        writes.push({ tenantId, ids: events.map((item) => item.id) });
      },
    },
    log: createSilentLogger(),
    failures: {
      inc: (count = 1) => {
        failures += count;
      },
    },
    flushIntervalMs: 20,
    maxBatchSize: 3,
    maxPending: options.maxPending ?? 100,
  });
  return { recorder, writes, failures: () => failures };
}

describe('Audit recorder', () => {
  it('writes a full batch at once and the rest after the interval, one write per tenant', async () => {
    const { recorder, writes } = recorderWith();
    for (const index of [1, 2, 3]) recorder.record(event(index));
    await Promise.resolve();
    await recorder.flush();
    expect(writes).toEqual([{ tenantId: 'org-a', ids: ['event-1', 'event-2', 'event-3'] }]);

    recorder.record(event(4, 'org-b'));
    recorder.record(event(5, null));
    recorder.record(event(6, 'org-b'));
    expect(writes).toHaveLength(1);
    recorder.record(event(7, 'org-b'));
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(writes.slice(1)).toEqual([
      { tenantId: 'org-b', ids: ['event-4', 'event-6'] },
      { tenantId: null, ids: ['event-5'] },
      { tenantId: 'org-b', ids: ['event-7'] },
    ]);
  });

  it('counts events it could not write and goes on with the others', async () => {
    const { recorder, writes, failures } = recorderWith({ fail: (tenantId) => tenantId === 'org-gone' });
    recorder.record(event(1, 'org-gone'));
    recorder.record(event(2, 'org-a'));
    await recorder.flush();
    expect(failures()).toBe(1);
    expect(writes).toEqual([{ tenantId: 'org-a', ids: ['event-2'] }]);
  });

  it('drops and counts events past its memory bound', async () => {
    const { recorder, failures } = recorderWith({ fail: () => true, maxPending: 2 });
    // The batch size is 3, so two queued events wait for the interval; the third is over the bound.
    for (const index of [1, 2, 3]) recorder.record(event(index));
    expect(failures()).toBe(1);
    await recorder.stop();
    expect(failures()).toBe(3);
  });
});
