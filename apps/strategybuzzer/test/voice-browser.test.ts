import type { Page } from 'playwright-core';
import { chromiumAvailable, launchBrowser, testDatabaseTargets, watchPage } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuzzerWorld, signUpInBrowser, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();

/**
 * Chromium's fake microphone (a beeping track) and permission prompt answered yes. With the
 * microphone granted, Chromium gives its real host addresses as ICE candidates (no mDNS names):
 * the two pages of one browser connect over this machine's own interfaces, with no STUN or TURN
 * server (none runs here; players on one LAN connect the same way).
 */
const FAKE_MEDIA = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

/**
 * Keeps every RTCPeerConnection the page makes, so the test can read its state and stats (a
 * script string: this Node project does not load the browser's types).
 */
const RECORD_PEER_CONNECTIONS = `(() => {
  const Original = window.RTCPeerConnection;
  window.peerConnections = [];
  window.RTCPeerConnection = class extends Original {
    constructor(configuration) {
      super(configuration);
      window.peerConnections.push(this);
    }
  };
})()`;

/** The page's peer connections: their state, and the audio packets each received (inbound-rtp). */
function voiceState(page: Page): Promise<{ connectionState: string; packetsReceived: number }[]> {
  return page.evaluate(`Promise.all(window.peerConnections.map(async (peer) => {
    let packetsReceived = 0;
    for (const report of (await peer.getStats()).values())
      if (report.type === 'inbound-rtp' && report.kind === 'audio') packetsReceived += report.packetsReceived;
    return { connectionState: peer.connectionState, packetsReceived };
  }))`);
}

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer voice in Chromium [%s]',
  (_, target) => {
    let world: BuzzerWorld;
    let baseUrl: string;

    beforeAll(async () => {
      if (!target.available || !chromiumAvailable()) return;
      world = await startBuzzerWorld(target, {
        timers: true,
        questions: 4,
        settings: { roomSize: 2, minPlayers: 2, startDelayMs: 1500, questionSeconds: 120, answerSeconds: 60 },
      });
      baseUrl = await world.socle.listen();
    });
    afterAll(() => world?.socle.dispose());

    async function signUp(page: Page, name: string) {
      await page.addInitScript(RECORD_PEER_CONNECTIONS);
      await signUpInBrowser(page, baseUrl, name);
    }

    it.skipIf(!target.available || !chromiumAvailable())(
      "two players in a room join voice: the app's signalling connects them and each hears the other",
      async () => {
        const browser = await launchBrowser({ args: FAKE_MEDIA });
        try {
          const alice = await (await browser.newContext()).newPage();
          const bob = await (await browser.newContext()).newPage();
          const watched = [watchPage(alice), watchPage(bob)];
          await signUp(alice, 'Alice');
          await signUp(bob, 'Bob');
          await alice.click('#new-code');
          await expect.poll(async () => (await alice.inputValue('#code')).length).toBe(6);
          await bob.fill('#code', await alice.inputValue('#code'));
          await alice.click('#play');
          await alice.locator('#lobby-status', { hasText: 'Waiting' }).waitFor();
          await bob.click('#play');
          for (const page of [alice, bob]) await page.locator('#room').waitFor();

          // Alice joins first; Bob, joining second, offers to her (offer, answer and ICE
          // candidates go through the server on each player's private channel).
          await alice.click('#voice');
          await alice.locator('#voice', { hasText: 'Leave voice' }).waitFor();
          await bob.click('#voice');
          await bob.locator('#voice', { hasText: 'Leave voice' }).waitFor();

          for (const page of [alice, bob]) {
            await expect
              .poll(async () => (await voiceState(page)).map((peer) => peer.connectionState), {
                timeout: 30_000,
              })
              .toEqual(['connected']);
            await expect
              .poll(async () => (await voiceState(page))[0]?.packetsReceived ?? 0, { timeout: 30_000 })
              .toBeGreaterThan(0);
            // The other's voice plays in an <audio> element of the room.
            expect(await page.locator('#voice-audio audio').count()).toBe(1);
          }

          for (const [index, page] of watched.entries())
            await page.assertClean(`strategybuzzer-voice-${index}`);
        } finally {
          await browser.close();
        }
      },
    );
  },
);
