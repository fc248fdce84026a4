/**
 * Tracing over HTTP (SPEC §8), server side: a request continues the caller's `traceparent`, the engine's
 * spans for it are its children, a worker's acks over connect() belong to the attempt's trace, browsers may
 * send the trace headers (CORS), and spans of requests that never end normally (event streams) still end.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { connect } from '../../src/client/index.ts';
import type { Ferry } from '../../src/core/types.ts';
import { type RunningServer, startServer } from '../../src/server/index.ts';
import { waitFor } from '../conformance/helpers.ts';
import { harness, qname } from './helpers.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

describe('tracing over HTTP', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let server: RunningServer;
  let client: Ferry;

  before(async () => {
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    server = await startServer({ store: 'memory:', port: 0, logger: false });
    client = await connect(server.url);
  });
  after(async () => {
    await client?.close();
    await server?.close();
    trace.disable();
    propagation.disable();
    context.disable();
    await provider.shutdown();
  });
  beforeEach(() => exporter.reset());

  const finished = (filter: (s: ReadableSpan) => boolean, what: string): Promise<ReadableSpan[]> =>
    waitFor(async () => {
      const found = exporter.getFinishedSpans().filter(filter);
      return found.length > 0 ? found : undefined;
    }, what);

  it("continues the caller's traceparent: SERVER span, then the engine's PRODUCER span, whose context the message carries", async () => {
    const q = qname();
    const response = await fetch(`${server.url}/v1/queues/${q}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` },
      body: JSON.stringify({ payload: { from: 'curl' } }),
    });
    assert.equal(response.status, 201);
    const { id } = (await response.json()) as { id: string };
    const [serverSpan] = await finished(
      (s) => s.kind === SpanKind.SERVER && s.attributes['url.path'] === `/v1/queues/${q}/messages`,
      'the SERVER span',
    );
    assert.equal(serverSpan!.name, 'POST /v1/queues/:queue/messages');
    assert.equal(serverSpan!.spanContext().traceId, TRACE_ID);
    assert.equal(serverSpan!.parentSpanContext?.spanId, CALLER_SPAN);
    assert.equal(serverSpan!.attributes['http.route'], '/v1/queues/:queue/messages');
    assert.equal(serverSpan!.attributes['http.response.status_code'], 201);
    const [producer] = exporter.getFinishedSpans().filter((s) => s.name === `send ${q}`);
    assert.ok(producer, 'a message sent without a traceparent header of its own gets a PRODUCER span on the server');
    assert.equal(producer.kind, SpanKind.PRODUCER);
    assert.equal(producer.parentSpanContext?.spanId, serverSpan!.spanContext().spanId);
    const info = await client.get(id);
    assert.equal(info?.headers.traceparent, `00-${TRACE_ID}-${producer.spanContext().spanId}-01`);
  });

  it("a message sent through connect() has one PRODUCER span, the client's; the server span is its child", async () => {
    const q = qname();
    const sent = await client.send(q, 1);
    const producers = exporter.getFinishedSpans().filter((s) => s.name === `send ${q}`);
    assert.equal(producers.length, 1);
    const [serverSpan] = await finished(
      (s) => s.attributes['url.path'] === `/v1/queues/${q}/messages`,
      'the SERVER span',
    );
    assert.equal(serverSpan!.parentSpanContext?.spanId, producers[0]!.spanContext().spanId);
    assert.equal((await client.get(sent.id))?.headers.traceparent?.split('-')[2], producers[0]!.spanContext().spanId);
  });

  it("a worker's ack over connect() is a request inside the attempt's CONSUMER span", async () => {
    const q = qname();
    const sent = await client.send(q, 'work');
    const worker = client.work(q, async () => 'done');
    try {
      const [consumer] = await finished((s) => s.name === `process ${q}`, 'the CONSUMER span');
      const acks = exporter
        .getFinishedSpans()
        .filter((s) => s.kind === SpanKind.SERVER && String(s.attributes['http.route']).includes('ack'));
      assert.ok(
        acks.some((s) => s.parentSpanContext?.spanId === consumer!.spanContext().spanId),
        `an ack request parented by the attempt; saw ${acks.map((s) => `${s.name} ← ${s.parentSpanContext?.spanId}`)}`,
      );
      assert.equal((await client.get(sent.id))?.state, 'completed');
    } finally {
      await worker.close();
    }
  });

  it("the worker's polls belong to no caller's trace, even when work() was called inside a span", async () => {
    const q = qname();
    const tracer = trace.getTracer('test');
    const worker = tracer.startActiveSpan('startup', (span) => {
      try {
        return client.work(q, async () => 'done');
      } finally {
        span.end();
      }
    });
    try {
      await client.send(q, 'x');
      await finished((s) => s.name === `process ${q}`, 'the CONSUMER span');
      const [startup] = exporter.getFinishedSpans().filter((s) => s.name === 'startup');
      const polls = exporter.getFinishedSpans().filter((s) => s.attributes['url.path'] === `/v1/queues/${q}/receive`);
      assert.ok(polls.length > 0, 'the worker polled');
      for (const poll of polls) assert.notEqual(poll.spanContext().traceId, startup!.spanContext().traceId);
    } finally {
      await worker.close();
    }
  });

  it('a refused request ends its SERVER span with its status; only a 5xx marks it ERROR', async () => {
    const response = await fetch(`${server.url}/v1/queues/bad%20name/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(response.status, 400);
    const [span] = await finished((s) => s.attributes['url.path'] === '/v1/queues/bad%20name/messages', 'the span');
    assert.equal(span!.attributes['http.response.status_code'], 400);
    assert.equal(span!.status.code, SpanStatusCode.UNSET);
  });

  it("an event stream's span ends when the client goes away", async () => {
    const abort = new AbortController();
    const response = await fetch(`${server.url}/v1/events`, { signal: abort.signal });
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    await reader.read();
    abort.abort();
    const [span] = await finished((s) => s.attributes['url.path'] === '/v1/events', 'the event stream span');
    assert.equal(span!.kind, SpanKind.SERVER);
  });

  it('inside a span an HTTP instrumentation made, the server adds no SERVER span and parents under it', async () => {
    const h = await harness();
    try {
      const q = qname();
      const outer = trace.getTracer('instrumentation').startSpan('POST (instrumentation)', { kind: SpanKind.SERVER });
      // What @opentelemetry/instrumentation-http does: the server's 'request' event runs in its span.
      const server = h.app.server;
      const emit = server.emit.bind(server) as (event: string, ...args: unknown[]) => boolean;
      server.emit = ((event: string, ...args: unknown[]) =>
        event === 'request'
          ? context.with(trace.setSpan(context.active(), outer), () => emit(event, ...args))
          : emit(event, ...args)) as typeof server.emit;
      const url = await h.app.listen({ port: 0, host: '127.0.0.1' });
      const response = await fetch(`${url}/v1/queues/${q}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` },
        body: JSON.stringify({ payload: 1 }),
      });
      assert.equal(response.status, 201);
      outer.end();
      const [producer] = await finished((s) => s.name === `send ${q}`, 'the PRODUCER span');
      assert.equal(producer!.parentSpanContext?.spanId, outer.spanContext().spanId);
      const ours = exporter.getFinishedSpans().filter((s) => s.attributes['url.path'] === `/v1/queues/${q}/messages`);
      assert.deepEqual(ours, []);
    } finally {
      await h.close();
    }
  });

  it('CORS lets a browser send traceparent and tracestate', async () => {
    const h = await harness({ cors: ['https://app.example.com'] });
    try {
      const response = await h.app.inject({
        method: 'OPTIONS',
        url: '/v1/queues/q/messages',
        headers: {
          origin: 'https://app.example.com',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'traceparent,tracestate,content-type',
        },
      });
      const allowed = String(response.headers['access-control-allow-headers']).split(/,\s*/);
      assert.ok(allowed.includes('traceparent') && allowed.includes('tracestate'), `allowed: ${allowed}`);
    } finally {
      await h.close();
    }
  });
});
