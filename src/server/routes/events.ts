/**
 * `GET /v1/events`: Server-Sent Events over the Ferry's event stream, written by hand on a hijacked reply.
 * `id:` is the event's seq, so a reconnecting EventSource sends `Last-Event-ID` and resumes from the durable
 * log with no gap and no duplicate. Comments every `heartbeatMs` keep proxies from closing an idle stream.
 * `POST /v1/stream-tokens` issues the short-lived token EventSource puts in `?token=`.
 */
import { once } from 'node:events';
import { parseDuration } from '../../core/duration.ts';
import { ForbiddenError, InvalidRequestError } from '../../core/errors.ts';
import type { EventType } from '../../core/types.ts';
import { checkEventTypes } from '../../core/validate.ts';
import type { App, RouteDeps } from '../deps.ts';
import { EventsQuery, Problem, StreamToken, StreamTokenBody } from '../schemas.ts';
import { queueAllowed, SCOPES } from '../tokens.ts';

const problems = { 400: Problem, 401: Problem, 403: Problem, 429: Problem };
const STREAM_TOKEN_TTL = 5 * 60_000;
const STREAM_TOKEN_MAX_TTL = 3_600_000;

function lastEventId(header: string | string[] | undefined, fallback: number | undefined): number | undefined {
  if (header === undefined || header === '') return fallback;
  const text = Array.isArray(header) ? header[0] : header;
  if (text === undefined || !/^\d{1,15}$/.test(text)) {
    throw new InvalidRequestError(`Last-Event-ID must be an event seq (a whole number); got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

export async function eventRoutes(app: App, deps: RouteDeps): Promise<void> {
  const { ferry } = deps;

  app.post(
    '/v1/stream-tokens',
    {
      schema: {
        summary: 'A short-lived token for the events stream, for EventSource’s `?token=`',
        body: StreamTokenBody,
        response: { 200: StreamToken, ...problems },
      },
      config: { access: { scopes: SCOPES } },
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    },
    async (request) => {
      const { queue, ttl } = request.body;
      if (queue !== undefined && !queueAllowed(request.grant, queue)) {
        throw new ForbiddenError(`this token may not use queue ${JSON.stringify(queue)}`);
      }
      const ms = ttl === undefined ? STREAM_TOKEN_TTL : parseDuration(ttl, 'ttl', 1000, STREAM_TOKEN_MAX_TTL);
      return deps.streams.issue(request.grant, queue ?? null, ms);
    },
  );

  app.get(
    '/v1/events',
    {
      schema: {
        summary: 'Server-Sent Events of every change of state',
        description:
          '`text/event-stream`: `id:` seq, `event:` type, `data:` the event as JSON. Resumes after `Last-Event-ID` (or `?after=`).',
        querystring: EventsQuery,
        response: { ...problems },
      },
      config: { access: { scopes: SCOPES, streamToken: true } },
    },
    async (request, reply) => {
      const { grant, query } = request;
      const types: EventType[] | undefined = query.types ? checkEventTypes(query.types.split(',')) : undefined;
      const after = lastEventId(
        request.headers['last-event-id'],
        query.after === undefined ? undefined : Number(query.after),
      );
      const queue = query.queue ?? request.streamQueue ?? undefined;
      if (request.streamQueue !== null && queue !== request.streamQueue) {
        throw new ForbiddenError(`this stream token is for queue ${JSON.stringify(request.streamQueue)} only`);
      }
      if (queue !== undefined && !queueAllowed(grant, queue)) {
        throw new ForbiddenError(`this token may not use queue ${JSON.stringify(queue)}`);
      }

      reply.hijack();
      const res = reply.raw;
      // A stream lives until the client leaves; heartbeats, not the idle timeout, keep proxies from cutting it.
      request.raw.socket?.setTimeout?.(0);
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write('retry: 2000\n\n');

      const left = new AbortController();
      const signal = AbortSignal.any([left.signal, deps.shutdown]);
      const stream = ferry.events({ queue, types, after, signal });
      // Where the stream starts, as an id with no data: a client that reconnects before any event arrives
      // resumes from here instead of from "now", so it misses nothing in between.
      stream.since().then(
        (seq) => res.write(`id: ${seq}\n\n`),
        () => {},
      );
      const stop = (): void => {
        left.abort();
        stream.close();
      };
      res.once('close', stop);
      signal.addEventListener('abort', () => stream.close(), { once: true });
      const heartbeat = setInterval(() => res.write(': ping\n\n'), deps.heartbeatMs);
      try {
        for await (const event of stream) {
          if (grant.queues !== null && !queueAllowed(grant, event.queue)) continue;
          const ok = res.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
          if (!ok && !res.destroyed) await once(res, 'drain', { signal });
        }
      } catch (error) {
        if (!signal.aborted) request.log.warn({ err: error }, 'event stream failed');
      } finally {
        clearInterval(heartbeat);
        res.off('close', stop);
        stream.close();
        res.end();
      }
    },
  );
}
