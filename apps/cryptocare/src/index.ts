/** CryptoCare, the reference app: what an app or another module may import from it. */
export type {
  AppointmentEvent,
  BookingService,
  InvoiceRequest,
  PaymentInvoice,
  SettledPayment,
} from './booking.service.js';
export type { Appointment, AppointmentStatus } from './booking.store.js';
export { cryptocareErrors } from './cryptocare.errors.js';
export {
  type CryptoCareModule,
  type CryptoCareOptions,
  type CryptoCareServices,
  type CryptoCareSettings,
  createCryptoCareModule,
  cryptocareSettings,
} from './cryptocare.module.js';
export type { FreeSlot, Practice, Professional } from './directory.store.js';
