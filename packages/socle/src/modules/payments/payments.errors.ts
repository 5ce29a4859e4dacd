import { SocleError } from '../../kernel/index.js';

const field = (path: string, message: string) => [{ field: path, message }];

/** Errors of payments: stable codes clients branch on. Nothing is stored when one is thrown. */
export const paymentsErrors = {
  productNotFound: (productId: string, path = 'body/productId') =>
    new SocleError('payments.product_not_found', `Product ${productId} is not in the catalog`, {
      status: 404,
      details: { productId },
      errors: field(path, 'is not a product of the catalog'),
    }),
  providerNotFound: (provider: string, path = 'params/provider') =>
    new SocleError('payments.provider_not_found', `Payment provider ${provider} is not enabled`, {
      status: 404,
      details: { provider },
      errors: field(path, 'is not an enabled payment provider'),
    }),
  paymentNotFound: (paymentId: string) =>
    new SocleError('payments.payment_not_found', `Payment ${paymentId} does not exist`, {
      status: 404,
      details: { paymentId },
      errors: field('paymentId', 'is not a payment of this organization'),
    }),
  /** No failed event of this provider and id (in this organization), or it was never received. */
  eventNotFound: (provider: string, eventId: string) =>
    new SocleError('payments.event_not_found', `No failed ${provider} event ${eventId}`, {
      status: 404,
      details: { provider, eventId },
      errors: field('params/eventId', 'is not a failed event of this organization'),
    }),
  /** A retry of an event that is applied already (a redelivery or a retry succeeded first). */
  eventAlreadyApplied: (provider: string, eventId: string) =>
    new SocleError('payments.event_already_applied', `The ${provider} event ${eventId} is applied already`, {
      status: 409,
      details: { provider, eventId },
      errors: field('params/eventId', 'is applied already: nothing to retry'),
    }),
  invalidInput: (code: string, path: string, message: string) =>
    new SocleError(code, `${path} ${message}`, { status: 400, errors: field(path, message) }),
  /** A webhook whose signature, secret or timestamp does not verify: 400, nothing stored. */
  invalidSignature: (provider: string, reason: string) =>
    new SocleError('payments.invalid_signature', `The ${provider} webhook does not verify: ${reason}`, {
      status: 400,
      details: { provider },
      errors: field('headers', reason),
    }),
  /**
   * A push whose sender is not proven: no OIDC bearer token, or one not signed by Google, for
   * another audience, or of another service account (Pub/Sub push authentication).
   */
  unauthenticatedPush: (provider: string, reason: string) =>
    new SocleError('payments.unauthenticated_push', `The ${provider} push is not authenticated: ${reason}`, {
      status: 401,
      details: { provider },
      errors: field('headers/authorization', reason),
    }),
  /** A verified webhook of a type payments does not handle, or about an object it never created. */
  unknownEvent: (provider: string, reason: string) =>
    new SocleError('payments.unknown_event', `The ${provider} event is not one payments handles: ${reason}`, {
      status: 400,
      details: { provider },
      errors: field('body', reason),
    }),
  notRefundable: (paymentId: string, reason: string) =>
    new SocleError('payments.not_refundable', `Payment ${paymentId} cannot be refunded: ${reason}`, {
      status: 409,
      details: { paymentId },
    }),
  noCustomer: () =>
    new SocleError('payments.no_customer', 'You have no customer account at this provider yet', {
      status: 404,
    }),
  orderExists: (orderId: string) =>
    new SocleError('payments.order_exists', `Order ${orderId} already has a payment with other terms`, {
      status: 409,
      details: { orderId },
      errors: field('body/orderId', 'already has a payment with other terms'),
    }),
  /** The provider could not be reached or is throttling us: try again later. */
  providerUnavailable: (provider: string, operation: string, status: number | undefined) =>
    new SocleError(
      'payments.provider_unavailable',
      `${provider} did not answer ${operation}; try again later`,
      {
        status: status === 429 ? 503 : 502,
        details: { provider, operation, ...(status === undefined ? {} : { providerStatus: status }) },
      },
    ),
  /** The provider refused what we asked (its message is kept, without secrets). */
  providerRejected: (provider: string, operation: string, status: number | undefined, message: string) =>
    new SocleError(
      'payments.provider_rejected',
      `${provider} refused ${operation}: ${message.slice(0, 300)}`,
      {
        status: 502,
        details: { provider, operation, ...(status === undefined ? {} : { providerStatus: status }) },
      },
    ),
  /** A store purchase another person (or organization) claimed first, or bound to another buyer. */
  purchaseNotYours: (provider: string) =>
    new SocleError('payments.purchase_not_yours', `This ${provider} purchase belongs to someone else`, {
      status: 409,
      details: { provider },
      errors: field('body', 'is a purchase of another account'),
    }),
  /** A store purchase refunded or revoked before it was ever credited: nothing to credit. */
  purchaseRevoked: (provider: string) =>
    new SocleError('payments.purchase_revoked', `This ${provider} purchase was refunded or revoked`, {
      status: 409,
      details: { provider },
      errors: field('body', 'was refunded or revoked by the store'),
    }),
  notConfigured: (provider: string, setting: string) =>
    new SocleError('payments.not_configured', `Payment provider ${provider} needs ${setting}`, {
      status: 500,
      details: { provider, setting },
    }),
  tenantRequired: () =>
    new SocleError('payments.tenant_required', 'Payments act in an organization (X-Org-Id)', {
      status: 400,
      errors: field('headers/x-org-id', 'is required'),
    }),
};
