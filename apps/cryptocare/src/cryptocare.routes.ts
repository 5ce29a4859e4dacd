import { type HttpServer, OrgHeaders, requireOrgRole, requireUser, routeSecurity, Type } from 'socle';
import type { BookingService } from './booking.service.js';
import type { Appointment } from './booking.store.js';
import { cryptocareErrors } from './cryptocare.errors.js';
import type { DirectoryService } from './directory.service.js';
import type { FreeSlot } from './directory.store.js';
import type { NoteService } from './notes.service.js';
import { isTimeZone, localTime } from './time-zones.js';

const Uuid = Type.String({ format: 'uuid' });
const Time = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'HH:MM, local time' });
const Day = Type.String({ format: 'date' });
const Instant = Type.String({ format: 'date-time' });
const Tag = Type.String({ minLength: 1, maxLength: 60, pattern: '^[a-z0-9][a-z0-9_-]*$' });

const Slot = Type.Object({ startsAt: Instant, endsAt: Instant, local: Type.String() });
const AppointmentView = Type.Object({
  id: Uuid,
  orgId: Uuid,
  professionalId: Uuid,
  patientId: Type.Union([Uuid, Type.Null()]),
  startsAt: Instant,
  endsAt: Instant,
  status: Type.String(),
  holdExpiresAt: Type.Union([Instant, Type.Null()]),
  priceChfCents: Type.Integer(),
  invoiceId: Type.Union([Type.String(), Type.Null()]),
  paymentFlag: Type.Union([Type.String(), Type.Null()]),
  /** An underpaid invoice: sats received and sats missing. */
  receivedSats: Type.Union([Type.Integer(), Type.Null()]),
  missingSats: Type.Union([Type.Integer(), Type.Null()]),
  zoomJoinUrl: Type.Union([Type.String(), Type.Null()]),
});

const presentSlot = (slot: FreeSlot, timeZone: string) => ({
  startsAt: slot.startsAt.toISOString(),
  endsAt: slot.endsAt.toISOString(),
  local: localTime(slot.startsAt, timeZone),
});
const presentAppointment = (appointment: Appointment) => ({
  id: appointment.id,
  orgId: appointment.orgId,
  professionalId: appointment.professionalId,
  patientId: appointment.patientId,
  startsAt: appointment.startsAt.toISOString(),
  endsAt: appointment.endsAt.toISOString(),
  status: appointment.status,
  holdExpiresAt: appointment.holdExpiresAt?.toISOString() ?? null,
  priceChfCents: appointment.priceChfCents,
  invoiceId: appointment.invoiceId,
  paymentFlag: appointment.paymentFlag,
  receivedSats: appointment.receivedSats,
  missingSats: appointment.missingSats,
  zoomJoinUrl: appointment.zoomJoinUrl,
});

/** The patient's zone (slots are shown in it), checked: an unknown zone is a 400 naming it. */
const zoneOf = (timeZone: string | undefined) => {
  const zone = timeZone ?? 'Europe/Zurich';
  if (!isTimeZone(zone)) throw cryptocareErrors.unknownTimeZone(zone);
  return zone;
};

const encodeCursor = (cursor: { distanceMeters: number; id: string }) =>
  Buffer.from(JSON.stringify([cursor.distanceMeters, cursor.id])).toString('base64url');
