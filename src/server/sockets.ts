/**
 * Closing without waiting for connections that never sent a byte. Node's `server.close()` ends keep-alive
 * connections idle after an answer, but not one that has not sent a request: a client that opened a
 * connection for a request it then aborted before writing it (a remote worker's long poll, replaced as it
 * closed) left the server's close waiting until that client let the connection go (undici: 4 s) or the close
 * bound cut it (10 s), measured on Node 20.20. Here such connections are ended when closing begins, once they
 * have been open a moment (one opened just now may be carrying its first request: it gets that moment, as Go's
 * `Shutdown` gives new connections). A connection that has sent anything is left to Node and to the request
 * on it (headers still arriving, a body drained after an early answer: linger.ts).
 */
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** How long a connection that has sent nothing is given to start its request once closing begins (ms). */
const FIRST_BYTES_MS = 500;

export function endIdleSocketsOnClose(app: FastifyInstance): void {
  /** Open connections, by when they were accepted. */
  const sockets = new Map<Socket, number>();
  app.server.on('connection', (socket: Socket) => {
    sockets.set(socket, Date.now());
    socket.once('close', () => sockets.delete(socket));
  });
  const endSilent = (): number => {
    const now = Date.now();
    let young = 0;
    for (const [socket, accepted] of sockets) {
      if (socket.bytesRead > 0) continue;
      if (now - accepted >= FIRST_BYTES_MS) socket.destroy();
      else young++;
    }
    return young;
  };
  app.addHook('preClose', async () => {
    if (endSilent() > 0) setTimeout(endSilent, FIRST_BYTES_MS).unref();
  });
}
