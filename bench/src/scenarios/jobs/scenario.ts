import type { WorkScenario } from '../../jobs-harness.js';

/**
 * 20k no-op jobs enqueued in one transaction and processed by workers already running, through
 * Socle's API and through pg-boss used directly; then enqueue→start latency on an idle queue.
 */
export const jobs: WorkScenario = {
  name: 'jobs',
  description:
    '20k no-op jobs enqueued and processed: Socle jobs API vs raw pg-boss; idle enqueue→start latency',
  dialects: ['postgres', 'pglite'],
  goal: 0.8,
  jobCount: 20_000,
  latencySamples: 100,
  socleRunner: new URL('./socle-runner.js', import.meta.url),
  baselineRunner: new URL('./baseline-runner.js', import.meta.url),
};
