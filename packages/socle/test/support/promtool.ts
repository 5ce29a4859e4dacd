import { execFileSync, spawnSync } from 'node:child_process';

/**
 * Checks a Prometheus exposition with `promtool check metrics` (which exits non-zero on any
 * problem; execFileSync then throws with its output). CI installs promtool (.ci/run) and a missing
 * one fails there; a developer machine without it skips only this check, and says so.
 */
export function checkWithPromtool(exposition: string): 'checked' | 'promtool missing' {
  const found = spawnSync('promtool', ['--version']);
  if (found.error !== undefined || found.status !== 0) {
    if (process.env.CI)
      throw new Error('promtool is required in CI (Debian package "prometheus"; .ci/run installs it)');
    return 'promtool missing';
  }
  execFileSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  return 'checked';
}
