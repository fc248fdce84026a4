/**
 * `startServer`: opens a store, serves the API on it, and closes both gracefully. Options fall back to the
 * environment (SPEC §5): FERRY_STORE, FERRY_HOST, FERRY_PORT, FERRY_SQS_PORT, FERRY_TOKENS. Signal handling is
 * the CLI's.
 */
import { isIP } from 'node:net';
import { InvalidRequestError } from '../core/errors.ts';
import type { Duration, Ferry } from '../core/types.ts';
import { open } from '../index.ts';
import { createServer, type ServerOptions } from './app.ts';
import { createSqsServer } from './sqs/server.ts';
import { TokenSet } from './tokens.ts';

export interface StartOptions extends ServerOptions {
  /** Store URL. Default FERRY_STORE, else `sqlite:./ferry-data/ferry.db`. */
  store?: string;
  /** Default FERRY_HOST, else 127.0.0.1. */
  host?: string;
  /** Default FERRY_PORT, else 7070; 0 picks a free port. */
  port?: number;
  /** Also answer the Amazon SQS API on this port (SPEC §7); 0 picks a free port. Default FERRY_SQS_PORT, else none. */
  sqsPort?: number;
  /** Longest `close()` waits for requests in flight before cutting connections. Default 10 s. */
  closeTimeoutMs?: number;
  /** Serve this Ferry instead of opening `store` (closed by `close()` all the same). */
  ferry?: Ferry;
  /** How long the store's event log keeps events for resuming streams (when it opens `store`). Default 1d. */
  eventRetention?: Duration;
  /** Lets webhooks reach loopback and private addresses (local development only; when it opens `store`). */
  webhookAllowPrivate?: boolean;
}

export interface RunningServer {
  /** e.g. `http://127.0.0.1:7070`. */
  url: string;
  /** The SQS endpoint, e.g. `http://127.0.0.1:9324`, when one was asked for. */
  sqsUrl: string | null;
  /** Stops accepting, lets requests in flight finish (long polls answer at once), closes the store. */
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

function checkPort(text: unknown, what: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidRequestError(`${what} must be an integer from 0 to 65535; got ${JSON.stringify(text)}`);
  }
  return port;
}

function envTokens(): string[] {
  const text = process.env.FERRY_TOKENS;
  return text ? [text] : [];
}

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  const host = options.host ?? process.env.FERRY_HOST ?? '127.0.0.1';
  const portText = options.port ?? process.env.FERRY_PORT ?? 7070;
  const port = checkPort(portText, 'port');
  const sqsPortText = options.sqsPort ?? process.env.FERRY_SQS_PORT;
  const sqsPort = sqsPortText === undefined || sqsPortText === '' ? null : checkPort(sqsPortText, 'sqsPort');
  const tokens = options.tokens ?? envTokens();
  // Parse now, so a malformed token fails before anything opens.
  const tokenSet = new TokenSet(tokens);
  const required = tokenSet.required;
  if (!required && !isLoopback(host)) {
    throw new InvalidRequestError(
      `refusing to listen on ${host} without a token: anyone who can reach it could read and change every queue. Give --token (or FERRY_TOKENS), or listen on 127.0.0.1`,
    );
  }
  const ferry =
    options.ferry ??
    (await open(options.store ?? process.env.FERRY_STORE, {
      ...(options.eventRetention !== undefined && { eventRetention: options.eventRetention }),
      ...(options.webhookAllowPrivate === true && { webhookAllowPrivate: true }),
    }));
  type Server = Awaited<ReturnType<typeof createServer>>;
  let opened: Server | null = null;
  let sqs: Server | null = null;
  try {
    opened = await createServer(ferry, { ...options, tokens });
    await opened.listen({ host, port });
    if (sqsPort !== null) {
      sqs = await createSqsServer(ferry, {
        tokens: tokenSet,
        metrics: opened.ferryMetrics,
        ...(options.logger === undefined ? {} : { logger: options.logger }),
      });
      await sqs.listen({ host, port: sqsPort });
    }
  } catch (error) {
    await sqs?.close();
    await opened?.close();
    await ferry.close();
    throw error;
  }
  const app: Server = opened;
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const urlOf = (server: Server, fallback: number) => {
    const address = server.server.address();
    return `http://${shownHost}:${typeof address === 'object' && address ? address.port : fallback}`;
  };
  const url = urlOf(app, port);
  const sqsUrl = sqs ? urlOf(sqs, sqsPort as number) : null;

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const bound = options.closeTimeoutMs ?? 10_000;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          app.log.warn(`requests still running after ${bound} ms; closing their connections`);
          app.server.closeAllConnections();
          sqs?.server.closeAllConnections();
          resolve();
        }, bound);
      });
      try {
        await Promise.race([Promise.all([app.close(), sqs?.close()]), late]);
      } finally {
        clearTimeout(timer);
        await ferry.close();
      }
    })();
    return closing;
  };
  return { url, sqsUrl, close };
}
