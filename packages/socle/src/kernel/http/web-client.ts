import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { httpErrors, SocleError } from '../errors/index.js';
import type { HttpServer } from './http-server.js';

/**
 * A module's static web client: HTML, scripts, styles and images from one directory, served by
 * Socle itself (no CDN, no second server), the way an app ships its small front end.
 */
export interface WebClient {
  /** The directory to serve, usually `new URL('../web/', import.meta.url)` (next to `src/`). */
  readonly root: URL | string;
  /** Where it is served; default `/apps/<module name>/`. Starts and ends with `/`. */
  readonly path?: string;
  /**
   * The Content-Security-Policy of every file served. The default allows only this origin
   * (scripts, styles, fetch and WebSocket to it; images also from `data:` and `blob:`), no inline
   * script, no framing. Loosen it only with a reason.
   */
  readonly contentSecurityPolicy?: string;
  /**
   * Serve `index.html` for any path under `path` that is not a file (a single-page app with its
   * own routes). Off by default: an unknown path is a 404 problem.
   */
  readonly singlePage?: boolean;
}

export const DEFAULT_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self' ws: wss:",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const PATH = /^\/(?:[a-z0-9._~-]+\/)*$/;

export const webClientErrors = {
  invalidPath: (module: string, path: string) =>
    new SocleError(
      'module.web_path_invalid',
      `Module "${module}" serves its web client at "${path}": a path must start and end with "/" and hold only lower-case letters, digits, ".", "_", "~" and "-"`,
      { details: { module, path } },
    ),
  missingRoot: (module: string, root: string) =>
    new SocleError(
      'module.web_root_missing',
      `Module "${module}" serves its web client from "${root}", which is not a directory`,
      {
        details: { module, root },
      },
    ),
};

/** Where a module's web client is served. */
export function webClientPath(moduleName: string, client: WebClient): string {
  const path = client.path ?? `/apps/${moduleName}/`;
  if (!PATH.test(path) || path === '/') throw webClientErrors.invalidPath(moduleName, path);
  return path;
}

/**
 * Registers a module's web client on the server. Uses `@fastify/static` (range requests, ETag and
 * conditional GETs, path-traversal refusal, streaming): nothing here is hand-written but the
 * headers. HTML is revalidated on every load (`no-cache`) so a deploy shows at once; other files
 * are cached for an hour and revalidated by ETag (they carry no content hash to cache longer).
 */
export async function registerWebClient(
  app: HttpServer,
  moduleName: string,
  client: WebClient,
): Promise<string> {
  const path = webClientPath(moduleName, client);
  const root = typeof client.root === 'string' ? client.root : fileURLToPath(client.root);
  if (!statSync(root, { throwIfNoEntry: false })?.isDirectory())
    throw webClientErrors.missingRoot(moduleName, root);
  const policy = client.contentSecurityPolicy ?? DEFAULT_CONTENT_SECURITY_POLICY;
  const indexFile = join(root, 'index.html');
  const headers = (file: string): Record<string, string> => ({
    'content-security-policy': policy,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
    'cache-control': file.endsWith('.html') ? 'no-cache' : 'public, max-age=3600',
  });
  const register = async (scope: HttpServer): Promise<void> => {
    await scope.register(fastifyStatic, {
      root,
      prefix: '/',
      // Several modules may each serve a client: only the first registration may decorate.
      decorateReply: false,
      index: ['index.html'],
      redirect: true,
      dotfiles: 'deny',
      cacheControl: false,
      wildcard: true,
      setHeaders(reply, file) {
        reply.headers(headers(file));
      },
    });
    // `/apps/x` → `/apps/x/`: relative links in the index resolve under the client's own path.
    scope.get('', { schema: { hide: true } }, (_request, reply) => reply.redirect(path, 301));
    if (client.singlePage) {
      // A path that is no file is one of the app's own routes: its index.html answers.
      scope.setNotFoundHandler((request, reply) => {
        if (request.method !== 'GET' && request.method !== 'HEAD')
          throw httpErrors.routeNotFound(request.method, request.url.split('?')[0] ?? request.url);
        return reply
          .headers(headers(indexFile))
          .type('text/html; charset=utf-8')
          .send(createReadStream(indexFile));
      });
    }
  };
  // The prefix without its final slash: Fastify then serves both `/apps/x` (redirected) and `/apps/x/…`.
  await app.register(register, { prefix: path.slice(0, -1) });
  return path;
}
