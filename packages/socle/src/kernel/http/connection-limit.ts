import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { Counter, type Registry } from 'prom-client';

/**
 * Closes, as soon as it is accepted, every connection beyond `maxPerAddress` open ones from the
 * same client address (HTTP keep-alive and WebSocket alike), and counts them in
 * `socle_http_connections_refused_total`. Without it a few addresses holding slow connections can
 * take every file descriptor of the process (20,000 of them did: health checks refused, the job
 * worker hit EMFILE). The address is the socket's peer: behind a load balancer it is the balancer's,
 * so the caller turns the cap off (0) there and the balancer limits clients itself.
 *
 * Node's `server.maxConnections` caps the total only; no maintained library caps per address at
 * the socket level (rate limiters count requests), hence these few lines.
 */
export function limitConnectionsPerAddress(server: Server, maxPerAddress: number, registry: Registry): void {
  const refused = new Counter({
    name: 'socle_http_connections_refused_total',
    help: 'Connections closed as soon as accepted, by reason (per_address_limit: HTTP_MAX_CONNECTIONS_PER_IP)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  refused.inc({ reason: 'per_address_limit' }, 0);
  if (maxPerAddress <= 0) return;
  const open = new Map<string, number>();
  // Prepended: it runs before Node's HTTP handling sets the socket up.
  server.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    if (address === undefined) return;
    const count = open.get(address) ?? 0;
    if (count >= maxPerAddress) {
      refused.inc({ reason: 'per_address_limit' });
      socket.destroy();
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}
