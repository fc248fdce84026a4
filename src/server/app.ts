/**
 * The HTTP API of SPEC §4 as a Fastify app over any {@link Ferry}: an embedded store, PostgreSQL, or even
 * another server through `connect()`. The caller owns the Ferry: closing the app does not close it.
 */
import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import { parseDuration } from '../core/duration.ts';
import { UnavailableError } from '../core/errors.ts';
import { redactUrl } from '../core/redact.ts';
import type { Duration, Ferry } from '../core/types.ts';
import { registerAccess } from './access.ts';
import { allowedMethods } from './allow.ts';
import { Cancellations } from './cancellations.ts';
import type { App, RouteDeps } from './deps.ts';
import { WriteHealth, writesStore } from './health.ts';
import { MAX_BODY_DEPTH, registerJsonParser } from './json-body.ts';
import { registerLinger } from './linger.ts';
import { Metrics } from './metrics.ts';
import { clientErrorHandler, errorHandler, notFoundHandler } from './problem.ts';
import { RateLimiter, type RateLimitOptions } from './rate-limit.ts';
import { deliveryRoutes } from './routes/deliveries.ts';
import { eventRoutes } from './routes/events.ts';
import { flowRoutes } from './routes/flows.ts';
import { messageRoutes } from './routes/messages.ts';
import { opsRoutes } from './routes/ops.ts';
import { queueRoutes } from './routes/queues.ts';
import { scheduleRoutes } from './routes/schedules.ts';
import { topicRoutes } from './routes/topics.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { endIdleSocketsOnClose } from './sockets.ts';
import { StreamTokens } from './stream-tokens.ts';
import { TokenSet } from './tokens.ts';
import { registerTracing } from './tracing.ts';

/** A route as registered, for tools and tests that walk the router. */
export interface RouteEntry {
  method: string;
  url: string;
  access: import('./access.ts').Access | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered, in order. */
    ferryRoutes: RouteEntry[];
    /** The server's metrics, shared with the SQS endpoint beside it. */
    ferryMetrics: Metrics;
  }
}

export interface ServerOptions {
  /** Token entries (see src/server/tokens.ts for the format). None: every request is let in. */
  tokens?: string[];
  /** Origins allowed to call the API from a browser, e.g. `https://app.example.com`. None: no CORS headers. */
  cors?: string[];
  /** Per-token (or, without tokens, per-address) request rate. Default: none. */
  rateLimit?: RateLimitOptions | false;
  /** Largest request body in bytes. Default 2 MiB (a 1 MiB payload plus its options, escaped). */
  bodyLimit?: number;
  /** Largest body of the routes that carry many items (`POST …/batch`, `/v1/sends`, `/v1/acks`). Default 32 MiB. */
  batchBodyLimit?: number;
  /** Deepest JSON nesting accepted in a body. Default 1072 (MAX_BODY_DEPTH, room for every value the SDK takes). */
  maxDepth?: number;
  /** How long /healthz waits for the store before answering 503 (`check: store`). Default 5s. */
  healthTimeout?: Duration;
  /**
   * A connection with no request in progress and no traffic for this long is closed: before its first
   * request, and between keep-alive requests. Default 90s. Long polls and event streams are not cut by it
   * (they are bounded by their `wait` and kept up by heartbeats).
   */
  idleTimeout?: Duration;
  /** Longest time to receive a whole request, headers and body, against slow senders. Default 120s. */
  requestTimeout?: Duration;
  /** Between SSE heartbeat comments. Default 15s. */
  heartbeat?: Duration;
  /** Shared secret for stream tokens when several servers sit behind one balancer. Default: random. */
  streamSecret?: string;
  /** Fastify's logger option: true, pino options, or a pino instance. Default: info-level JSON to stdout. */
  logger?: FastifyServerOptions['logger'];
  /** Trust X-Forwarded-* from a proxy (for the client address used by rate limits and logs). */
  trustProxy?: boolean;
  /** Registered after the API, e.g. the dashboard's `GET /`. */
  plugins?: ((app: FastifyInstance, ferry: Ferry) => Promise<void>)[];
}

const MiB = 1024 * 1024;
/** Longest time spent reading and dropping a body after an early answer (see linger.ts). */
const LINGER_MS = 10_000;

