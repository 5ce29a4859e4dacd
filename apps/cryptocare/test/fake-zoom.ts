import { randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A meeting as the fake Zoom keeps it. */
export interface FakeMeeting {
  id: number;
  host: string;
  topic: string;
  agenda: string;
  start_time: string;
  duration: number;
  join_url: string;
}

/**
 * A local Zoom speaking the calls CryptoCare makes, in Zoom's wire format: Server-to-Server OAuth
 * (`POST /oauth/token?grant_type=account_credentials&account_id=…` with HTTP Basic client
 * credentials, or the same fields in the form body) and, with the bearer token it issued,
 * `POST /v2/users/{userId}/meetings` (201), `GET /v2/users/{userId}/meetings`,
 * `GET /v2/meetings/{meetingId}`, `PATCH /v2/meetings/{meetingId}` (204). It can be down (503 on
 * everything) and can lose its next answer after acting (the connection is reset once the meeting
 * exists: what a timeout after Zoom created it looks like).
 */
export async function startFakeZoom(credentials: {
  accountId: string;
  clientId: string;
  clientSecret: string;
}) {
  const meetings: FakeMeeting[] = [];
  /** Every API call (not the token's), as `METHOD /v2/path`. */
  const calls: string[] = [];
  const tokens = new Set<string>();
  let tokenRequests = 0;
  let refused = 0;
  let down = false;
  let loseNextAnswer = false;
  const sockets = new Set<Socket>();

  const send = (response: ServerResponse, status: number, body?: unknown) => {
    response.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
    response.end(body === undefined ? undefined : JSON.stringify(body));
  };

  function token(request: IncomingMessage, body: string, response: ServerResponse) {
    tokenRequests++;
    const url = new URL(request.url ?? '/', 'http://zoom');
    const form = new URLSearchParams(body);
    const field = (name: string) => url.searchParams.get(name) ?? form.get(name);
    const basic = Buffer.from(`${credentials.clientId}:${credentials.clientSecret}`).toString('base64');
    if (request.headers.authorization !== `Basic ${basic}`)
      return send(response, 401, { reason: 'Invalid client_id or client_secret', error: 'invalid_client' });
    if (field('grant_type') !== 'account_credentials' || field('account_id') !== credentials.accountId)
      return send(response, 400, {
        reason: 'Invalid request : Unsupported grant type',
        error: 'invalid_request',
      });
    const accessToken = `zoom-${randomInt(1e9)}`;
    tokens.add(accessToken);
    send(response, 200, {
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: 3599,
      scope: 'meeting:write:admin',
    });
  }

  function api(request: IncomingMessage, body: string, response: ServerResponse) {
    calls.push(`${request.method} ${new URL(request.url ?? '/', 'http://zoom').pathname}`);
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (bearer === undefined || !tokens.has(bearer))
      return send(response, 401, { code: 124, message: 'Invalid access token.' });
    const url = new URL(request.url ?? '/', 'http://zoom');
    const userMeetings = /^\/v2\/users\/([^/]+)\/meetings$/.exec(url.pathname);
    const oneMeeting = /^\/v2\/meetings\/(\d+)$/.exec(url.pathname);
    if (userMeetings && request.method === 'POST') {
      const input = JSON.parse(body) as Partial<FakeMeeting>;
      const host = decodeURIComponent(userMeetings[1] as string);
      const id = 80_000_000_000 + meetings.length;
      const meeting: FakeMeeting = {
        id,
        host,
        topic: input.topic ?? 'Zoom meeting',
        agenda: input.agenda ?? '',
        start_time: input.start_time ?? '',
        duration: input.duration ?? 60,
        join_url: `https://zoom.example/j/${id}`,
      };
      meetings.push(meeting);
      if (loseNextAnswer) {
        loseNextAnswer = false;
        return request.socket.destroy();
      }
      return send(response, 201, { ...meeting, host_id: host, type: 2, timezone: 'UTC' });
    }
    if (userMeetings && request.method === 'GET') {
      const host = decodeURIComponent(userMeetings[1] as string);
      const own = meetings.filter((meeting) => meeting.host === host);
      return send(response, 200, {
        page_size: 300,
        total_records: own.length,
        next_page_token: '',
        meetings: own,
      });
    }
    const meeting = oneMeeting ? meetings.find((m) => m.id === Number(oneMeeting[1])) : undefined;
    if (oneMeeting && meeting === undefined)
      return send(response, 404, { code: 3001, message: 'Meeting does not exist.' });
    if (meeting && request.method === 'GET') return send(response, 200, meeting);
    if (meeting && request.method === 'PATCH') {
      Object.assign(meeting, JSON.parse(body));
      return send(response, 204);
    }
    send(response, 404, { code: 404, message: 'Not found' });
  }

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (down) {
        refused++;
        return send(response, 503, { code: 503, message: 'Service unavailable' });
      }
      const body = Buffer.concat(chunks).toString('utf8');
      if (request.url?.startsWith('/oauth/token')) return token(request, body, response);
      api(request, body, response);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    apiUrl: `${url}/v2`,
    tokenUrl: `${url}/oauth/token`,
    meetings,
    calls,
    tokenRequests: () => tokenRequests,
    /** Requests answered 503 because it was down. */
    refusedRequests: () => refused,
    down: () => {
      down = true;
    },
    up: () => {
      down = false;
    },
    loseNextAnswer: () => {
      loseNextAnswer = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
