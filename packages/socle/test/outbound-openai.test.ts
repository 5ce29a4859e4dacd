import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createOpenAiAudio, defineOpenAiProvider, openAiSdkOptions } from '../src/index.js';
import { type FakeOpenAi, type ReceivedMultipart, startFakeOpenAi } from '../src/testing/index.js';
import { createOutboundHarness } from './support/outbound-harness.js';

const MiB = 1024 * 1024;

// Young-generation collections on demand: socket buffers the fake (in this process) and the
// client drop are then freed as they go, so the RSS measured is what streaming keeps, not garbage
// a loaded machine has not collected yet.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;

/** `size` bytes of a pattern, produced as read (never the whole file in memory), and their sha256. */
function audioFile(size: number) {
  const chunk = Buffer.alloc(MiB);
  for (let index = 0; index < chunk.length; index++) chunk[index] = (index * 31 + 7) % 251;
  const hash = createHash('sha256');
  for (let sent = 0; sent < size; sent += chunk.length)
    hash.update(chunk.subarray(0, Math.min(chunk.length, size - sent)));
  const sha256 = hash.digest('hex');
  const opens = { count: 0 };
  const open = () => {
    opens.count += 1;
    let sent = 0;
    return new Readable({
      read() {
        if (sent >= size) return this.push(null);
        // The same bytes every time, never changed: pushed as they are, no garbage per chunk.
        const next = chunk.subarray(0, Math.min(chunk.length, size - sent));
        sent += next.length;
        this.push(next);
      },
    });
  };
  return { open, sha256, opens };
}

