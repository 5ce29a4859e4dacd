import { SocleError } from 'socle';

/**
 * CryptoCare's errors: stable codes `cryptocare.<reason>`, rendered as problem+json by Socle's one
 * error handler. Services throw these; routes never build HTTP answers themselves.
 */
export const cryptocareErrors = {
  slotTaken: (professionalId: string, startsAt: Date) =>
    new SocleError('cryptocare.slot_taken', 'This slot was just booked by someone else; pick another one', {
      status: 409,
      details: { professionalId, startsAt: startsAt.toISOString() },
    }),
  notASlot: (professionalId: string, startsAt: Date) =>
    new SocleError(
      'cryptocare.not_a_slot',
      `${startsAt.toISOString()} is not the start of one of this professional's slots`,
      { status: 422, details: { professionalId, startsAt: startsAt.toISOString() } },
    ),
  slotInPast: (startsAt: Date) =>
    new SocleError('cryptocare.slot_in_past', 'This slot has already started', {
      status: 422,
      details: { startsAt: startsAt.toISOString() },
    }),
  professionalNotFound: (id: string) =>
    new SocleError('cryptocare.professional_not_found', `No professional ${id}`, {
      status: 404,
      details: { id },
    }),
  practiceRequired: (professionalId: string, practices: readonly string[]) =>
    new SocleError(
      'cryptocare.practice_required',
      'This professional works in several practices: name one (orgId)',
      { status: 422, details: { professionalId, practices } },
    ),
  notInPractice: (professionalId: string, orgId: string) =>
    new SocleError('cryptocare.not_in_practice', `Professional ${professionalId} does not work in ${orgId}`, {
      status: 422,
      details: { professionalId, orgId },
    }),
  practiceNotFound: (orgId: string) =>
    new SocleError(
      'cryptocare.practice_not_found',
      `Organization ${orgId} has no practice profile yet (PUT /cryptocare/practice)`,
      { status: 404, details: { orgId } },
    ),
  alreadyProfessional: () =>
    new SocleError('cryptocare.already_professional', 'You already have a professional profile', {
      status: 409,
    }),
  notAProfessional: () =>
    new SocleError(
      'cryptocare.not_a_professional',
      'You have no professional profile (POST /cryptocare/professionals)',
      {
        status: 403,
      },
    ),
  unknownTimeZone: (timeZone: string) =>
    new SocleError('cryptocare.unknown_time_zone', `Unknown time zone ${JSON.stringify(timeZone)}`, {
      status: 400,
      details: { timeZone },
    }),
  overlappingHours: (weekday: number) =>
    new SocleError('cryptocare.overlapping_hours', `Opening hours overlap on ISO weekday ${weekday}`, {
      status: 422,
      details: { weekday },
    }),
  closesBeforeOpens: (field: string) =>
    new SocleError('cryptocare.closes_before_opens', `${field}: closes before it opens`, {
      status: 400,
      details: { field },
    }),
  appointmentNotFound: (id: string) =>
    new SocleError('cryptocare.appointment_not_found', `No appointment ${id} of yours`, {
      status: 404,
      details: { id },
    }),
  notCancellable: (id: string, status: string) =>
    new SocleError('cryptocare.not_cancellable', `Appointment ${id} is ${status}`, {
      status: 409,
      details: { id, status },
    }),
  tooLateToChange: (id: string, noticeHours: number) =>
    new SocleError(
      'cryptocare.too_late',
      `Appointment ${id} starts in less than ${noticeHours} hours: ask the practice to change it`,
      { status: 409, details: { id, noticeHours } },
    ),
  zoomHostsExhausted: (day: string, hosts: number) =>
    new SocleError(
      'cryptocare.zoom_hosts_exhausted',
      `Every Zoom host (${hosts}) has made its meetings for ${day}: add hosts to CRYPTOCARE_ZOOM_HOSTS`,
      { status: 503, details: { day, hosts } },
    ),
  invalidCursor: () =>
    new SocleError('cryptocare.invalid_cursor', 'The cursor is not one this search returned', {
      status: 400,
    }),
};
