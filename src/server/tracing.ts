/**
 * SERVER spans for HTTP requests (SPEC §8): each request continues the caller's `traceparent` (or whatever
 * the registered propagator reads), and the engine's spans for it are children of the request's span.
 * Nothing is done while no OpenTelemetry SDK is registered.
 *
 * Where an HTTP instrumentation already made a SERVER span for the request (it is the active span when the
 * request arrives), Ferry makes none of its own and parents the engine's spans under that one.
 */
import { type Context, context, propagation, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ferryTracer, SERVER_REQUEST } from '../engine/tracing.ts';

const TRACE: unique symbol = Symbol('ferry.trace');

type Traced = FastifyRequest & { [TRACE]?: Context };

export function registerTracing(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    const tracer = ferryTracer();
    if (tracer === undefined) return done();
    const active = context.active();
    let span: Span | undefined = trace.getSpan(active);
    let ctx: Context;
    if (span) {
      ctx = active.setValue(SERVER_REQUEST, true);
    } else {
      const parent = propagation.extract(active, request.headers);
      const route = request.routeOptions.url;
      span = tracer.startSpan(
        route ? `${request.method} ${route}` : request.method,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': request.method,
            // The path only: a query string may carry a stream token.
            'url.path': request.url.split('?', 1)[0],
            'url.scheme': request.protocol,
            'client.address': request.ip,
            ...(route ? { 'http.route': route } : {}),
          },
        },
        parent,
      );
      ctx = trace.setSpan(parent, span).setValue(SERVER_REQUEST, true);
      const own = span;
      let ended = false;
      // 'close' comes for every answer, hijacked ones (event streams) and cut connections included.
      const end = (): void => {
        if (ended) return;
        ended = true;
        const status = reply.raw.statusCode;
        own.setAttribute('http.response.status_code', status);
        if (status >= 500) {
          own.setAttribute('error.type', String(status));
          own.setStatus({ code: SpanStatusCode.ERROR });
        }
        own.end();
      };
      reply.raw.once('finish', end);
      reply.raw.once('close', end);
    }
    (request as Traced)[TRACE] = ctx;
    context.with(ctx, done);
  });
  // The body was read in between (stream callbacks lose the context): the handler runs in it again.
  app.addHook('preHandler', (request, _reply, done) => {
    const ctx = (request as Traced)[TRACE];
    if (ctx === undefined) return done();
    context.with(ctx, done);
  });
}
