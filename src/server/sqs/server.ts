/**
 * The SQS-compatible endpoint (SPEC §7): its own Fastify instance on its own port, over the same Ferry,
 * tokens and metrics as the HTTP API. Every request is `POST /` (or to a queue URL, or a GET with the
 * query in the URL); the protocol is told by `X-Amz-Target`. Errors never leave as anything but an SQS
 * error in the request's protocol.
 */
import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import type { Ferry } from '../../core/types.ts';
import type { Metrics } from '../metrics.ts';
import { endIdleSocketsOnClose } from '../sockets.ts';
import { type Grant, OPEN_GRANT, type TokenSet } from '../tokens.ts';
import { ACTIONS, UNSUPPORTED } from './actions.ts';
import type { ActionContext } from './context.ts';
import { SqsError, toSqsError } from './errors.ts';
import { type Answer, JSON_TYPE, jsonAnswer, jsonError, parseJsonRequest } from './json-protocol.ts';
import { parseForm, parseQueryRequest, queryAnswer, queryError } from './query-protocol.ts';
import { QueueDirectory } from './queues.ts';
import { parseQuery, verifySignature } from './sigv4.ts';

export interface SqsServerOptions {
  /** Tokens with `sqs=ACCESS_KEY_ID`; none required: any credentials are accepted (loopback only). */
  tokens: TokenSet;
  /** The HTTP API's metrics, so both faces count in one registry. */
  metrics?: Metrics;
  /** Region named in queue ARNs. Default `us-east-1`. */
  region?: string;
  /** Largest request body. Default 4 MiB: ten 256 KiB messages form-encoded, or a 1 MiB one. */
  bodyLimit?: number;
  /** Fastify's logger option. Default: info-level JSON to stdout. */
  logger?: FastifyServerOptions['logger'];
}

const HOST = /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?$/;

function answer(reply: FastifyReply, a: Answer): FastifyReply {
  reply.code(a.status);
  for (const name in a.headers) reply.header(name, a.headers[name]);
  return reply.header('x-amzn-requestid', reply.request.id).send(a.body);
}

/**
 * One request's {@link ActionContext}. A class rather than an object literal with closures: nothing is
 * built per request beyond the instance. Only a long poll needs to hear that its client went away or that
 * the server is closing, so the signal's controller is made on first use, not for every request.
 */
class RequestContext implements ActionContext {
  #controller: AbortController | undefined;

  constructor(
    readonly ferry: Ferry,
    readonly queues: QueueDirectory,
    readonly grant: Grant,
    readonly base: string,
    readonly region: string,
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly shutdown: AbortSignal,
    private readonly inFlight: Set<AbortController>,
  ) {}

