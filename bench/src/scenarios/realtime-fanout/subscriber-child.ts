/**
 * A subscriber process of the fan-out scenario: opens its share of the sockets, joins the
 * benchmark channel on each, and measures what arrives. It runs away from the server (its own
 * process, pinned to another core by the harness), so the server's event loop and core do only
 * the server's work.
 *
 * The client is deliberately light and the same on both servers: raw `ws` sockets (no UTF-8
 * validation, no compression) that speak just enough of each protocol by hand to join a channel
 * and answer pings (Pusher 7 for Socle, Engine.IO 4 / Socket.IO 5 for the baseline). A delivery is
 * recognised by the `@` of its data and its two numbers are read from the bytes, without turning
 * the frame into a string or parsing JSON, so the client's cost per frame is a few microseconds
 * on both.
 */
import WebSocket from 'ws';
import {
  SUBSCRIBER_SETTINGS_ENV,
  type SubscriberCommand,
  type SubscriberReport,
  type SubscriberSettings,
} from './subscriber-protocol.js';

const HANDSHAKES_IN_FLIGHT = 200;
const MAX_HANDSHAKE_ATTEMPTS = 6;
const AT = 64; // '@'
const ZERO = 48; // '0'

const settings = JSON.parse(process.env[SUBSCRIBER_SETTINGS_ENV] ?? 'null') as SubscriberSettings | null;
if (settings === null) throw new Error(`${SUBSCRIBER_SETTINGS_ENV} is not set: started by the bench harness`);
const report = (message: SubscriberReport) => process.send?.(message);

// Latency phase: one slot per (message, socket); a count per message.
let latencies = new Float64Array(0);
let recorded = 0;
let perMessage = new Int32Array(0);
let measuringLatency = false;
// Throughput phase.
let deliveries = 0;
let lastAtNs = 0;
let drain: { expected: number; timer: NodeJS.Timeout } | undefined;

function finishDrain() {
  if (drain === undefined) return;
  clearTimeout(drain.timer);
  drain = undefined;
  report({ type: 'drained', deliveries, lastAtNs });
}

/** Reads `@<message>@<publishedAtNs>@` from the frame's bytes; false when the frame holds none. */
function onDelivery(data: Buffer): boolean {
  let index = data.indexOf(AT);
  if (index === -1) return false;
  const arrivedAtNs = Number(process.hrtime.bigint());
  let message = 0;
  for (index++; data[index] !== AT; index++) message = message * 10 + ((data[index] as number) - ZERO);
  let publishedAtNs = 0;
  for (index++; data[index] !== AT; index++)
    publishedAtNs = publishedAtNs * 10 + ((data[index] as number) - ZERO);
  if (measuringLatency) {
    if (recorded < latencies.length) latencies[recorded++] = (arrivedAtNs - publishedAtNs) / 1000;
    if (message < perMessage.length && ++(perMessage[message] as number) === sockets.length)
      report({ type: 'received', message });
  } else {
    deliveries++;
    lastAtNs = arrivedAtNs;
    if (drain !== undefined && deliveries >= drain.expected) finishDrain();
  }
  return true;
}

/** The handshake and keep-alive frames of each protocol; `joined` once the socket is in the channel. */
function controlFrame(socket: WebSocket, text: string, joined: () => void) {
  if (settings?.protocol === 'pusher') {
    if (text.includes('pusher:connection_established'))
      socket.send('{"event":"pusher:subscribe","data":{"channel":"bench"}}');
    else if (text.includes('pusher_internal:subscription_succeeded')) joined();
    else if (text.includes('"pusher:ping"')) socket.send('{"event":"pusher:pong","data":{}}');
    return;
  }
  if (text === '2') socket.send('3');
  else if (text.startsWith('0{')) socket.send('40');
  else if (text.startsWith('40')) socket.send('42["join","bench"]');
  else if (text.startsWith('42["joined"')) joined();
}

const sockets: WebSocket[] = [];
let retries = 0;

async function openAll({ url, protocol, localAddress, sockets: count }: SubscriberSettings) {
  const address =
    protocol === 'pusher'
      ? `${url.replace('http', 'ws')}/app/bench-key?protocol=7&client=bench&version=1`
      : `${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`;
  await new Promise<void>((resolve, reject) => {
    let started = 0;
    let joined = 0;
    // A handshake the server could not take in time (408 past its headers timeout, 503, a reset:
    // seen with 19,500 sockets opening on a machine at load 22) is tried again after a backoff,
    // as pusher-js and Socket.IO clients do; the retries are reported with the figures.
    const connect = (attempt: number) => {
      const socket = new WebSocket(address, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        localAddress,
      });
      let isJoined = false;
      socket.on('error', (error) => {
        if (isJoined || attempt >= MAX_HANDSHAKE_ATTEMPTS) return reject(error);
        retries++;
        socket.terminate();
        setTimeout(() => connect(attempt + 1), Math.min(4_000, 250 * 2 ** attempt));
      });
      socket.on('message', (data: Buffer) => {
        if (isJoined && onDelivery(data)) return;
        controlFrame(socket, data.toString(), () => {
          isJoined = true;
          sockets.push(socket);
          if (++joined === count) resolve();
          else start();
        });
      });
    };
    const start = () => {
      if (started >= count) return;
      started++;
      connect(1);
    };
    for (let index = 0; index < Math.min(HANDSHAKES_IN_FLIGHT, count); index++) start();
  });
}

process.on('message', (command: SubscriberCommand) => {
  switch (command.type) {
    case 'latency':
      latencies = new Float64Array(command.messages * sockets.length);
      recorded = 0;
      perMessage = new Int32Array(command.messages);
      measuringLatency = true;
      return;
    case 'throughput':
      measuringLatency = false;
      deliveries = 0;
      lastAtNs = 0;
      return;
    case 'drain':
      drain = { expected: command.expected, timer: setTimeout(finishDrain, command.timeoutMs) };
      if (deliveries >= command.expected) finishDrain();
      return;
    case 'report':
      report({ type: 'latencies', micros: Array.from(latencies.subarray(0, recorded)) });
      return;
  }
});
// The harness went away: nothing left to measure.
process.once('disconnect', () => process.exit(0));

openAll(settings).then(
  () => report({ type: 'ready', retries }),
  (error: unknown) => {
    report({ type: 'failed', error: String((error as Error).stack ?? error) });
    process.exit(1);
  },
);
