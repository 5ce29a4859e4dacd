import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import type { OutboundClient } from './outbound-client.js';
import { defineProvider, type ProviderDefinition, type ProviderOptions } from './provider.js';

/** OpenAI's API; a self-hosted OpenAI-compatible server (a local Whisper) takes its own `baseUrl`. */
export const OPENAI_BASE_URL = 'https://api.openai.com/v1';

export interface OpenAiProviderOptions extends Omit<ProviderOptions, 'baseUrl' | 'auth'> {
  /** Default OpenAI's; a local Whisper server's (`http://whisper:8000/v1`) for a self-hosted one. */
  readonly baseUrl?: string;
  /** Sent as `Authorization: Bearer`; a local server may need none. */
  readonly apiKey?: string;
}

/**
 * Declares an OpenAI-compatible provider: OpenAI itself, or a self-hosted server speaking the same
 * API (a local Whisper server), typically the first's fallback. Transcriptions take minutes: the
 * attempt timeout defaults to 10 minutes (20 in all).
 *
 * @example
 * const localWhisper = defineOpenAiProvider('whisper-local', { baseUrl: 'http://whisper:8000/v1' });
 * const openai = defineOpenAiProvider('openai', {
 *   apiKey: settings.openaiApiKey,
 *   rateLimit: { limit: 50, windowMs: 60_000 },
 *   fallback: [localWhisper],
 * });
 */
export function defineOpenAiProvider(name: string, options: OpenAiProviderOptions): ProviderDefinition {
  const { apiKey, baseUrl, ...rest } = options;
  return defineProvider(name, {
    timeoutMs: { attemptMs: 600_000, totalMs: 1_200_000 },
    ...rest,
    baseUrl: baseUrl ?? OPENAI_BASE_URL,
    ...(apiKey === undefined ? {} : { auth: { type: 'bearer', token: apiKey } }),
  });
}

/** One audio file to transcribe (`POST /audio/transcriptions`, multipart). */
export interface TranscriptionRequest {
  /**
   * Opens the audio anew for each attempt (`() => createReadStream(path)`): the bytes are streamed
   * to the provider, never held in memory, and sent again on a retry or to a fallback.
   */
  readonly file: () => Readable;
  /** The file's name as the provider sees it; its extension tells the format (`call.mp3`). */
  readonly filename: string;
  /** Bytes in the file when known: sent as `Content-Length` (otherwise the body is chunked). */
  readonly size?: number;
  /** Default `application/octet-stream`. */
  readonly contentType?: string;
  /** Default `whisper-1`. */
  readonly model?: string;
  /** ISO-639-1 (`fr`): faster and more accurate than detection. */
  readonly language?: string;
  /** Words the audio uses (names of products, of people). */
  readonly prompt?: string;
  /** `json` (text only, the default) or `verbose_json` (language and duration too). */
  readonly responseFormat?: 'json' | 'verbose_json';
  readonly signal?: AbortSignal;
}

/** What a transcription gave, and which provider gave it. */
export interface Transcription {
  /** The provider that transcribed: the declared one or a fallback. */
  readonly provider: string;
  readonly text: string;
  readonly language?: string;
  /** Seconds of audio, with `verbose_json`. */
  readonly duration?: number;
}

const TranscriptionAnswer = Compile(
  Type.Object({
    text: Type.String(),
    language: Type.Optional(Type.String()),
    duration: Type.Optional(Type.Number()),
  }),
);

/** The audio API of an OpenAI-compatible provider. */
export interface OpenAiAudio {
  /**
   * Transcribes one file, streamed: a 200 MB recording is never in memory. The call is retried
   * (a transcription has no effect to duplicate) and falls back to the provider's fallbacks
   * (Whisper API → a local Whisper server), each getting the file from the start.
   */
  transcribe(request: TranscriptionRequest): Promise<Transcription>;
}

