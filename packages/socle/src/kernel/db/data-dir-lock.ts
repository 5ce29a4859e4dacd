import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { SocleError } from '../errors/index.js';

/** Directories this process holds; a lock file naming our own pid is only stale if not in here. */
const held = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<directory>/socle.pid` so two processes never open the same embedded database (PGlite
 * has no cross-process locking; two writers would corrupt it). A lock left by a dead process is
 * taken over. Returns the release function.
 */
export function lockDataDirectory(directory: string): () => void {
  const file = path.join(directory, 'socle.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const descriptor = openSync(file, 'wx');
      writeSync(descriptor, String(process.pid));
      closeSync(descriptor);
      held.add(file);
      return () => {
        held.delete(file);
        rmSync(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(readFileSync(file, 'utf8'), 10);
      // In a container every run may be pid 1: our own pid is a live owner only if we hold it.
      const inUse = owner === process.pid ? held.has(file) : Number.isInteger(owner) && isAlive(owner);
      if (inUse) {
        throw new SocleError(
          'db.data_dir_in_use',
          `The embedded database in ${directory} is in use by process ${owner}. Stop it first, or set DATA_DIR to another directory.`,
          { details: { pid: owner, directory } },
        );
      }
      rmSync(file, { force: true });
    }
  }
  throw new SocleError('db.data_dir_in_use', `Cannot take the lock file ${file}`);
}
