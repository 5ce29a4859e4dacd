import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * Tests that install packages as a user would (a fresh clone of the repository, a product made by
 * create-socle from packed tarballs) take a minute or more each: they run in CI (`CI` set, as
 * `.ci/run` does) or with `SOCLE_TEST_PACKAGING=1`, and are otherwise skipped with this reason in
 * their name.
 */
export const packagingTests: { readonly run: boolean; readonly skipped: string } =
  process.env.CI || process.env.SOCLE_TEST_PACKAGING === '1'
    ? { run: true, skipped: '' }
    : { run: false, skipped: ' (skipped: set SOCLE_TEST_PACKAGING=1; CI runs it)' };

/**
 * The environment of a command run as a user would in a terminal: without the `npm_*` variables
 * of the `npm test` running this test (an inherited `npm_config_*` would change what npm does), and
 * without the `node_modules/.bin` directories npm put on its PATH (`npx socle` must find the
 * command of the directory it runs in, not this repository's).
 */
export function userEnvironment(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env))
    if (!name.toLowerCase().startsWith('npm_')) env[name] = value;
  env.PATH = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((directory) => !directory.includes(`${path.sep}node_modules${path.sep}`))
    .join(path.delimiter);
  return { ...env, ...extra };
}

const execFileAsync = promisify(execFile);

/** Runs `command` in `cwd`; rejects with its output when it fails or outlives `timeoutMs`. */
export async function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv = userEnvironment(),
  timeoutMs = 300_000,
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileAsync(command, [...args], { cwd, env, timeout: timeoutMs, maxBuffer: 64 << 20 });
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string };
    throw new Error(
      `${command} ${args.join(' ')} failed in ${cwd}: ${failed.message}\n--- stdout ---\n${failed.stdout ?? ''}\n--- stderr ---\n${failed.stderr ?? ''}`,
    );
  }
}
