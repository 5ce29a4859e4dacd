import { describe, expect, it } from 'vitest';
import { parseWorkload, WorkloadError } from '../../src/plan/workload.js';

const problemsOf = (text: string) => {
  try {
    parseWorkload(text);
  } catch (error) {
    if (error instanceof WorkloadError) return error.problems;
    throw error;
  }
  throw new Error('expected a WorkloadError');
};

describe('workload validation', () => {
  it('names every problem with its field path and the unit expected', () => {
    const problems = problemsOf(`
name: bad
currency: USD
phases:
  - name: one
    duration: 12
    users: { daily: 1000, concurrent: 100 }
    peakFactor: 3
    requestsPerUser: { read: 200 }
    jobs:
      - { name: transcribe, count: 4000/month, duration: 10 minutes, cpuBound: maybe }
    files:
      - { name: audio, count: 4000/month, size: 10 }
    colour: blue
`);
    const byPath = Object.fromEntries(problems.map((problem) => [problem.path, problem.message]));
    expect(byPath['phases[0].duration']).toMatch(/duration like/);
    expect(byPath['phases[0].users.concurrentShareOfDaily']).toMatch(/required when both/);
    expect(byPath['phases[0].requestsPerUser.read']).toMatch(/a rate like "4000\/month"/);
    expect(byPath['phases[0].jobs[0].cpuBound']).toMatch(/true or false/);
    expect(byPath['phases[0].files[0].size']).toMatch(/size like "10 MB"/);
    expect(byPath['phases[0].colour']).toMatch(/unknown field/);
    expect(problems).toHaveLength(6);
  });

  it('requires the top-level fields and reports YAML syntax errors as problems', () => {
    expect(problemsOf('name: x').map((problem) => problem.path)).toEqual(['currency', 'phases']);
    expect(problemsOf('name: [unclosed')[0]?.path).toBe('(file)');
  });

  it('accepts explicit conversion rates only in the report currency', () => {
    const problems = problemsOf(`
name: x
currency: EUR
rates: { USD: 0.9 USD }
phases: [{ name: p, duration: 1 month, users: { daily: 10 }, peakFactor: 1 }]
`);
    expect(problems).toEqual([{ path: 'rates.USD', message: 'expected one amount in EUR, e.g. "0.92 EUR"' }]);
  });

  it('checks voice, meetings, CDN and shards with their units', () => {
    const problems = problemsOf(`
name: x
currency: USD
targets: { databaseMaxStorage: 2 TB, databaseReadMissShare: 5 }
phases:
  - name: p
    duration: 1 month
    users: { daily: 10 }
    peakFactor: 1
    voice: { share: 20 %, bitrate: 32 kB, relayed: 20 % }
    meetings: [{ provider: zoom-pro, count: 4000/month }]
    cdn: { share: 0.95 }
    database: { shards: two }
`);
    const byPath = Object.fromEntries(problems.map((problem) => [problem.path, problem.message]));
    expect(byPath['phases[0].voice.bitrate']).toMatch(/bitrate like "32 kbit\/s"/);
    expect(byPath['phases[0].meetings[0].duration']).toBe('required');
    expect(byPath['phases[0].cdn.share']).toMatch(/percentage like/);
    expect(byPath['phases[0].database.shards']).toMatch(/whole number/);
    expect(byPath['targets.databaseReadMissShare']).toMatch(/percentage/);
    expect(problems).toHaveLength(5);
  });
});
