/**
 * A real local HTTP receiver for webhook tests: records every request, checks each signature with the
 * `standardwebhooks` package (an implementation independent of Ferry's), and answers as the test says.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Webhook } from 'standardwebhooks';
import type { FerryEvent } from '../../src/core/types.ts';

export interface Received {
  /** The webhook-id header. */
  id: string;
  headers: IncomingHttpHeaders;
  body: string;
  event: FerryEvent;
  /** The signature checked out with the receiver's secret. */
  verified: boolean;
  /** The path of the request (tells endpoints sharing one receiver apart). */
  path: string;
  at: number;
}

/** What to answer request number `n` (0-based, per path): a status, or `hang` to never answer. */
export type Responder = (path: string, n: number) => number | 'hang';

export interface Receiver {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  secret: string;
  received: Received[];
  /** Requests in flight now, and the most that were in flight at once for one webhook-id. */
  maxConcurrentPerId: number;
  close(): Promise<void>;
}

export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export async function startReceiver(respond: Responder = () => 200, secret = newSecret()): Promise<Receiver> {
  const verifier = new Webhook(secret);
  const counts = new Map<string, number>();
  const inFlight = new Map<string, number>();
  const receiver: Receiver = {
    origin: '',
    secret,
    received: [],
    maxConcurrentPerId: 0,
    close: async () => {},
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id']);
      let verified = true;
      try {
        verifier.verify(body, req.headers as Record<string, string>);
      } catch {
        verified = false;
      }
      const path = req.url ?? '/';
      receiver.received.push({
        id,
        headers: req.headers,
        body,
        event: JSON.parse(body),
        verified,
        path,
        at: Date.now(),
      });
      const n = counts.get(path) ?? 0;
      counts.set(path, n + 1);
      const answer = respond(path, n);
      if (answer === 'hang') return;
      const now = (inFlight.get(id) ?? 0) + 1;
      inFlight.set(id, now);
      receiver.maxConcurrentPerId = Math.max(receiver.maxConcurrentPerId, now);
      // Held a moment, so two deliveries of one event at once would overlap here.
      setTimeout(() => {
        inFlight.set(id, (inFlight.get(id) ?? 1) - 1);
        res.statusCode = answer;
        res.end('ok');
      }, 20);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}