/** Quotes a multipart parameter the way browsers do (WHATWG: `"`, CR and LF percent-encoded). */
const quoted = (value: string) =>
  `"${value.replaceAll('"', '%22').replaceAll('\r', '%0D').replaceAll('\n', '%0A')}"`;

/**
 * A `multipart/form-data` body of `fields` then one file, produced while it is sent: its length
 * (when the file's is known) and a function opening it anew for each attempt.
 */
export function multipartBody(
  fields: Readonly<Record<string, string | undefined>>,
  file: { name: string; filename: string; contentType: string; size?: number; open: () => Readable },
): { contentType: string; length: number | undefined; open: () => Readable } {
  const boundary = `----socle${randomBytes(12).toString('hex')}`;
  let head = '';
  for (const [name, value] of Object.entries(fields))
    if (value !== undefined)
      head += `--${boundary}\r\nContent-Disposition: form-data; name=${quoted(name)}\r\n\r\n${value}\r\n`;
  head +=
    `--${boundary}\r\nContent-Disposition: form-data; name=${quoted(file.name)}; filename=${quoted(file.filename)}\r\n` +
    `Content-Type: ${file.contentType}\r\n\r\n`;
  const headBytes = Buffer.from(head, 'utf8');
  const tailBytes = Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8');
  async function* parts() {
    yield headBytes;
    for await (const chunk of file.open()) yield chunk as Buffer;
    yield tailBytes;
  }
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    length: file.size === undefined ? undefined : headBytes.length + file.size + tailBytes.length,
    open: () => Readable.from(parts(), { objectMode: false }),
  };
}

/**
 * The audio API on a declared OpenAI-compatible client (`outbound.client(openai)`).
 *
 * @example
 * const audio = createOpenAiAudio(outbound.client(openai));
 * const { text, provider } = await audio.transcribe({
 *   file: () => createReadStream(path), filename: 'call.mp3', size, language: 'fr',
 * });
 */
export function createOpenAiAudio(client: OutboundClient): OpenAiAudio {
  return {
    async transcribe(request) {
      const body = multipartBody(
        {
          model: request.model ?? 'whisper-1',
          language: request.language,
          prompt: request.prompt,
          response_format: request.responseFormat ?? 'json',
        },
        {
          name: 'file',
          filename: request.filename,
          contentType: request.contentType ?? 'application/octet-stream',
          open: request.file,
          ...(request.size === undefined ? {} : { size: request.size }),
        },
      );
      const answer = await client.request({
        method: 'POST',
        path: 'audio/transcriptions',
        operation: 'audio.transcriptions',
        headers: {
          'content-type': body.contentType,
          ...(body.length === undefined ? {} : { 'content-length': String(body.length) }),
        },
        body: body.open,
        repeatable: true,
        ...(request.signal === undefined ? {} : { signal: request.signal }),
      });
      const parsed = answer.json<{ text: string; language?: string; duration?: number }>(TranscriptionAnswer);
      return {
        provider: answer.provider,
        text: parsed.text,
        ...(parsed.language === undefined ? {} : { language: parsed.language }),
        ...(parsed.duration === undefined ? {} : { duration: parsed.duration }),
      };
    },
  };
}

/**
 * Options for the official `openai` SDK so that its calls (chat completions with JSON output,
 * embeddings…) go through the declared client's policies: `new OpenAI(openAiSdkOptions(client, key))`.
 * The SDK's own retries are off (the client retries); its idempotency header makes POSTs retryable.
 *
 * @example
 * const openai = new OpenAI(openAiSdkOptions(outbound.client(openaiProvider), settings.openaiApiKey));
 * const answer = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, response_format: { type: 'json_object' } });
 */
export function openAiSdkOptions(
  client: OutboundClient,
  apiKey: string,
): {
  apiKey: string;
  baseURL: string;
  fetch: OutboundClient['fetch'];
  maxRetries: 0;
} {
  return {
    apiKey,
    baseURL: client.provider.baseUrl.href.replace(/\/$/, ''),
    fetch: client.fetch,
    maxRetries: 0,
  };
}
