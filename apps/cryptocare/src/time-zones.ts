/** Time-zone helpers over the platform's Intl (ICU's tz database, updated with Node). */

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Zones Intl accepted: every search and slot listing checks the patient's (a formatter built each time otherwise). */
const knownZones = new Set<string>();

/** True when Intl knows the zone (`Europe/Zurich`, `UTC`). */
export function isTimeZone(timeZone: string): boolean {
  if (knownZones.has(timeZone)) return true;
  try {
    new Intl.DateTimeFormat('en', { timeZone });
  } catch {
    return false;
  }
  // Intl also accepts other spellings (any letter case): the set is emptied past a bound.
  if (knownZones.size >= 1_000) knownZones.clear();
  knownZones.add(timeZone);
  return true;
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
