import { describe, expect, it } from 'vitest';
import { createMemoryBus } from '../bus/index.js';
import { createManualClock } from '../clock/index.js';
import { createSilentLogger } from '../log/index.js';
import { createMetrics } from '../metrics/index.js';
import { createNodeReports, NODE_REPORTS_CHANNEL } from './node-reports.js';

describe('node reports', () => {
  it("keeps each node's last report, flags a silent node gone after the timeout, then forgets it", async () => {
    // Two nodes on one bus (in process: the bus delivers to every subscriber, as Redis would).
    const bus = createMemoryBus();
    const clock = createManualClock(new Date('2026-03-01T10:00:00Z'));
    const options = { bus, clock, log: createSilentLogger(), goneAfterMs: 15_000, forgetAfterMs: 60_000 };
    const a = createNodeReports({ ...options, metrics: createMetrics() });
    const bMetrics = createMetrics();
    const b = createNodeReports({ ...options, metrics: bMetrics });
    try {
      await a.start();
      await b.start();
      const jobs = bMetrics.counter({
        name: 'socle_jobs_finished_total',
        help: 'jobs',
        labelNames: ['queue'],
      });
      jobs.inc({ queue: 'default' }, 3);
      await b.publish();
      const seenByA = a.nodes();
      expect(seenByA.map((node) => node.node).sort()).toEqual([a.node, b.node].sort());
      expect(seenByA.find((node) => node.node === b.node)).toMatchObject({ jobsFinished: 3, gone: false });

      // Junk on the channel (another version, a stray publisher) is ignored.
      await bus.publish(NODE_REPORTS_CHANNEL, '{"node":"x"}');
      await bus.publish(NODE_REPORTS_CHANNEL, 'not json');
      expect(a.nodes()).toHaveLength(2);

      // B goes silent; A keeps reporting.
      clock.advance(16_000);
      await a.publish();
      expect(a.nodes().find((node) => node.node === b.node)).toMatchObject({ gone: true, ageMs: 16_000 });
      expect(a.nodes().find((node) => node.node === a.node)?.gone).toBe(false);
      clock.advance(60_000);
      await a.publish();
      expect(a.nodes().map((node) => node.node)).toEqual([a.node]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
