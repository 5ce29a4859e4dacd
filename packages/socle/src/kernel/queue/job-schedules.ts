import type { PgBoss } from 'pg-boss';
import type { JobDefinition } from './job-definition.js';
import type { JobRows } from './job-rows.js';

/** Cron jobs: one pg-boss schedule per declared `cron`; schedules no module declares any more go. */
export async function registerSchedules(
  instance: PgBoss,
  definitions: ReadonlyMap<string, JobDefinition>,
  rows: JobRows,
): Promise<void> {
  const wanted = new Set<string>();
  for (const [name, definition] of definitions) {
    if (definition.cron === undefined) continue;
    const queue = definition.queue ?? 'default';
    wanted.add(`${queue}/${name}`);
    // An occurrence is an enqueue with an empty payload, outside any scope.
    const { data, ...sendOptions } = rows.jobRow(name, definition, {}, {}, undefined);
    await instance.schedule(queue, definition.cron, data, { ...sendOptions, key: name, tz: 'UTC' });
  }
  for (const schedule of await instance.getSchedules()) {
    if (!wanted.has(`${schedule.name}/${schedule.key}`))
      await instance.unschedule(schedule.name, schedule.key);
  }
}
