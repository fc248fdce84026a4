/**
 * Tracing (SPEC §8) with `@opentelemetry/api` only: the application registers an SDK, or nothing happens.
 * Spans follow the OpenTelemetry messaging conventions: a PRODUCER span per send (`send <queue>`) or
 * publish (`publish <topic>`), whose context travels in the message's headers (`traceparent`,
 * `tracestate`: whatever the registered propagator writes); a CONSUMER span per attempt in `work()`
 * (`process <queue>`), child of that context and linked to it; a CLIENT span per `receive()` call
 * (`receive <queue>`), linked to the context of each message it got.
 *
 * Shared by the engine, the HTTP client and the worker loop, so browser-safe: no `node:` imports here.
 *
 * Cost without an SDK: {@link ferryTracer} answers undefined after one global lookup, and every caller
 * then skips span, attributes and headers alike: no object is allocated for tracing.
 */
import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';

export const TRACER_NAME = 'ferry';

/** The provider a registered SDK sits behind: `getDelegateTracer` answers undefined while there is none. */
interface ProxyProvider {
  getDelegateTracer(name: string, version?: string): Tracer | undefined;
}

/**
 * Ferry's tracer, or undefined when no TracerProvider is registered (the API's no-op). Looked up on each
 * call, not cached: an SDK registered (or replaced) after Ferry was loaded is used from then on.
 */
export function ferryTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider();
  const proxy = provider as unknown as Partial<ProxyProvider>;
  if (typeof proxy.getDelegateTracer === 'function') return proxy.getDelegateTracer(TRACER_NAME);
  return provider.getTracer(TRACER_NAME);
}

/** Set by the HTTP server on a request's context: the request's SERVER span already stands for a receive. */
export const SERVER_REQUEST = createContextKey('ferry.server-request');

type Carrier = Record<string, unknown>;

function isCarrier(value: unknown): value is Carrier {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Whether these (unchecked) headers already carry a trace context: the user's, or an upstream Ferry's. */
export function hasTraceContext(headers: unknown): boolean {
  return isCarrier(headers) && typeof headers.traceparent === 'string';
}

/**
 * The headers with the propagation fields of `ctx` added. A field already present is kept as it is (the
 * user's choice wins); headers that are not an object are returned untouched, for validation to refuse.
 */
export function withTraceHeaders<H>(headers: H, ctx: Context): H | Record<string, unknown> {
  if (headers !== undefined && !isCarrier(headers)) return headers;
  const fields: Record<string, string> = {};
  propagation.inject(ctx, fields);
  const given = headers as Carrier | undefined;
  for (const name of Object.keys(fields)) if (given !== undefined && name in given) delete fields[name];
  return given === undefined ? fields : { ...given, ...fields };
}

/** Send options with the propagation fields of `ctx` added to their headers (see {@link withTraceHeaders}). */
export function withTraceOptions<O>(options: O, ctx: Context): O {
  if (options !== undefined && !isCarrier(options)) return options;
  const given = options as Carrier | undefined;
  return { ...given, headers: withTraceHeaders(given?.headers, ctx) } as O;
}

/** The context a message's headers carry (from ROOT: not whatever happens to be active in the worker). */
export function messageContext(headers: Record<string, string> | undefined): Context {
  return headers ? propagation.extract(ROOT_CONTEXT, headers) : ROOT_CONTEXT;
}

function messagingAttributes(operation: string, type: string, destination: string, count?: number): Attributes {
  const attributes: Attributes = {
    'messaging.system': 'ferry',
    'messaging.operation.name': operation,
    'messaging.operation.type': type,
    'messaging.destination.name': destination,
  };
  if (count !== undefined && count !== 1) attributes['messaging.batch.message_count'] = count;
  return attributes;
}

/** Marks a span failed with `error` (an exception event, `error.type`, ERROR status). */
export function recordFailure(span: Span, error: unknown): void {
  const e = error instanceof Error ? error : undefined;
  if (e) span.recordException(e);
  else span.recordException({ message: String(error) });
  span.setAttribute('error.type', e?.name ?? typeof error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e?.message ?? String(error) });
}

/** Runs `fn` in `span` (made current), then `done` with its result; records a failure; always ends it. */
async function runIn<T>(span: Span, parent: Context, fn: (ctx: Context) => Promise<T>, done: (r: T) => void) {
  const ctx = trace.setSpan(parent, span);
  try {
    const result = await context.with(ctx, fn, undefined, ctx);
    done(result);
    return result;
  } catch (error) {
    recordFailure(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/**
 * Runs `fn` (which sends `count` messages to `destination`) in a PRODUCER span; `fn` gets the span's
 * context to inject into the messages' headers. Ends the span when `fn` settles; `idOf` names the message
 * sent (`messaging.message.id`) when there is one.
 */
export function producerSpan<T>(
  tracer: Tracer,
  operation: 'send' | 'publish',
  destination: string,
  count: number,
  fn: (ctx: Context) => Promise<T>,
  idOf?: (result: T) => string,
): Promise<T> {
  const parent = context.active();
  const span = tracer.startSpan(
    `${operation} ${destination}`,
    { kind: SpanKind.PRODUCER, attributes: messagingAttributes(operation, 'send', destination, count) },
    parent,
  );
  return runIn(span, parent, fn, (result) => {
    if (idOf) span.setAttribute('messaging.message.id', idOf(result));
  });
}

/** Runs a `receive()` in a CLIENT span; the span links to the creation context of each message received. */
export function receiveSpan<T extends { id: string; headers: Record<string, string> }>(
  tracer: Tracer,
  queue: string,
  fn: () => Promise<T[]>,
): Promise<T[]> {
  const parent = context.active();
  const span = tracer.startSpan(
    `receive ${queue}`,
    { kind: SpanKind.CLIENT, attributes: messagingAttributes('receive', 'receive', queue) },
    parent,
  );
  return runIn(span, parent, fn, (messages) => {
    span.setAttribute('messaging.batch.message_count', messages.length);
    if (messages.length === 1) span.setAttribute('messaging.message.id', messages[0]!.id);
    for (const m of messages) {
      const linked = trace.getSpanContext(messageContext(m.headers));
      if (linked) span.addLink({ context: linked, attributes: { 'messaging.message.id': m.id } });
    }
  });
}

/** What the worker needs to know of a delivery to trace its attempt. */
export interface Traced {
  id: string;
  queue: string;
  attempt: number;
  headers: Record<string, string>;
}

/**
 * Starts the CONSUMER span of one attempt: parent is the message's creation context (SPEC §8), which it
 * also links to, as the messaging conventions recommend for process spans. Answers the span and the
 * context to run the handler (and its ack or nack) in.
 */
export function startProcessSpan(tracer: Tracer, delivery: Traced): { span: Span; ctx: Context } {
  const parent = messageContext(delivery.headers);
  const created = trace.getSpanContext(parent);
  const links: Link[] | undefined = created ? [{ context: created }] : undefined;
  const attributes = messagingAttributes('process', 'process', delivery.queue);
  attributes['messaging.message.id'] = delivery.id;
  attributes['ferry.attempt'] = delivery.attempt;
  const span = tracer.startSpan(
    `process ${delivery.queue}`,
    { kind: SpanKind.CONSUMER, attributes, ...(links ? { links } : {}) },
    parent,
  );
  return { span, ctx: trace.setSpan(parent, span) };
}
