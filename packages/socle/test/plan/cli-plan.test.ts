import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/cli.js';

const seed = fileURLToPath(new URL('../../../../plans/001-crm-ia-cabinets.yaml', import.meta.url));
const fixture = fileURLToPath(new URL('./fixture-calibration.json', import.meta.url));

/** Runs the CLI in-process and returns its exit code and output. */
async function run(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('socle plan', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'socle-plan-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('prints the plan, with the seed corrections, and exits 0', async () => {
    const result = await run('plan', seed, '--calibration', fixture);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('== 20 cabinets');
    expect(result.stdout).toContain('computed 667 h/month (WRONG)');
  });

  it('--json prints the plan as JSON', async () => {
    const result = await run('plan', seed, '--json', '--calibration', fixture);
    expect(result.code).toBe(0);
    const plan = JSON.parse(result.stdout) as { phases: { claims: { text: string; ok: boolean }[] }[] };
    expect(plan.phases[0]?.claims.find((claim) => claim.text.includes('Whisper'))?.ok).toBe(false);
  });

  it('--html writes a self-contained report: inline SVG charts, no script, no external resource', async () => {
    const file = join(directory, 'report.html');
    const result = await run('plan', seed, '--html', file, '--calibration', fixture);
    expect(result.code).toBe(0);
    const html = await readFile(file, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\/[^\s"<]*\.(js|css)/);
  });

  it('an invalid workload exits 2 naming every field, without a stack trace', async () => {
    const file = join(directory, 'bad.yaml');
    await writeFile(
      file,
      'name: bad\ncurrency: USD\nphases:\n  - name: p\n    duration: 12\n    users: { daily: 10 }\n    peakFactor: 1\n    egress: 200 GB\n',
    );
    const result = await run('plan', file, '--calibration', fixture);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('phases[0].duration: expected a duration like');
    expect(result.stderr).toContain('phases[0].egress: expected a volume per period like "200 GB/month"');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('a usage error (no file) exits 2', async () => {
    expect((await run('plan')).code).toBe(2);
  });
});
