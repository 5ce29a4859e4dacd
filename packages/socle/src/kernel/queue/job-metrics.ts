import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { JOB_QUEUES } from './job-definition.js';

const DURATION_BUCKETS = [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900];

/** Prometheus series of the job engine, in the server's registry. */
export function createJobMetrics(registry: Registry) {
  const finished = new Counter({
    name: 'socle_jobs_finished_total',
    help: 'Job attempts finished in this process, by queue and outcome (completed or failed)',
    labelNames: ['queue', 'outcome'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'socle_job_duration_seconds',
    help: 'Time a job attempt ran in this process, by queue',
    labelNames: ['queue'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  type DepthRow = { queue: string; ready: number; oldestSeconds: number };
  let readDepth: (() => Promise<DepthRow[]>) | undefined;
  // Both gauges come from one query per scrape: the first collect reads, the second reuses it.
  let lastRead: { at: number; rows: Promise<DepthRow[]> } | undefined;
  const readOnce = (): Promise<DepthRow[]> => {
    if (readDepth === undefined) return Promise.resolve([]);
    const now = performance.now();
    if (lastRead === undefined || now - lastRead.at > 250)
      lastRead = { at: now, rows: readDepth().catch(() => []) };
    return lastRead.rows;
  };
  const gauge = (name: string, help: string, pick: (row: DepthRow) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['queue'] as const,
      registers: [registry],
      async collect() {
        if (readDepth === undefined) return;
        const rows = await readOnce();
        for (const queue of JOB_QUEUES) {
          const row = rows.find((candidate) => candidate.queue === queue);
          this.set({ queue }, row === undefined ? 0 : pick(row));
        }
      },
    });
  gauge('socle_jobs_ready', 'Jobs ready to run and waiting for a worker, by queue', (row) => row.ready);
  gauge(
    'socle_jobs_oldest_ready_age_seconds',
    'How long the oldest job ready to run has waited, by queue',
    (row) => row.oldestSeconds,
  );
  return {
    /** How long one job attempt ran. */
    observeDuration(queue: string, seconds: number) {
      duration.observe({ queue }, seconds);
    },
    /** Attempts finished, counted once per batch. */
    count(queue: string, completed: number, failed: number) {
      if (completed > 0) finished.inc({ queue, outcome: 'completed' }, completed);
      if (failed > 0) finished.inc({ queue, outcome: 'failed' }, failed);
    },
    /** Reads queue depth on every scrape until the returned function is called. */
    trackDepth(read: () => Promise<DepthRow[]>) {
      readDepth = read;
      return () => {
        readDepth = undefined;
      };
    },
  };
}

export type JobMetrics = ReturnType<typeof createJobMetrics>;
