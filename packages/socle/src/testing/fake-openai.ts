import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type FaultyProvider, startFaultyProvider } from './faulty-provider.js';

/** A file part of a multipart upload, as the fake received it (never kept in memory). */
export interface ReceivedFile {
  readonly name: string;
  readonly filename: string;
  readonly contentType: string;
  readonly bytes: number;
  /** Hex sha256 of the bytes received. */
  readonly sha256: string;
}

/** A multipart request read while it streamed in: its text fields and its files' sizes and hashes. */
export interface ReceivedMultipart {
  readonly fields: Record<string, string>;
  readonly files: ReceivedFile[];
}

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_FIELD_BYTES = 64 * 1024;

/**
 * Reads a `multipart/form-data` body as it streams in, keeping only its text fields and, for each
 * file, its size and sha256: a fake can take a 200 MB upload without holding it.
 */
export async function readMultipartStreaming(incoming: IncomingMessage): Promise<ReceivedMultipart> {
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(incoming.headers['content-type'] ?? '');
  const boundary = match?.[1] ?? match?.[2];
  if (boundary === undefined) throw new Error('not multipart/form-data');
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  const result: ReceivedMultipart = { fields: {}, files: [] };
  // The body starts with `--boundary`: a leading CRLF makes the first one a delimiter like the others.
  let pending: Buffer = Buffer.from('\r\n');
  let state = 'preamble' as 'preamble' | 'after-delimiter' | 'headers' | 'data' | 'done';
  let part:
    | {
        name: string;
        filename: string | undefined;
        contentType: string;
        bytes: number;
        hash: Hash;
        text: Buffer[];
      }
    | undefined;

  const consume = (data: Buffer) => {
    if (part === undefined || data.length === 0) return;
    part.bytes += data.length;
    if (part.filename === undefined) {
      if (part.bytes > MAX_FIELD_BYTES) throw new Error('field too large');
      part.text.push(data);
    } else part.hash.update(data);
  };
  const finish = () => {
    if (part === undefined) return;
    if (part.filename === undefined) result.fields[part.name] = Buffer.concat(part.text).toString('utf8');
    else
      result.files.push({
        name: part.name,
        filename: part.filename,
        contentType: part.contentType,
        bytes: part.bytes,
        sha256: part.hash.digest('hex'),
      });
    part = undefined;
  };

  for await (const chunk of incoming as AsyncIterable<Buffer>) {
    if (pending.length === 0) pending = chunk;
    else if ((state === 'data' || state === 'preamble') && pending.length < delimiter.length) {
      // What is left is shorter than a delimiter: join only the seam, not the whole chunk (a
      // 200 MB upload would otherwise be copied once more as garbage).
      const seam = Buffer.concat([pending, chunk.subarray(0, delimiter.length)]);
      if (seam.indexOf(delimiter) === -1) {
        if (state === 'data') consume(pending);
        pending = chunk;
      } else pending = Buffer.concat([pending, chunk]);
    } else pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (state === 'preamble' || state === 'data') {
        const at = pending.indexOf(delimiter);
        if (at === -1) {
          // Keep what could be the start of a delimiter split across chunks.
          const keep = Math.min(pending.length, delimiter.length - 1);
          if (state === 'data') consume(pending.subarray(0, pending.length - keep));
          pending = pending.subarray(pending.length - keep);
          break;
        }
        if (state === 'data') {
          consume(pending.subarray(0, at));
          finish();
        }
        pending = pending.subarray(at + delimiter.length);
        state = 'after-delimiter';
      }
      if (state === 'after-delimiter') {
        if (pending.length < 2) break;
        const next = pending.subarray(0, 2).toString('latin1');
        if (next === '--') {
          state = 'done';
          break;
        }
        if (next !== '\r\n') throw new Error('malformed multipart boundary');
        pending = pending.subarray(2);
        state = 'headers';
      }
      if (state === 'headers') {
        const end = pending.indexOf('\r\n\r\n');
        if (end === -1) {
          if (pending.length > MAX_HEADER_BYTES) throw new Error('part headers too large');
          break;
        }
        const headers = pending.subarray(0, end).toString('utf8');
        pending = pending.subarray(end + 4);
        const disposition = /content-disposition:([^\r\n]*)/i.exec(headers)?.[1] ?? '';
        const name = /\bname="([^"]*)"/i.exec(disposition)?.[1];
        if (name === undefined) throw new Error('a part without a name');
        part = {
          name,
          filename: /\bfilename="([^"]*)"/i.exec(disposition)?.[1],
          contentType: /content-type:\s*([^\r\n]*)/i.exec(headers)?.[1]?.trim() ?? 'text/plain',
          bytes: 0,
          hash: createHash('sha256'),
          text: [],
        };
        state = 'data';
        continue;
      }
      if (state === 'done') break;
    }
  }
  if (state !== 'done') throw new Error('multipart body ended early');
  return result;
}

