/**
 * The seam between a booking and whatever takes the money. CryptoCare asks for an invoice when a
 * hold is placed and is told when it is settled or expired; it never talks to a Bitcoin processor
 * itself. The payments module (Swiss Bitcoin Pay, BTCPay) plugs in here: it creates the invoice and,
 * on a verified webhook, calls `booking.paymentSettled` / `booking.invoiceExpired`.
 * Without a gateway a hold simply waits for its expiry.
 */
export interface PaymentGateway {
  createInvoice(request: InvoiceRequest): Promise<PaymentInvoice>;
}

export interface InvoiceRequest {
  readonly appointmentId: string;
  readonly orgId: string;
  readonly patientId: string;
  readonly amountChfCents: number;
  readonly description: string;
  /** The hold's expiry: an invoice paid later is a late payment. */
  readonly expiresAt: Date;
}

/** What the patient's page shows: the QR code of `paymentUri`, with Lightning when offered. */
export interface PaymentInvoice {
  readonly invoiceId: string;
  /** BIP21 URI (`bitcoin:…?amount=…&lightning=…`). */
  readonly paymentUri: string;
  readonly amountSats: number;
  readonly expiresAt: Date;
  readonly qrSvg?: string;
}

/** What the payment side says it received for an invoice. */
export interface SettledPayment {
  readonly appointmentId: string;
  readonly orgId: string;
  readonly invoiceId: string;
  readonly paidChfCents: number;
  readonly paidAt: Date;
}
