import { randomBytes } from 'node:crypto';
import { type FaultyProvider, startFaultyProvider } from './faulty-provider.js';

/** A meeting the fake holds, as Zoom's API describes it. */
export interface FakeZoomMeeting {
  readonly id: number;
  readonly uuid: string;
  readonly host_id: string;
  readonly topic: string;
  readonly type: number;
  readonly start_time?: string;
  readonly duration?: number;
  readonly timezone?: string;
  readonly agenda?: string;
  readonly created_at: string;
  readonly join_url: string;
  readonly start_url: string;
}

/** A local Zoom API: Server-to-Server OAuth and meetings. */
export interface FakeZoom extends FaultyProvider {
  /** `<url>/v2`: the provider's base URL. */
  readonly apiUrl: string;
  /** `<url>/oauth/token`. */
  readonly tokenUrl: string;
  readonly accountId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Meetings that exist now, by id. */
  readonly meetings: Map<number, FakeZoomMeeting>;
  /** Access tokens handed out (the OAuth exchange count). */
  readonly tokensIssued: () => number;
  /** Makes every token issued so far invalid (a rotated secret, an expired token). */
  revokeTokens(): void;
  /** The next create makes its meeting, then resets the connection: its answer is lost. */
  loseNextCreateAnswer(): void;
}

/**
 * Starts a fake Zoom API speaking its wire format: `POST /oauth/token` (Basic client credentials,
 * `grant_type=account_credentials` with `account_id`), and under `/v2` with a Bearer token:
 * `POST /users/me/meetings` (201), `GET /users/me/meetings?type=scheduled` (paged),
 * `GET /meetings/{id}`, `DELETE /meetings/{id}` (204; 404 with code 3001 when it does not exist);
 * 401 code 124 for a bad token. Faults of `startFaultyProvider` apply to every route.
 *
 * @example
 * const zoom = await startFakeZoom();
 * const provider = defineZoomProvider('zoom', { baseUrl: zoom.apiUrl, tokenUrl: zoom.tokenUrl, accountId: zoom.accountId, clientId: zoom.clientId, clientSecret: zoom.clientSecret });
 */
export async function startFakeZoom(): Promise<FakeZoom> {
  const accountId = `acct_${randomBytes(6).toString('hex')}`;
  const clientId = `client_${randomBytes(6).toString('hex')}`;
  const clientSecret = randomBytes(18).toString('base64url');
  const meetings = new Map<number, FakeZoomMeeting>();
  const tokens = new Set<string>();
  let issued = 0;
  let loseCreateAnswer = false;
  let nextId = 81_234_567_890;
  const fake = await startFaultyProvider();
  const zoomError = (status: number, code: number, message: string) => ({
    status,
    json: { code, message },
  });

  fake.answer((request) => {
    const url = new URL(request.url, 'http://zoom.local');
    if (request.method === 'POST' && url.pathname === '/oauth/token') {
      const form = new URLSearchParams(request.body);
      const grant = form.get('grant_type') ?? url.searchParams.get('grant_type');
      const account = form.get('account_id') ?? url.searchParams.get('account_id');
      const expected = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
      if (request.headers.authorization !== expected)
        return {
          status: 401,
          json: { reason: 'Invalid client_id or client_secret', error: 'invalid_client' },
        };
      if (grant !== 'account_credentials' || account !== accountId)
        return { status: 400, json: { reason: 'Invalid grant type', error: 'unsupported_grant_type' } };
      const token = randomBytes(24).toString('base64url');
      tokens.add(token);
      issued += 1;
      return {
        json: {
          access_token: token,
          token_type: 'bearer',
          expires_in: 3599,
          scope: 'meeting:write:admin',
          api_url: 'https://api.zoom.us',
        },
      };
    }
    if (!url.pathname.startsWith('/v2/')) return zoomError(404, 404, 'Not found');
    const bearer = request.headers.authorization?.replace(/^Bearer /, '');
    if (bearer === undefined || !tokens.has(bearer)) return zoomError(401, 124, 'Invalid access token.');
    const path = url.pathname.slice('/v2'.length);
    const userMeetings = /^\/users\/([^/]+)\/meetings$/.exec(path);
    if (userMeetings !== null && request.method === 'POST') {
      let body: Partial<FakeZoomMeeting>;
      try {
        body = JSON.parse(request.body) as Partial<FakeZoomMeeting>;
      } catch {
        return zoomError(400, 300, 'Invalid request body.');
      }
      if (typeof body.topic !== 'string') return zoomError(400, 300, 'Validation Failed.');
      const id = nextId++;
      const meeting: FakeZoomMeeting = {
        id,
        uuid: randomBytes(16).toString('base64'),
        host_id: 'host_fake',
        topic: body.topic,
        type: body.type ?? 2,
        ...(body.start_time === undefined ? {} : { start_time: body.start_time }),
        ...(body.duration === undefined ? {} : { duration: body.duration }),
        ...(body.timezone === undefined ? {} : { timezone: body.timezone }),
        ...(body.agenda === undefined ? {} : { agenda: body.agenda }),
        created_at: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
        join_url: `https://zoom.example/j/${id}?pwd=${randomBytes(8).toString('hex')}`,
        start_url: `https://zoom.example/s/${id}?zak=${randomBytes(8).toString('hex')}`,
      };
      meetings.set(id, meeting);
      if (loseCreateAnswer) {
        loseCreateAnswer = false;
        return { reset: true };
      }
      return { status: 201, json: meeting };
    }
    if (userMeetings !== null && request.method === 'GET') {
      const pageSize = Math.min(300, Number(url.searchParams.get('page_size') ?? 30));
      const start = Number(url.searchParams.get('next_page_token') || 0);
      const all = [...meetings.values()];
      const page = all.slice(start, start + pageSize);
      return {
        json: {
          page_size: pageSize,
          total_records: all.length,
          next_page_token: start + pageSize < all.length ? String(start + pageSize) : '',
          meetings: page.map(({ start_url: _hostLink, ...meeting }) => meeting),
        },
      };
    }
    const one = /^\/meetings\/(\d+)$/.exec(path);
    if (one !== null) {
      const id = Number(one[1]);
      const meeting = meetings.get(id);
      if (meeting === undefined) return zoomError(404, 3001, `Meeting does not exist: ${id}.`);
      if (request.method === 'GET') return { json: meeting };
      if (request.method === 'DELETE') {
        meetings.delete(id);
        return { status: 204, body: '' };
      }
    }
    return zoomError(404, 404, 'Not found');
  });

  return Object.assign(fake, {
    apiUrl: `${fake.url}/v2`,
    tokenUrl: `${fake.url}/oauth/token`,
    accountId,
    clientId,
    clientSecret,
    meetings,
    tokensIssued: () => issued,
    revokeTokens() {
      tokens.clear();
    },
    loseNextCreateAnswer() {
      loseCreateAnswer = true;
    },
  });
}
