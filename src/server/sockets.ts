/**
 * Closing without waiting for connections that carry no request. Node's `server.close()` ends idle
 * keep-alive connections, but not one that has never sent a request: a client that opened a connection for
 * a request it then aborted before writing it (a remote worker's long poll, replaced as it closed) left the
 * server's close waiting until that client let the connection go (undici: 4 s) or the close bound cut it
 * (10 s), measured on Node 20.20. Here every connection with no request in flight is ended when closing
 * begins; those with one stay until it is answered (an answer given while draining closes its connection).
 */
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

export function endIdleSocketsOnClose(app: FastifyInstance): void {
  /** Each open connection, with its requests in flight. */
  const sockets = new Map<Socket, number>();
  app.server.on('connection', (socket: Socket) => {
    sockets.set(socket, 0);
    socket.once('close', () => sockets.delete(socket));
  });
  app.server.on('request', (request, response) => {
    const socket = request.socket as Socket;
    sockets.set(socket, (sockets.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const n = sockets.get(socket);
      if (n !== undefined) sockets.set(socket, n - 1);
    });
  });
  app.addHook('preClose', async () => {
    for (const [socket, n] of sockets) if (n === 0) socket.destroy();
  });
}
