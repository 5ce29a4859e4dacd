import QRCode from 'qrcode';

/** Satoshis in one bitcoin. */
const SATS_PER_BTC = 100_000_000n;

/** An amount of minor units as the decimal a processor reads: 1250 EUR cents → "12.50". */
export function minorToDecimal(amount: bigint, currency: string): string {
  const digits =
    new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  if (digits === 0) return amount.toString();
  const text = amount.toString().padStart(digits + 1, '0');
  return `${text.slice(0, -digits)}.${text.slice(-digits)}`;
}

/** A BTC decimal ("0.00012345") in sats, exactly (no floating point). */
export function btcToSats(btc: string): bigint {
  const match = /^(\d+)(?:\.(\d{1,8}))?$/.exec(btc.trim());
  if (match === null) throw new Error(`not a BTC amount: ${btc}`);
  return BigInt(match[1] as string) * SATS_PER_BTC + BigInt((match[2] ?? '').padEnd(8, '0') || '0');
}

/** Sats as a BTC decimal without trailing zeros ("0.00012345", "1"). */
export function satsToBtc(sats: bigint): string {
  const whole = sats / SATS_PER_BTC;
  const fraction = (sats % SATS_PER_BTC).toString().padStart(8, '0').replace(/0+$/, '');
  return fraction === '' ? whole.toString() : `${whole}.${fraction}`;
}

/**
 * A BIP21 payment URI: `bitcoin:<address>?amount=<btc>&lightning=<bolt11>` (the unified form wallets
 * read for on-chain or Lightning), or `lightning:<bolt11>` when there is no address.
 */
export function bip21Uri(input: {
  address?: string | undefined;
  sats: bigint;
  lightning?: string | undefined;
  label?: string | undefined;
}): string {
  if (input.address === undefined) {
    if (input.lightning === undefined)
      throw new Error('a payment URI needs an address or a Lightning invoice');
    return `lightning:${input.lightning}`;
  }
  const query = new URLSearchParams({ amount: satsToBtc(input.sats) });
  if (input.label !== undefined) query.set('label', input.label);
  if (input.lightning !== undefined) query.set('lightning', input.lightning);
  return `bitcoin:${input.address}?${query.toString()}`;
}

/** The QR code of a payment URI, as PNG bytes or SVG text (error correction M, as wallets scan it). */
export async function paymentQrCode(uri: string, format: 'png' | 'svg'): Promise<Buffer | string> {
  const options = { errorCorrectionLevel: 'M' as const, margin: 2 };
  return format === 'png'
    ? QRCode.toBuffer(uri, { ...options, type: 'png', width: 360 })
    : QRCode.toString(uri, { ...options, type: 'svg' });
}
