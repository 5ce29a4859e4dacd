/** Time-zone helpers over the platform's Intl (ICU's tz database, updated with Node). */

const formatters = new Map<string, Intl.DateTimeFormat>();

/** True when Intl knows the zone (`Europe/Zurich`, `UTC`). */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** The wall-clock time of `instant` in `timeZone`, as `YYYY-MM-DDTHH:mm` (what a patient reads). */
export function localTime(instant: Date, timeZone: string): string {
  let format = formatters.get(timeZone);
  if (format === undefined) {
    // Swedish writes dates as ISO 8601 does: 2026-03-29 09:00.
    format = new Intl.DateTimeFormat('sv-SE', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, format);
  }
  return format.format(instant).replace(' ', 'T');
}