/** A local OpenAI-compatible API (the Whisper API, or a self-hosted Whisper server). */
export interface FakeOpenAi extends FaultyProvider {
  /** `<url>/v1`: the provider's (or the SDK's) base URL. */
  readonly baseUrl: string;
  /** Every transcription request received, as read from its multipart body. */
  readonly transcriptions: ReceivedMultipart[];
  /** The `content` of the next chat completions (default `{"ok":true}`). */
  chatContent(content: string): void;
}

/**
 * Starts a fake OpenAI-compatible API: `POST /v1/audio/transcriptions` (multipart, read while it
 * streams: a 200 MB file is never held; answers `{ text }`, or `verbose_json` with language and
 * duration), `POST /v1/chat/completions` and `GET /v1/models`, with the faults of
 * `startFaultyProvider`. The transcription's text names the file and its size and hash, so a test
 * sees what arrived.
 *
 * @example
 * const openai = await startFakeOpenAi();
 * const provider = defineOpenAiProvider('openai', { baseUrl: openai.baseUrl, apiKey: 'sk-test' });
 */
export async function startFakeOpenAi(): Promise<FakeOpenAi> {
  const transcriptions: ReceivedMultipart[] = [];
  let content = '{"ok":true}';
  const fake = await startFaultyProvider({
    readBody: async (incoming) =>
      (incoming.headers['content-type'] ?? '').startsWith('multipart/form-data')
        ? JSON.stringify(await readMultipartStreaming(incoming))
        : await new Promise<string>((resolve, reject) => {
            const chunks: Buffer[] = [];
            incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
            incoming.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
            incoming.on('error', reject);
          }),
  });
  fake.answer((request) => {
    const path = request.url.split('?')[0];
    if (request.method === 'POST' && path === '/v1/audio/transcriptions') {
      const received = JSON.parse(request.body) as ReceivedMultipart;
      transcriptions.push(received);
      const file = received.files.find((part) => part.name === 'file');
      if (file === undefined || received.fields.model === undefined)
        return {
          status: 400,
          json: { error: { message: 'file and model are required', type: 'invalid_request_error' } },
        };
      const text = `${file.filename}: ${file.bytes} bytes, sha256 ${file.sha256}`;
      return received.fields.response_format === 'verbose_json'
        ? {
            json: {
              task: 'transcribe',
              language: received.fields.language ?? 'english',
              duration: file.bytes / 16_000,
              text,
              segments: [],
            },
          }
        : { json: { text } };
    }
    if (request.method === 'POST' && path === '/v1/chat/completions') {
      const body = JSON.parse(request.body) as { model?: string };
      return {
        json: {
          id: 'chatcmpl-fake',
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: body.model ?? 'gpt-4o-mini',
          choices: [
            { index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null },
          ],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        },
      };
    }
    if (request.method === 'GET' && path === '/v1/models')
      return {
        json: {
          object: 'list',
          data: [{ id: 'whisper-1', object: 'model', created: 1, owned_by: 'openai' }],
        },
      };
    return { status: 404, json: { error: { message: `Unknown route ${request.method} ${path}` } } };
  });
  return Object.assign(fake, {
    baseUrl: `${fake.url}/v1`,
    transcriptions,
    chatContent(next: string) {
      content = next;
    },
  });
}
