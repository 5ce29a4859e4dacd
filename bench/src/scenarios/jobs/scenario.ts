import {
  formatWorkProfiles,
  formatWorkResult,
  runWorkScenario,
  type WorkScenario,
} from '../../jobs-harness.js';
import type { CustomScenario } from '../../scenario.js';

/**
 * 20k no-op jobs enqueued in one transaction and processed by workers already running, through
 * Socle's API and through pg-boss used directly; then enqueue→start latency on an idle queue.
 */
const workload: WorkScenario = {
  name: 'jobs',
  description:
    '20k no-op jobs enqueued and processed: Socle jobs API vs raw pg-boss; idle enqueue→start latency',
  dialects: ['postgres', 'pglite'],
  goal: 0.8,
  jobCount: 20_000,
  // 500 samples, so the p99 is the fifth worst sample rather than the worst one (as with 100).
  latencySamples: 500,
  latencyGoalMs: 50,
  socleRunner: new URL('./socle-runner.js', import.meta.url),
  baselineRunner: new URL('./baseline-runner.js', import.meta.url),
};

/** A custom scenario: a fresh database per round, since a round's completed jobs slow the next. */
export const jobs: CustomScenario = {
  kind: 'custom',
  name: workload.name,
  description: workload.description,
  dialects: workload.dialects,
  createsDatabases: true,
  async run(dialect, settings) {
    const result = await runWorkScenario(workload, dialect, settings);
    const profiles = await formatWorkProfiles(result);
    const text = profiles === '' ? formatWorkResult(result) : `${formatWorkResult(result)}\n${profiles}`;
    return { scenario: workload.name, dialect, text, figures: result };
  },
};
