/**
 * Lingering close for answers given before the request body was read (413, 401, 403, 429 decided from the
 * headers). A client still writing its body reads nothing until the write completes, so a server that closes
 * the socket with the body unread makes the client fail with EPIPE or ECONNRESET instead of reading the
 * answer: measured with fetch against a 2 MiB limit, 4 of 5 8 MiB bodies and 5 of 5 50 MiB bodies got EPIPE.
 * Here the rest of the body is read and dropped, as nginx's `lingering_close` does, within a byte and a time
 * bound so a client cannot keep the server reading forever; past either the socket is cut.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

export interface LingerOptions {
  /** Most bytes read and dropped after an early answer. */
  maxBytes: number;
  /** Longest time spent reading them. */
  maxMs: number;
}

export function registerLinger(app: FastifyInstance, options: LingerOptions): void {
  app.addHook('onSend', async (request, reply) => {
    // Fastify asks to close a connection whose body it stopped reading; the close is done here instead,
    // once the body is drained, so the socket can even serve the client's next request.
    if (!request.raw.complete && reply.getHeader('connection') === 'close' && !closing(request.raw)) {
      reply.removeHeader('connection');
    }
  });
  // After Node's own finish handler, which resumes an unread request (dropping its data) and removes every
  // 'data' listener: counting must start after that.
  app.addHook('onResponse', async (request) => {
    if (!request.raw.complete) drain(request.raw, options);
  });
}

/** The client asked to close (HTTP/1.0 or `Connection: close`): Node ends the socket after the answer anyway. */
function closing(raw: IncomingMessage): boolean {
  return /\bclose\b/i.test(String(raw.headers.connection ?? '')) || raw.httpVersionMinor === 0;
}

function drain(raw: IncomingMessage, { maxBytes, maxMs }: LingerOptions): void {
  let read = 0;
  const cut = (): void => {
    done();
    // A request injected without a socket (Fastify's inject) has a stand-in without destroy(): end the request.
    if (typeof raw.socket?.destroy === 'function') raw.socket.destroy();
    else raw.destroy();
  };
  const onData = (chunk: Buffer): void => {
    read += chunk.length;
    if (read > maxBytes) cut();
  };
  const done = (): void => {
    clearTimeout(timer);
    raw.off('data', onData);
    raw.off('end', done);
    raw.off('close', done);
  };
  const timer = setTimeout(cut, maxMs);
  timer.unref();
  raw.on('data', onData);
  raw.once('end', done);
  raw.once('close', done);
  raw.resume();
}