function decodeCursor(text: string) {
  try {
    const [distanceMeters, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as [
      unknown,
      unknown,
    ];
    if (typeof distanceMeters === 'number' && typeof id === 'string' && /^[0-9a-f-]{36}$/.test(id))
      return { distanceMeters, id };
  } catch {}
  throw cryptocareErrors.invalidCursor();
}

/** Thin routes: schema → service call → reply. */
export function registerCryptoCareRoutes(
  app: HttpServer,
  services: { directory: DirectoryService; booking: BookingService; notes: NoteService },
): void {
  const { directory, booking, notes } = services;
  const tags = ['cryptocare'];
  const user = routeSecurity.user;
  const member = routeSecurity.memberOrApiKey;

  app.put(
    '/cryptocare/practice',
    {
      schema: {
        tags,
        security: member,
        summary: 'Create or update the practice profile of the current organization (admin)',
        headers: OrgHeaders,
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200 }),
            address: Type.String({ minLength: 1, maxLength: 500 }),
            latitude: Type.Number({ minimum: -90, maximum: 90 }),
            longitude: Type.Number({ minimum: -180, maximum: 180 }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const org = requireOrgRole(request, 'admin');
      await directory.upsertPractice({ orgId: org.orgId, ...request.body }, org.userId);
      return reply.send(await directory.practice(org.orgId));
    },
  );

  app.post(
    '/cryptocare/professionals',
    {
      schema: {
        tags,
        security: user,
        summary: 'Create your professional profile',
        body: Type.Object(
          {
            displayName: Type.String({ minLength: 1, maxLength: 200 }),
            specialties: Type.Array(Tag, { minItems: 1, maxItems: 20, uniqueItems: true }),
            languages: Type.Array(Type.String({ pattern: '^[a-z]{2}$' }), {
              minItems: 1,
              maxItems: 20,
              uniqueItems: true,
            }),
            priceChfCents: Type.Integer({ minimum: 100, maximum: 10_000_000 }),
            timeZone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            slotMinutes: Type.Optional(Type.Integer({ minimum: 5, maximum: 240 })),
            bufferMinutes: Type.Optional(Type.Integer({ minimum: 0, maximum: 120 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      const body = request.body;
      const profile = await directory.createProfessional(userId, {
        ...body,
        timeZone: body.timeZone ?? 'Europe/Zurich',
        slotMinutes: body.slotMinutes ?? 30,
        bufferMinutes: body.bufferMinutes ?? 0,
      });
      return reply.code(201).send(profile);
    },
  );

  app.post(
    '/cryptocare/practice/professionals',
    {
      schema: {
        tags,
        security: member,
        summary: 'Practise in the current organization (a member with a professional profile)',
        headers: OrgHeaders,
      },
    },
    async (request) => {
      const org = requireOrgRole(request, 'member');
      return directory.joinPractice({ orgId: org.orgId, userId: org.userId });
    },
  );

  app.put(
    '/cryptocare/professionals/me/hours',
    {
      schema: {
        tags,
        security: user,
        summary: 'Replace your weekly opening hours (local time in your zone; ISO weekday, 1 = Monday)',
        body: Type.Object(
          {
            hours: Type.Array(
              Type.Object(
                { weekday: Type.Integer({ minimum: 1, maximum: 7 }), opens: Time, closes: Time },
                { additionalProperties: false },
              ),
              { maxItems: 100 },
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      for (const [index, range] of request.body.hours.entries())
        if (range.closes <= range.opens) throw cryptocareErrors.closesBeforeOpens(`hours/${index}`);
      await directory.setWeeklyHours(requireUser(request).userId, request.body.hours);
      return reply.code(204).send();
    },
  );

  app.put(
    '/cryptocare/professionals/me/exceptions/:day',
    {
      schema: {
        tags,
        security: user,
        summary: "Set a day's own hours: none closes the day (a holiday)",
        params: Type.Object({ day: Day }),
        body: Type.Object(
          {
            hours: Type.Array(Type.Object({ opens: Time, closes: Time }, { additionalProperties: false }), {
              maxItems: 20,
            }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      await directory.setDayException(requireUser(request).userId, request.params.day, request.body.hours);
      return reply.code(204).send();
    },
  );

  app.delete(
    '/cryptocare/professionals/me/exceptions/:day',
    {
      schema: {
        tags,
        security: user,
        summary: 'Back to the weekly hours on that day',
        params: Type.Object({ day: Day }),
      },
    },
    async (request, reply) => {
      await directory.clearDayException(requireUser(request).userId, request.params.day);
      return reply.code(204).send();
    },
  );

  app.get(
    '/cryptocare/search',
    {
      schema: {
        tags,
        security: user,
        summary: 'Professionals near a point, nearest first, with their next free slots',
        querystring: Type.Object(
          {
            latitude: Type.Number({ minimum: -90, maximum: 90 }),
            longitude: Type.Number({ minimum: -180, maximum: 180 }),
            radiusKm: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 500 })),
            specialty: Type.Optional(Tag),
            language: Type.Optional(Type.String({ pattern: '^[a-z]{2}$' })),
            maxPriceChf: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000 })),
            timeZone: Type.Optional(Type.String({ maxLength: 64 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })),
            cursor: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      requireUser(request);
      const query = request.query;
      const timeZone = zoneOf(query.timeZone);
      const { results, next } = await directory.search(
        {
          latitude: query.latitude,
          longitude: query.longitude,
          radiusKm: query.radiusKm ?? 50,
          specialty: query.specialty,
          language: query.language,
          maxPriceChfCents: query.maxPriceChf === undefined ? undefined : Math.round(query.maxPriceChf * 100),
          after: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
          limit: query.limit ?? 20,
        },
        3,
      );
      return {
        results: results.map(({ nextSlots, availabilityVersion: _, distanceMeters, ...row }) => ({
          ...row,
          distanceKm: Math.round(distanceMeters / 100) / 10,
          nextSlots: nextSlots.map((slot) => presentSlot(slot, timeZone)),
        })),
        nextCursor: next === undefined ? null : encodeCursor(next),
      };
    },
  );

  app.get(
    '/cryptocare/professionals/:id',
    {
      schema: {
        tags,
        security: user,
        summary: 'A professional, their practices and hours',
        params: Type.Object({ id: Uuid }),
      },
    },
    async (request) => {
      requireUser(request);
      const { professional, practices, schedule } = await directory.professionalPage(request.params.id);
      const { availabilityVersion: _, userId: __, ...profile } = professional;
      return { ...profile, practices, schedule };
    },
  );

  app.get(
    '/cryptocare/professionals/:id/slots',
    {
      schema: {
        tags,
        security: user,
        summary: "A professional's free slots between two instants, shown in your zone",
        params: Type.Object({ id: Uuid }),
        querystring: Type.Object(
          { from: Instant, to: Instant, timeZone: Type.Optional(Type.String({ maxLength: 64 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ slots: Type.Array(Slot) }) },
      },
    },
    async (request) => {
      requireUser(request);
      const timeZone = zoneOf(request.query.timeZone);
      const slots = await directory.freeSlots(
        request.params.id,
        new Date(request.query.from),
        new Date(request.query.to),
      );
      return { slots: slots.map((slot) => presentSlot(slot, timeZone)) };
    },
  );

  app.post(
    '/cryptocare/appointments',
    {
      schema: {
        tags,
        security: user,
        summary: 'Hold a slot until it is paid (409 cryptocare.slot_taken when it is not free)',
        body: Type.Object(
          { professionalId: Uuid, startsAt: Instant, orgId: Type.Optional(Uuid) },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      const { appointment, invoice } = await booking.hold(userId, {
        professionalId: request.body.professionalId,
        startsAt: new Date(request.body.startsAt),
        orgId: request.body.orgId,
      });
      return reply.code(201).send({
        appointment: presentAppointment(appointment),
        invoice: invoice === undefined ? null : { ...invoice, expiresAt: invoice.expiresAt.toISOString() },
      });
    },
  );

  app.get(
    '/cryptocare/appointments',
    {
      schema: {
        tags,
        security: user,
        summary: 'Your appointments',
        querystring: Type.Object(
          { from: Type.Optional(Instant), to: Type.Optional(Instant) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ appointments: Type.Array(AppointmentView) }) },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const appointments = await booking.list(
        { userId },
        { from: new Date(request.query.from ?? 0), to: new Date(request.query.to ?? '9999-01-01') },
      );
      return { appointments: appointments.map(presentAppointment) };
    },
  );

  app.get(
    '/cryptocare/appointments/:id',
    {
      schema: {
        tags,
        security: user,
        summary: 'One of your appointments',
        params: Type.Object({ id: Uuid }),
        response: { 200: AppointmentView },
      },
    },
    async (request) =>
      presentAppointment(await booking.get({ userId: requireUser(request).userId }, request.params.id)),
  );

  app.post(
    '/cryptocare/appointments/:id/cancel',
    {
      schema: {
        tags,
        security: user,
        summary: 'Cancel your appointment (a confirmed one until the notice period)',
        params: Type.Object({ id: Uuid }),
        response: { 200: AppointmentView },
      },
    },
    async (request) =>
      presentAppointment(await booking.cancel({ userId: requireUser(request).userId }, request.params.id)),
  );

  app.post(
    '/cryptocare/appointments/:id/reschedule',
    {
      schema: {
        tags,
        security: user,
        summary: 'Move your appointment to another free slot of the same professional',
        params: Type.Object({ id: Uuid }),
        body: Type.Object({ startsAt: Instant }, { additionalProperties: false }),
        response: { 200: AppointmentView },
      },
    },
    async (request) =>
      presentAppointment(
        await booking.reschedule(
          { userId: requireUser(request).userId },
          request.params.id,
          new Date(request.body.startsAt),
        ),
      ),
  );

  app.get(
    '/cryptocare/agenda',
    {
      schema: {
        tags,
        security: member,
        summary: "The practice's appointments (member)",
        headers: OrgHeaders,
        querystring: Type.Object(
          { from: Instant, to: Instant, professionalId: Type.Optional(Uuid) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ appointments: Type.Array(AppointmentView) }) },
      },
    },
    async (request) => {
      const org = requireOrgRole(request, 'member');
      const appointments = await booking.list(
        { userId: org.userId, orgId: org.orgId },
        {
          from: new Date(request.query.from),
          to: new Date(request.query.to),
          professionalId: request.query.professionalId,
        },
      );
      return { appointments: appointments.map(presentAppointment) };
    },
  );

  app.post(
    '/cryptocare/agenda/:id/cancel',
    {
      schema: {
        tags,
        security: member,
        summary: 'Cancel an appointment of the practice (member), at any time before it starts',
        headers: OrgHeaders,
        params: Type.Object({ id: Uuid }),
        response: { 200: AppointmentView },
      },
    },
    async (request) => {
      const org = requireOrgRole(request, 'member');
      return presentAppointment(
        await booking.cancel({ userId: org.userId, orgId: org.orgId }, request.params.id),
      );
    },
  );

  app.post(
    '/cryptocare/agenda/:id/notes',
    {
      schema: {
        tags,
        security: member,
        summary: 'Write a consultation note (member); sealed with the practice key',
        headers: OrgHeaders,
        params: Type.Object({ id: Uuid }),
        body: Type.Object(
          { body: Type.String({ minLength: 1, maxLength: 50_000 }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const org = requireOrgRole(request, 'member');
      const note = await notes.write(
        { orgId: org.orgId, userId: org.userId },
        request.params.id,
        request.body.body,
      );
      return reply.code(201).send({ ...note, createdAt: note.createdAt.toISOString() });
    },
  );

  app.get(
    '/cryptocare/agenda/:id/notes',
    {
      schema: {
        tags,
        security: member,
        summary: "An appointment's consultation notes (member); each read is logged",
        headers: OrgHeaders,
        params: Type.Object({ id: Uuid }),
      },
    },
    async (request) => {
      const org = requireOrgRole(request, 'member');
      const read = await notes.read({ orgId: org.orgId, userId: org.userId }, request.params.id);
      return { notes: read.map((note) => ({ ...note, createdAt: note.createdAt.toISOString() })) };
    },
  );
}
