import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'apps/*/src/**/*.test.ts',
      'apps/*/test/**/*.test.ts',
      'examples/*/src/**/*.test.ts',
      'examples/*/test/**/*.test.ts',
    ],
    // Hang guards, not performance checks (timings live in `npm run bench`): generous, because CI
    // and this 2-core machine run loaded, where a healthy multi-process test can take a minute.
    testTimeout: 90_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Vitest's default for `run` is one file per core minus one: a single file at a time on a
    // 2-core machine. Most files here wait on what they start (CLI processes, servers, Postgres,
    // sockets), so one per core keeps both cores busy.
    maxWorkers: Math.max(2, availableParallelism()),
    globalSetup: ['./vitest.global-setup.ts'],
    reporters: ['default'],
  },
});