/** Builds (but does not start) the HTTP API over `ferry`. */
export async function createServer(ferry: Ferry, options: ServerOptions = {}): Promise<FastifyInstance> {
  const tokens = new TokenSet(options.tokens ?? []);
  const streams = new StreamTokens(options.streamSecret);
  const limiter = options.rateLimit ? new RateLimiter(options.rateLimit) : null;
  const heartbeatMs = parseDuration(options.heartbeat ?? '15s', 'heartbeat', 10, 3_600_000);
  const healthTimeoutMs = parseDuration(options.healthTimeout ?? '5s', 'healthTimeout', 10, 3_600_000);
  const bodyLimit = options.bodyLimit ?? 2 * MiB;
  const batchBodyLimit = options.batchBodyLimit ?? 32 * MiB;
  const idleMs = parseDuration(options.idleTimeout ?? '90s', 'idleTimeout', 10, 3_600_000);
  const requestMs = parseDuration(options.requestTimeout ?? '120s', 'requestTimeout', 10, 3_600_000);

  const fastify = Fastify({
    logger: options.logger ?? { level: 'info' },
    bodyLimit,
    trustProxy: options.trustProxy ?? false,
    // What closes an idle socket, as measured on Node 20.20 with 20 raw sockets: before any request, the
    // socket timeout (`connectionTimeout`, closed at 90 s); after an answer, `keepAliveTimeout`. Neither
    // `headersTimeout` nor `requestTimeout` touches a socket that has sent nothing. Long polls and event
    // streams switch the socket timeout off while they run (see long-poll.ts and routes/events.ts).
    connectionTimeout: idleMs,
    keepAliveTimeout: idleMs,
    requestTimeout: requestMs,
    http: {
      maxHeaderSize: 16 * 1024,
      // Node refuses a headers timeout above the request timeout; its check runs every interval, so a short
      // request timeout (tests) needs a short interval to mean anything.
      headersTimeout: Math.min(60_000, requestMs),
      connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(requestMs / 4))),
    },
    // Requests still arriving while draining are served (the store is open until the end) rather than 503.
    return503OnClosing: false,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // One line per refused request from our onResponse hook instead of Fastify's two per request.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    routerOptions: { maxParamLength: 512, ignoreTrailingSlash: true },
    // Bad URL encodings (`%zz`, 400) and over-long parameters (414) are refused by the router before any
    // route: they get a problem like every other error.
    frameworkErrors: errorHandler,
    clientErrorHandler,
  });
  const app = fastify.withTypeProvider() as unknown as App;
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler((path) => allowedMethods(app.ferryRoutes, path)));
  registerJsonParser(app, options.maxDepth ?? MAX_BODY_DEPTH);

  app.decorate('ferryRoutes', [] as RouteEntry[]);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD') continue;
      app.ferryRoutes.push({ method, url: route.url, access: route.config?.access });
    }
    // Routes that carry many messages (or results) in one body take the batch limit.
    if (route.url.startsWith('/v1/queues/:queue/batch') || route.url === '/v1/sends' || route.url === '/v1/acks') {
      route.bodyLimit ??= batchBodyLimit;
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  registerTracing(app as unknown as FastifyInstance);

  // Before the draining hook below, which must still be able to ask for the connection to close.
  registerLinger(app as unknown as FastifyInstance, {
    maxBytes: 4 * Math.max(bodyLimit, batchBodyLimit),
    maxMs: LINGER_MS,
  });
  const metrics = new Metrics(ferry);
  app.decorate('ferryMetrics', metrics);
  const shutdown = new AbortController();
  app.addHook('onReady', async () => metrics.start());
  app.addHook('preClose', async () => shutdown.abort(new Error('the server is closing')));
  endIdleSocketsOnClose(app as unknown as FastifyInstance);
  // Answers given while draining end their connection, so close() does not wait out keep-alive timeouts.
  app.addHook('onSend', async (_request, reply) => {
    if (shutdown.signal.aborted) reply.header('connection', 'close');
  });
  app.addHook('onClose', async () => metrics.stop());
  const writes = new WriteHealth();
  app.addHook('onError', async (request, _reply, error) => {
    if (error instanceof UnavailableError && request.method !== 'GET') writes.failed(error);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    if (reply.statusCode < 300 && writesStore(request.method, request.routeOptions.url)) writes.succeeded();
    metrics.http(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    if (reply.statusCode >= 400) {
      request.log.info(
        { method: request.method, url: redactUrl(request.url), status: reply.statusCode },
        'request refused',
      );
    } else {
      request.log.debug(
        { method: request.method, url: redactUrl(request.url), status: reply.statusCode, ms: reply.elapsedTime },
        'request',
      );
    }
  });

  if (options.cors && options.cors.length > 0) {
    await app.register(cors, {
      // Never '*': only the listed origins, with the headers the API and SSE resume need.
      origin: options.cors,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      // traceparent and tracestate: a traced browser app's calls continue its trace (SPEC §8).
      allowedHeaders: ['authorization', 'content-type', 'last-event-id', 'x-request-id', 'traceparent', 'tracestate'],
      exposedHeaders: ['location', 'retry-after', 'x-request-id'],
      maxAge: 600,
    });
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Ferry', version: '0.1.0', description: 'A durable broker for asynchronous messages and tasks.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: tokens.required ? [{ bearer: [] }] : [],
    },
  });

  registerAccess(app, { tokens, streams, limiter, ferry });
  const cancellations = new Cancellations();
  const deps: RouteDeps = {
    ferry,
    shutdown: shutdown.signal,
    metrics,
    streams,
    heartbeatMs,
    healthTimeoutMs,
    cancellations,
    writes,
  };
  for (const routes of [
    messageRoutes,
    flowRoutes,
    deliveryRoutes,
    queueRoutes,
    topicRoutes,
    scheduleRoutes,
    webhookRoutes,
    eventRoutes,
    opsRoutes,
  ]) {
    await routes(app, deps);
  }
  for (const plugin of options.plugins ?? []) await plugin(app as unknown as FastifyInstance, ferry);
  return app as unknown as FastifyInstance;
}
