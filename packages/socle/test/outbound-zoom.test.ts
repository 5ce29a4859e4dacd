import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createJitsiMeetings,
  createZoomMeetings,
  defineZoomProvider,
  withMeetingFallback,
  type ZoomProviderOptions,
} from '../src/index.js';
import { type FakeZoom, startFakeZoom } from '../src/testing/index.js';
import { createOutboundHarness } from './support/outbound-harness.js';

describe('Zoom provider: Server-to-Server OAuth, meetings created once per key, Jitsi as fallback', () => {
  let zoom: FakeZoom;
  let harness: ReturnType<typeof createOutboundHarness>;

  beforeEach(async () => {
    zoom = await startFakeZoom();
    harness = createOutboundHarness();
  });
  afterEach(async () => {
    await harness.close();
    await zoom.close();
  });

  const meetingsOn = (options: Partial<ZoomProviderOptions> = {}) =>
    createZoomMeetings(
      harness.outbound.client(
        defineZoomProvider('zoom', {
          baseUrl: zoom.apiUrl,
          tokenUrl: zoom.tokenUrl,
          accountId: zoom.accountId,
          clientId: zoom.clientId,
          clientSecret: zoom.clientSecret,
          retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 2 },
          ...options,
        }),
      ),
    );

  it('creates and deletes meetings with one token for 50 concurrent creates; a deleted meeting deletes again', async () => {
    const meetings = meetingsOn();
    const made = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        meetings.create({
          topic: `Consultation ${index}`,
          startTime: new Date('2027-01-04T09:30:00.000Z'),
          durationMinutes: 30,
          timezone: 'Europe/Paris',
          key: `appointment-${index}`,
        }),
      ),
    );
    expect(zoom.tokensIssued()).toBe(1);
    expect(new Set(made.map((meeting) => meeting.id)).size).toBe(50);
    const first = made[0];
    expect(first).toMatchObject({
      provider: 'zoom',
      joinUrl: expect.stringMatching(/^https:\/\/zoom\.example\/j\//),
    });
    const stored = zoom.meetings.get(Number(first?.id));
    expect(stored).toMatchObject({
      topic: 'Consultation 0',
      start_time: '2027-01-04T09:30:00Z',
      duration: 30,
    });
    const tokenRequest = zoom.requests.find((request) => request.url === '/oauth/token');
    expect(new URLSearchParams(tokenRequest?.body)).toEqual(
      new URLSearchParams({ grant_type: 'account_credentials', account_id: zoom.accountId }),
    );

    await meetings.delete({ provider: 'zoom', id: first?.id ?? '' });
    expect(zoom.meetings.has(Number(first?.id))).toBe(false);
    await meetings.delete({ provider: 'zoom', id: first?.id ?? '' });
    expect(harness.logText()).not.toContain(zoom.clientSecret);
  });

  it('gives the same meeting for the same key, also when the answer to the create was lost', async () => {
    const meetings = meetingsOn();
    const once = await meetings.create({ topic: 'Follow-up', key: 'job-1:meeting', agenda: 'Results' });
    const again = await meetings.create({ topic: 'Follow-up', key: 'job-1:meeting', agenda: 'Results' });
    expect(again).toEqual(once);
    expect(zoom.meetings.size).toBe(1);

    // Zoom made the meeting, then the connection broke before the answer: a POST without a key is
    // not retried in-request, but the create looks for the meeting its key marked before failing.
    zoom.loseNextCreateAnswer();
    const lost = await meetings.create({ topic: 'Second', key: 'job-2:meeting' });
    const seconds = [...zoom.meetings.values()].filter((meeting) => meeting.topic === 'Second');
    expect(seconds).toHaveLength(1);
    expect(lost.id).toBe(String(seconds[0]?.id));
    expect(zoom.meetings.size).toBe(2);
  });

  it('fetches a new token when Zoom refuses the cached one', async () => {
    const meetings = meetingsOn();
    await meetings.create({ topic: 'A', key: 'a' });
    zoom.revokeTokens();
    await meetings.create({ topic: 'B', key: 'b' });
    expect(zoom.tokensIssued()).toBe(2);
  });

  it('falls back to a Jitsi room (the same for the same key) when Zoom is down, not when it refuses', async () => {
    const video = withMeetingFallback(
      meetingsOn({ retry: false }),
      createJitsiMeetings({ baseUrl: 'https://meet.example' }),
    );
    zoom.failAll({ status: 503 });
    const first = await video.create({ topic: 'Consultation', key: 'appointment-9' });
    const second = await video.create({ topic: 'Consultation', key: 'appointment-9' });
    expect(first.provider).toBe('jitsi');
    expect(first.joinUrl).toMatch(/^https:\/\/meet\.example\/socle-[0-9a-f]{24}$/);
    expect(second).toEqual(first);
    await video.delete(first);

    zoom.recover();
    await expect(video.create({ topic: 'Consultation', key: 'after-recovery' })).resolves.toMatchObject({
      provider: 'zoom',
    });
    zoom.failNext(1, { status: 400, body: JSON.stringify({ code: 300, message: 'Validation Failed.' }) });
    await expect(video.create({ topic: 'x', key: 'refused' })).rejects.toMatchObject({
      code: 'outbound.rejected',
      details: { provider: 'zoom', providerStatus: 400 },
    });
  });
});