describe('OpenAI-compatible provider: streamed transcription with a local Whisper fallback, chat through the SDK', () => {
  let whisperApi: FakeOpenAi;
  let localWhisper: FakeOpenAi;
  let harness: ReturnType<typeof createOutboundHarness>;

  beforeEach(async () => {
    whisperApi = await startFakeOpenAi();
    localWhisper = await startFakeOpenAi();
    harness = createOutboundHarness();
  });
  afterEach(async () => {
    await harness.close();
    await whisperApi.close();
    await localWhisper.close();
  });

  const providers = (breaker: { minimumCalls: number } | false = false) => {
    const local = defineOpenAiProvider('whisper-local', {
      baseUrl: localWhisper.baseUrl,
      retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 1 },
    });
    const openai = defineOpenAiProvider('openai', {
      baseUrl: whisperApi.baseUrl,
      apiKey: 'sk-test-WHISPER-SECRET',
      retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 1 },
      breaker:
        breaker === false
          ? false
          : {
              failureRate: 0.5,
              minimumCalls: breaker.minimumCalls,
              windowMs: 60_000,
              halfOpenAfterMs: 60_000,
            },
      fallback: [local],
    });
    return { openai, local };
  };

  it('streams a 200 MB file as multipart without holding it: RSS grows far less than the file', async () => {
    const size = 200 * MiB;
    const file = audioFile(size);
    const audio = createOpenAiAudio(harness.outbound.client(providers().openai));
    // Warm up first (connections, code paths), so the baseline is the steady state.
    await audio.transcribe({ file: audioFile(4 * MiB).open, filename: 'warm-up.mp3', size: 4 * MiB });
    collectGarbage({ type: 'major' });
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
      collectGarbage({ type: 'minor' });
    }, 20);
    let transcription: Awaited<ReturnType<typeof audio.transcribe>>;
    try {
      transcription = await audio.transcribe({
        file: file.open,
        filename: 'call.mp3',
        size,
        contentType: 'audio/mpeg',
        language: 'fr',
      });
    } finally {
      clearInterval(sampler);
    }
    const received = whisperApi.transcriptions[1];
    expect(received?.files).toEqual([
      { name: 'file', filename: 'call.mp3', contentType: 'audio/mpeg', bytes: size, sha256: file.sha256 },
    ]);
    expect(received?.fields).toEqual({ model: 'whisper-1', language: 'fr', response_format: 'json' });
    // Sent with its length (the multipart framing around the file is a few hundred bytes), not chunked.
    const framing = Number(whisperApi.requests[1]?.headers['content-length']) - size;
    expect(framing).toBeGreaterThan(100);
    expect(framing).toBeLessThan(1000);
    expect(whisperApi.requests[0]?.headers.authorization).toBe('Bearer sk-test-WHISPER-SECRET');
    expect(transcription).toEqual({
      provider: 'openai',
      text: `call.mp3: ${size} bytes, sha256 ${file.sha256}`,
    });
    // Buffering would add the 200 MB (twice over with the multipart copy); streaming, ~60 MB
    // of socket buffers and code in flight were measured here (the fake runs in this process).
    expect(peak - baseline).toBeLessThan(size / 2);
  });

  it('sends the file again, from its start, on a retry and to the local Whisper server when the API is down', async () => {
    const file = audioFile(3 * MiB + 17);
    const audio = createOpenAiAudio(harness.outbound.client(providers().openai));

    whisperApi.failNext(1, { status: 500 });
    const retried = await audio.transcribe({ file: file.open, filename: 'a.wav', size: 3 * MiB + 17 });
    expect(retried.provider).toBe('openai');
    // Both attempts carried the whole file (the fake read the first one before failing it).
    expect(
      whisperApi.requests.map((request) => (JSON.parse(request.body) as ReceivedMultipart).files[0]?.sha256),
    ).toEqual([file.sha256, file.sha256]);
    expect(file.opens.count).toBe(2);

    whisperApi.failAll({ status: 503 });
    const fallback = await audio.transcribe({
      file: file.open,
      filename: 'b.wav',
      responseFormat: 'verbose_json',
      language: 'fr',
    });
    expect(fallback).toMatchObject({ provider: 'whisper-local', language: 'fr' });
    expect(localWhisper.transcriptions[0]?.files[0]).toMatchObject({
      bytes: 3 * MiB + 17,
      sha256: file.sha256,
    });
    // The local server got no API key; the log never holds it.
    expect(localWhisper.requests[0]?.headers.authorization).toBeUndefined();
    expect(harness.logText()).not.toContain('WHISPER-SECRET');
    expect(harness.lines.some((line) => line.msg === 'Falling back to the next provider')).toBe(true);
  });

  it('goes straight to the local server while the API circuit is open', async () => {
    const file = audioFile(64 * 1024);
    const { openai } = providers({ minimumCalls: 2 });
    const client = harness.outbound.client(openai);
    const audio = createOpenAiAudio(client);
    whisperApi.failAll({ status: 500 });
    for (let call = 0; call < 2; call++) await audio.transcribe({ file: file.open, filename: 'c.wav' });
    expect(client.circuitState()).toBe('open');
    const seenByApi = whisperApi.requests.length;
    const answer = await audio.transcribe({ file: file.open, filename: 'd.wav' });
    expect(answer.provider).toBe('whisper-local');
    expect(whisperApi.requests).toHaveLength(seenByApi);
    expect(localWhisper.transcriptions.at(-1)?.files[0]?.filename).toBe('d.wav');
  });

  it('refuses an answer without text as outbound.bad_response naming the provider', async () => {
    const audio = createOpenAiAudio(harness.outbound.client(providers().openai));
    whisperApi.answer(() => ({ json: { transcript: 'wrong field' } }));
    await expect(audio.transcribe({ file: audioFile(10).open, filename: 'e.wav' })).rejects.toMatchObject({
      code: 'outbound.bad_response',
      details: { provider: 'openai', operation: 'audio.transcriptions' },
    });
  });

  it('gives the official SDK a JSON chat completion through the declared client (openAiSdkOptions)', async () => {
    const client = harness.outbound.client(providers().openai);
    const openai = new OpenAI(openAiSdkOptions(client, 'sk-test-CHAT-SECRET'));
    whisperApi.chatContent('{"intent":"quote","product":"home"}');
    const answer = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Extract the intent' }],
      response_format: { type: 'json_object' },
    });
    expect(JSON.parse(answer.choices[0]?.message.content ?? '')).toEqual({
      intent: 'quote',
      product: 'home',
    });
    const sent = whisperApi.requests.find((request) => request.url === '/v1/chat/completions');
    expect(sent?.headers.authorization).toBe('Bearer sk-test-WHISPER-SECRET');
    expect(harness.logText()).not.toContain('CHAT-SECRET');
  });
});
