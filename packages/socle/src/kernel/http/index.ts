export { toFieldErrors, writeProblemOnSocket } from './error-handling.js';
export {
  type CreateHttpServerOptions,
  createHttpServer,
  type HttpServer,
  REQUEST_ID_HEADER,
} from './http-server.js';
export { routeSecurity, SECURITY_SCHEMES } from './openapi.js';
export { installReadYourWrites, LSN_COOKIE, LSN_HEADER } from './read-your-writes.js';
