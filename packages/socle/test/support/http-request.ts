import http from 'node:http';
import net from 'node:net';

export interface HttpResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface HttpRequestOptions {
  /**
   * The connection pool to use, e.g. `new http.Agent({ keepAlive: true })` to keep connections open
   * after the response, as browsers and reverse proxies do. Default: a new connection, closed after
   * the response (`Connection: close`).
   */
  readonly agent?: http.Agent;
}

/** A GET over a real socket. Rejects on a socket error (ECONNREFUSED, ECONNRESET, …). */
export function httpGet(url: string, options: HttpRequestOptions = {}): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const request = http.get(url, { agent: options.agent ?? false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
      );
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/**
 * Writes `data` as it is (malformed requests included) on a new connection to `url`'s host and
 * port, and resolves with everything the server sent (latin1) until it closed. Bounded: a server
 * that never closes is a failure, not a hang (the socket is destroyed after 5 s).
 */
export function sendRaw(url: string, data: string | Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(Number(port), hostname, () => socket.write(data));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.setTimeout(5000, () => socket.destroy());
  });
}
