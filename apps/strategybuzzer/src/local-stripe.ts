/**
 * A local Stripe to buy coins with, no Stripe account needed: Socle's fake Stripe (`socle/testing`)
 * on a fixed address with fixed test keys, whose checkout page pays and delivers the webhook to
 * the game. Run it beside the server (see the README, "Buying coins locally"):
 *
 *   node apps/strategybuzzer/dist/local-stripe.js [--port 12111] [--webhook http://localhost:8080/payments/webhooks/stripe]
 *
 * and start Socle with the settings it prints. Test mode only: it moves no money.
 */
import { parseArgs } from 'node:util';
import { startFakeStripe } from 'socle/testing';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '12111' },
    webhook: { type: 'string', default: 'http://localhost:8080/payments/webhooks/stripe' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65_535)
  throw new Error(`--port: not a port: ${values.port}`);

const stripe = await startFakeStripe({
  port,
  secretKey: 'sk_test_strategybuzzer_local',
  webhookSecret: 'whsec_strategybuzzer_local',
  webhookUrl: values.webhook,
});
process.stdout.write(
  [
    `Fake Stripe on ${stripe.url}; paid checkouts are delivered to ${values.webhook}.`,
    'Start Socle with:',
    `  PAYMENTS_STRIPE_API_URL=${stripe.url}`,
    `  PAYMENTS_STRIPE_SECRET_KEY=${stripe.secretKey}`,
    `  PAYMENTS_STRIPE_WEBHOOK_SECRETS=${stripe.webhookSecret}`,
    '',
  ].join('\n'),
);
const stop = () => void stripe.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
