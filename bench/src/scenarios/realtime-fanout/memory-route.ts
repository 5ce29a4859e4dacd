import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// The bench children are started without --expose-gc; enabling it at run time gives a full
// collection before each memory reading, so idle connections are measured, not garbage.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** Memory of this process after a full garbage collection, in bytes, and which process it is. */
export function measuredMemory(): { rss: number; heap: number; pid: number } {
  collectGarbage();
  collectGarbage();
  const usage = process.memoryUsage();
  return { rss: usage.rss, heap: usage.heapUsed + usage.external, pid: process.pid };
}
