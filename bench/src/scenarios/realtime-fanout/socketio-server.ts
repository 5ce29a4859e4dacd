/**
 * The baseline: Socket.IO 4 (default in-memory adapter) with the same work: clients join room
 * `bench`; `POST /publish` emits the body to the room; `GET /bench/memory` as on Socle.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { runServerChild } from '../../server-child.js';
import { measuredMemory } from './memory-route.js';

runServerChild(async () => {
  const http = createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/bench/memory') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(measuredMemory()));
      return;
    }
    if (request.method === 'POST' && request.url === '/publish') {
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk;
      });
      request.on('end', () => {
        io.to('bench').emit('bench', JSON.parse(body));
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
      return;
    }
    if (!request.url?.startsWith('/socket.io')) response.writeHead(404).end();
  });
  const io = new Server(http, { transports: ['websocket'], serveClient: false });
  io.on('connection', (socket) => {
    socket.on('join', (room: string) => {
      void socket.join(room);
      socket.emit('joined');
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => io.close(() => resolve())),
  };
});
