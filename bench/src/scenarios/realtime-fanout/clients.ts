import { createHash, createHmac } from 'node:crypto';
import WebSocket from 'ws';
import { BENCH_APP } from './bench-app.js';

/**
 * Subscribers of the fan-out scenario: raw `ws` sockets speaking each server's protocol by hand
 * (Pusher 7 for Socle, Engine.IO 4 / Socket.IO 5 for the baseline), so the client side costs the
 * same few microseconds per frame on both. Each counts frames of the benchmark event and reports
 * their arrival time.
 */
export interface Subscribers {
  /** Called with the arrival time (performance.now()) of every benchmark event on any socket. */
  onDelivery: (at: number) => void;
  close(): Promise<void>;
}

/** Opens `count` sockets, `concurrency` handshakes at a time; resolves when all joined the channel. */
async function openAll(count: number, open: (joined: () => void, fail: (error: Error) => void) => WebSocket) {
  const sockets: WebSocket[] = [];
  const concurrency = 200;
  let next = 0;
  await new Promise<void>((resolve, reject) => {
    let joined = 0;
    const start = () => {
      if (next >= count) return;
      next++;
      const socket = open(() => {
        joined++;
        if (joined === count) resolve();
        else start();
      }, reject);
      sockets.push(socket);
    };
    for (let index = 0; index < Math.min(concurrency, count); index++) start();
  });
  return sockets;
}

export async function openPusherSubscribers(baseUrl: string, count: number): Promise<Subscribers> {
  const url = `${baseUrl.replace('http', 'ws')}/app/${BENCH_APP.key}?protocol=7&client=bench&version=1`;
  const subscribers: Subscribers = { onDelivery: () => {}, close: async () => {} };
  const sockets = await openAll(count, (joined, fail) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    socket.on('error', fail);
    socket.on('message', (raw) => {
      const text = raw.toString();
      // The benchmark event is checked by prefix: parsing JSON would be most of the client's cost.
      if (text.startsWith('{"event":"bench"')) subscribers.onDelivery(performance.now());
      else if (text.includes('pusher:connection_established'))
        socket.send('{"event":"pusher:subscribe","data":{"channel":"bench"}}');
      else if (text.includes('pusher_internal:subscription_succeeded')) joined();
      else if (text.includes('"pusher:ping"')) socket.send('{"event":"pusher:pong","data":{}}');
    });
    return socket;
  });
  subscribers.close = () => closeAll(sockets);
  return subscribers;
}

export async function openSocketIoSubscribers(baseUrl: string, count: number): Promise<Subscribers> {
  const url = `${baseUrl.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`;
  const subscribers: Subscribers = { onDelivery: () => {}, close: async () => {} };
  const sockets = await openAll(count, (joined, fail) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    socket.on('error', fail);
    socket.on('message', (raw) => {
      const text = raw.toString();
      if (text.startsWith('42["bench"')) subscribers.onDelivery(performance.now());
      else if (text === '2') socket.send('3');
      else if (text.startsWith('0{')) socket.send('40');
      else if (text.startsWith('40')) socket.send('42["join","bench"]');
      else if (text.startsWith('42["joined"')) joined();
    });
    return socket;
  });
  subscribers.close = () => closeAll(sockets);
  return subscribers;
}

async function closeAll(sockets: WebSocket[]) {
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          if (socket.readyState === WebSocket.CLOSED) return resolve();
          socket.once('close', () => resolve());
          socket.terminate();
        }),
    ),
  );
}

/** Publishes through Pusher's HTTP API, signed as the pusher SDK signs. */
export async function publishPusher(baseUrl: string, data: string): Promise<void> {
  const path = `/apps/${BENCH_APP.id}/events`;
  const body = JSON.stringify({ name: 'bench', channel: 'bench', data });
  const query = `auth_key=${BENCH_APP.key}&auth_timestamp=${Math.floor(Date.now() / 1000)}&auth_version=1.0&body_md5=${createHash('md5').update(body).digest('hex')}`;
  const signature = createHmac('sha256', BENCH_APP.secret).update(`POST\n${path}\n${query}`).digest('hex');
  const response = await fetch(`${baseUrl}${path}?${query}&auth_signature=${signature}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  if (!response.ok) throw new Error(`publish answered ${response.status}: ${await response.text()}`);
}

export async function publishSocketIo(baseUrl: string, data: string): Promise<void> {
  const response = await fetch(`${baseUrl}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data }),
  });
  if (!response.ok) throw new Error(`publish answered ${response.status}`);
}
