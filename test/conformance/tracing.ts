/**
 * Tracing (SPEC §8), on every home: PRODUCER spans for send, sendBatch and publish with the W3C trace
 * context in the message's headers; a CONSUMER span per attempt in work(), child of (and linked to) that
 * context; a receive span linked to what it got; errors recorded. An OpenTelemetry SDK with an in-memory
 * exporter is registered for these tests only, and removed after them.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { context, propagation, type SpanContext, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { UnrecoverableError } from '../../src/core/errors.ts';
import { type Ctx, mustGet, qname, waitFor, waitState } from './helpers.ts';

/** `00-<trace id>-<span id>-<flags>` of a span context, as the W3C propagator writes it. */
function traceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags.toString(16)}`;
}

const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;

export function tracingTests(ctx: Ctx): void {
  describe('tracing (SPEC §8)', () => {
    const exporter = new InMemorySpanExporter();
    let provider: BasicTracerProvider | undefined;
    const contextManager = new AsyncLocalStorageContextManager();

    before(() => {
      provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
      assert.ok(trace.setGlobalTracerProvider(provider), 'no other tracer provider is registered');
      assert.ok(context.setGlobalContextManager(contextManager.enable()));
      assert.ok(propagation.setGlobalPropagator(new W3CTraceContextPropagator()));
    });
    after(async () => {
      trace.disable();
      propagation.disable();
      context.disable();
      await provider?.shutdown();
    });
    beforeEach(() => exporter.reset());

    const spans = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name);
    /** Waits for exactly `count` finished spans named `name` (a consumer span ends after its ack). */
    const waitSpans = (name: string, count: number): Promise<ReadableSpan[]> =>
      waitFor(async () => {
        const found = spans(name);
        return found.length >= count ? found : undefined;
      }, `${count} span(s) named ${name}`);
    const tracer = () => trace.getTracer('conformance');

    it('send makes one PRODUCER span, child of the active span; its traceparent is in get(id).headers', async () => {
      const { ferry } = ctx;
      const q = qname();
      const sent = await tracer().startActiveSpan('caller', async (caller) => {
        try {
          return await ferry.send(q, { n: 1 }, { headers: { mine: 'kept' } });
        } finally {
          caller.end();
        }
      });
      const [caller] = spans('caller');
      const producers = spans(`send ${q}`);
      assert.equal(producers.length, 1, 'one PRODUCER span per send, on every home');
      const producer = producers[0]!;
      assert.equal(producer.kind, SpanKind.PRODUCER);
      assert.equal(producer.spanContext().traceId, caller!.spanContext().traceId);
      assert.equal(parentOf(producer), caller!.spanContext().spanId);
      assert.deepEqual(
        {
          system: producer.attributes['messaging.system'],
          destination: producer.attributes['messaging.destination.name'],
          type: producer.attributes['messaging.operation.type'],
          id: producer.attributes['messaging.message.id'],
        },
        { system: 'ferry', destination: q, type: 'send', id: sent.id },
      );
      const info = await mustGet(ferry, sent.id);
      assert.equal(info.headers.traceparent, traceparent(producer.spanContext()));
      assert.equal(info.headers.mine, 'kept', "the user's own headers stay");
    });

    it('work() runs each attempt in a CONSUMER span, child of and linked to the producer span', async () => {
      const { ferry } = ctx;
      const q = qname();
      const sent = await ferry.send(q, 'traced');
      const [producer] = await waitSpans(`send ${q}`, 1);
      let active: SpanContext | undefined;
      const worker = ferry.work(q, async () => {
        active = trace.getActiveSpan()?.spanContext();
        return 'ok';
      });
      try {
        const [consumer] = await waitSpans(`process ${q}`, 1);
        await waitState(ferry, sent.id, 'completed');
        assert.equal(consumer!.kind, SpanKind.CONSUMER);
        assert.equal(consumer!.spanContext().traceId, producer!.spanContext().traceId, 'same trace');
        assert.equal(parentOf(consumer!), producer!.spanContext().spanId, 'parent: the producer span');
        assert.deepEqual(
          consumer!.links.map((l) => l.context.spanId),
          [producer!.spanContext().spanId],
          'linked to the creation context, as the messaging conventions recommend',
        );
        assert.equal(active?.spanId, consumer!.spanContext().spanId, 'the handler runs in the CONSUMER span');
        assert.deepEqual(
          {
            system: consumer!.attributes['messaging.system'],
            destination: consumer!.attributes['messaging.destination.name'],
            type: consumer!.attributes['messaging.operation.type'],
            id: consumer!.attributes['messaging.message.id'],
            attempt: consumer!.attributes['ferry.attempt'],
            status: consumer!.status.code,
          },
          { system: 'ferry', destination: q, type: 'process', id: sent.id, attempt: 1, status: SpanStatusCode.UNSET },
        );
      } finally {
        await worker.close();
      }
    });

    it('a failed attempt records its error and sets ERROR; each attempt has its own span', async () => {
      const { ferry } = ctx;
      const q = qname();
      await ferry.configure(q, { maxAttempts: 2, backoff: { type: 'fixed', delay: 0 } });
      const sent = await ferry.send(q, 'fails twice');
      const worker = ferry.work(q, async (job) => {
        if (job.attempt === 1) throw new Error('smtp down');
        throw new UnrecoverableError('bad address');
      });
      try {
        await waitState(ferry, sent.id, 'dead');
        const attempts = (await waitSpans(`process ${q}`, 2)).sort(
          (a, b) => Number(a.attributes['ferry.attempt']) - Number(b.attributes['ferry.attempt']),
        );
        const [producer] = spans(`send ${q}`);
        assert.deepEqual(
          attempts.map((s) => ({
            attempt: s.attributes['ferry.attempt'],
            parent: parentOf(s),
            status: s.status,
            errorType: s.attributes['error.type'],
            exception: s.events.filter((e) => e.name === 'exception').map((e) => e.attributes?.['exception.message']),
          })),
          [
            {
              attempt: 1,
              parent: producer!.spanContext().spanId,
              status: { code: SpanStatusCode.ERROR, message: 'smtp down' },
              errorType: 'Error',
              exception: ['smtp down'],
            },
            {
              attempt: 2,
              parent: producer!.spanContext().spanId,
              status: { code: SpanStatusCode.ERROR, message: 'bad address' },
              errorType: 'UnrecoverableError',
              exception: ['bad address'],
            },
          ],
        );
      } finally {
        await worker.close();
      }
    });

    it('sendBatch makes one PRODUCER span with messaging.batch.message_count; every message carries it', async () => {
      const { ferry } = ctx;
      const q = qname();
      const sents = await ferry.sendBatch(q, [{ payload: 1 }, { payload: 2, headers: { a: 'b' } }, { payload: 3 }]);
      const producers = spans(`send ${q}`);
      assert.equal(producers.length, 1);
      const producer = producers[0]!;
      assert.equal(producer.kind, SpanKind.PRODUCER);
      assert.equal(producer.attributes['messaging.batch.message_count'], 3);
      assert.equal(producer.attributes['messaging.message.id'], undefined, 'a batch names no single message');
      for (const sent of sents) {
        const info = await mustGet(ferry, sent.id);
        assert.equal(info.headers.traceparent, traceparent(producer.spanContext()));
      }
      assert.equal((await mustGet(ferry, sents[1]!.id)).headers.a, 'b');
    });

    it('publish makes a PRODUCER span named for the topic; every copy carries its context', async () => {
      const { ferry } = ctx;
      const topic = qname('t');
      const [a, b] = [qname(), qname()];
      await ferry.subscribe(topic, a);
      await ferry.subscribe(topic, b);
      const { messages } = await ferry.publish(topic, { order: 7 });
      const producers = spans(`publish ${topic}`);
      assert.equal(producers.length, 1);
      assert.equal(producers[0]!.kind, SpanKind.PRODUCER);
      assert.equal(producers[0]!.attributes['messaging.destination.name'], topic);
      assert.equal(producers[0]!.attributes['messaging.operation.type'], 'send');
      assert.equal(messages.length, 2);
      for (const m of messages) {
        assert.equal((await mustGet(ferry, m.id)).headers.traceparent, traceparent(producers[0]!.spanContext()));
      }
    });

    it('a traceparent the caller set is kept, no second PRODUCER span is made, and it parents the attempt', async () => {
      const { ferry } = ctx;
      const q = qname();
      const given = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const sent = await ferry.send(q, 'x', { headers: { traceparent: given, tracestate: 'vendor=1' } });
      assert.equal(spans(`send ${q}`).length, 0);
      const info = await mustGet(ferry, sent.id);
      assert.deepEqual(info.headers, { traceparent: given, tracestate: 'vendor=1' });
      const worker = ferry.work(q, async () => 'ok');
      try {
        const [consumer] = await waitSpans(`process ${q}`, 1);
        assert.equal(consumer!.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
        assert.equal(parentOf(consumer!), 'b7ad6b7169203331');
        assert.equal(consumer!.spanContext().traceState?.get('vendor'), '1', 'tracestate travels too');
      } finally {
        await worker.close();
      }
    });

    it('receive() makes one receive span, linked to the creation context of each message it got', async () => {
      const { ferry } = ctx;
      const q = qname();
      await ferry.send(q, 1);
      await ferry.send(q, 2);
      const producers = spans(`send ${q}`).map((s) => s.spanContext().spanId);
      assert.equal(producers.length, 2);
      const got = await ferry.receive(q, { max: 2, wait: 2000 });
      assert.equal(got.length, 2);
      const receives = spans(`receive ${q}`);
      assert.equal(receives.length, 1, 'one receive span, on every home');
      const receive = receives[0]!;
      assert.equal(receive.kind, SpanKind.CLIENT, 'the conventions make pull-based receive a CLIENT span');
      assert.equal(receive.attributes['messaging.operation.type'], 'receive');
      assert.equal(receive.attributes['messaging.batch.message_count'], 2);
      assert.deepEqual(receive.links.map((l) => l.context.spanId).sort(), [...producers].sort());
      for (const d of got) await ferry.ack(d);
    });

    it('a send refused by validation ends its span with the error', async () => {
      const { ferry } = ctx;
      const q = qname();
      await assert.rejects(ferry.send(q, 1, { priority: 'high' as unknown as number }));
      const [producer] = spans(`send ${q}`);
      assert.equal(producer?.status.code, SpanStatusCode.ERROR);
      assert.equal(producer?.attributes['error.type'], 'InvalidRequestError');
    });

    it('without a registered SDK no header is added and no span is made', async () => {
      const { ferry } = ctx;
      const q = qname();
      trace.disable();
      try {
        const sent = await ferry.send(q, 'plain');
        assert.deepEqual((await mustGet(ferry, sent.id)).headers, {});
        assert.equal(exporter.getFinishedSpans().length, 0);
      } finally {
        assert.ok(trace.setGlobalTracerProvider(provider!));
      }
    });
  });
}
