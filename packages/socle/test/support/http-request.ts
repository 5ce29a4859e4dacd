import http from 'node:http';

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