  get signal(): AbortSignal {
    if (this.#controller) return this.#controller.signal;
    const controller = new AbortController();
    this.#controller = controller;
    // Not AbortSignal.any with the shutdown signal: on Node 20 each call leaves a listener on the long-lived one.
    this.inFlight.add(controller);
    const { reply, inFlight } = this;
    reply.raw.once('close', () => {
      inFlight.delete(controller);
      if (!reply.raw.writableFinished) controller.abort();
    });
    if (this.shutdown.aborted || reply.raw.destroyed || this.request.raw.socket?.destroyed) controller.abort();
    return controller.signal;
  }

  get gone(): boolean {
    if (this.#controller) return this.#controller.signal.aborted;
    return this.shutdown.aborted || this.reply.raw.destroyed || this.request.raw.socket?.destroyed === true;
  }
}

/** Any error, as an SQS error in the protocol the request spoke. */
function fail(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const e = toSqsError(error);
  if (e.kind.status >= 500) request.log.warn({ err: error }, 'SQS request failed');
  const json = request.headers['x-amz-target'] !== undefined;
  return answer(reply, json ? jsonError(e) : queryError(e, request.id));
}

export async function createSqsServer(ferry: Ferry, options: SqsServerOptions): Promise<FastifyInstance> {
  const { tokens } = options;
  const region = options.region ?? 'us-east-1';
  const queues = new QueueDirectory(ferry);
  const shutdown = new AbortController();
  /** One per request in flight, aborted when its client goes or the server closes (long polls end). */
  const inFlight = new Set<AbortController>();
  const app = Fastify({
    logger: options.logger ?? { level: 'info' },
    bodyLimit: options.bodyLimit ?? 4 * 1024 * 1024,
    // Long polls last at most 20 s; idle sockets go after a minute.
    connectionTimeout: 60_000,
    keepAliveTimeout: 72_000,
    requestTimeout: 60_000,
    return503OnClosing: false,
    // The request id is the `x-amzn-requestid` answered (and, in the query protocol, the body's RequestId).
    genReqId: () => randomUUID(),
    // As on the HTTP API: no two lines per request from Fastify, one line per refused request from `handle`.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    routerOptions: { maxParamLength: 512, ignoreTrailingSlash: true },
    // A path the router cannot decode (`/%zz`) is answered here, before any route or error handler.
    frameworkErrors: (error, request, reply) =>
      fail(
        request,
        reply,
        new SqsError('InvalidAddress', `The address is not valid for this endpoint: ${error.message}`),
      ),
  });
  app.removeAllContentTypeParsers();
  // Raw bytes whatever the type: the signature covers the body as sent, and each protocol parses its own.
  const raw = (_request: FastifyRequest, body: Buffer, done: (error: null, body: Buffer) => void) => done(null, body);
  app.addContentTypeParser('*', { parseAs: 'buffer' }, raw);
  // The same parser, named for the two protocols' types: Fastify remembers the parser of a named type, but
  // parses the Content-Type header again on every request that falls to the catch-all.
  app.addContentTypeParser([JSON_TYPE, 'application/x-www-form-urlencoded'], { parseAs: 'buffer' }, raw);
  app.addHook('preClose', async () => {
    shutdown.abort(new Error('the server is closing'));
    for (const request of inFlight) request.abort();
  });
  endIdleSocketsOnClose(app);
  // Hooks that run on every request take Fastify's callback form: no promise (and tick) per request.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (shutdown.signal.aborted) reply.header('connection', 'close');
    done(null, payload);
  });

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number }, request, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return fail(
        request,
        reply,
        new SqsError('RequestEntityTooLarge', `The request body is larger than ${app.initialConfig.bodyLimit} bytes.`),
      );
    }
    if (error.statusCode !== undefined && error.statusCode < 500) {
      return fail(request, reply, new SqsError('MalformedQueryString', error.message || 'The request is malformed.'));
    }
    return fail(request, reply, error);
  });
  app.setNotFoundHandler((request, reply) =>
    fail(request, reply, new SqsError('InvalidAction', `This endpoint answers GET and POST, not ${request.method}.`)),
  );

  /** The action each request named, once known: for its metric and log line. */
  const actions = new WeakMap<FastifyRequest, string>();
  // Every answer, those refused before `handle` ran (body too large, bad address) included.
  app.addHook('onResponse', (request, reply, done) => {
    const action = actions.get(request) ?? 'unknown';
    const status = reply.statusCode;
    options.metrics?.http(request.method, `sqs:${action}`, status, reply.elapsedTime / 1000);
    // The path and action, never the query string: it can carry a presigned signature and message bodies.
    const at = request.url.indexOf('?');
    const line = { method: request.method, path: at < 0 ? request.url : request.url.slice(0, at), action, status };
    if (status >= 400) request.log.info(line, 'request refused');
    else request.log.debug(line, 'request');
    done();
  });

  /** The last Host header seen and the base URL built on it: clients send the same one on every request. */
  let lastHost: string | undefined;
  let lastBase = '';
  const handle = async (request: FastifyRequest, reply: FastifyReply) => {
    const at = request.url.indexOf('?');
    const path = at < 0 ? request.url : request.url.slice(0, at);
    try {
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const query = at < 0 ? '' : request.url.slice(at + 1);
      const grant = tokens.required
        ? verifySignature({ method: request.method, path, query, headers: request.headers, body }, tokens, Date.now())
        : OPEN_GRANT;
      const target = request.headers['x-amz-target'];
      const json = target !== undefined;
      const { action, input } = json
        ? parseJsonRequest(String(target), body)
        : parseQueryRequest([...parseQuery(query), ...parseForm(body.toString('utf8'))], path);
      // Own keys only: `__proto__` or `constructor` is an unknown action, not a property of every object.
      const run = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
      if (!run) {
        if (UNSUPPORTED.has(action)) {
          throw new SqsError('UnsupportedOperation', `${action} is not supported by Ferry's SQS endpoint.`);
        }
        throw new SqsError('InvalidAction', `The action ${action.slice(0, 64)} is not valid for this endpoint.`);
      }
      actions.set(request, action);
      const host = request.headers.host;
      let base: string;
      if (host !== undefined && host === lastHost) base = lastBase;
      else if (typeof host === 'string' && HOST.test(host)) {
        base = `http://${host}`;
        lastHost = host;
        lastBase = base;
      } else base = `http://${request.hostname}`;
      const context = new RequestContext(ferry, queues, grant, base, region, request, reply, shutdown.signal, inFlight);
      const output = await run(context, input);
      return answer(reply, json ? jsonAnswer(output) : queryAnswer(action, output, request.id));
    } catch (error) {
      return fail(request, reply, error);
    }
  };
  app.route({ method: ['GET', 'POST'], url: '/', handler: handle });
  app.route({ method: ['GET', 'POST'], url: '/*', handler: handle });
  return app;
}
