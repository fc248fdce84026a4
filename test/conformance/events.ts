/** Conformance: events() — types, queue and type filters, resuming with `after`, closing. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FerryEvent } from '../../src/core/types.ts';
import { type Ctx, describeEvents, EventReader, isoMs, prime, qname, receiveOne } from './helpers.ts';

export function eventTests(ctx: Ctx): void {
  describe('events()', () => {
    it('since() tells where a stream starts; a stream resumed from there misses nothing', async () => {
      const { ferry } = ctx;
      const q = qname();
      await ferry.send(q, 'before the stream');
      const stream = ferry.events({ queue: q, types: ['sent'] });
      const iterator = stream[Symbol.asyncIterator]();
      const first = iterator.next(); // starts reading: over HTTP, the request goes out now
      const since = await stream.since();
      assert.ok(Number.isInteger(since) && since > 0, `since is a seq: ${since}`);
      const sent = await ferry.send(q, 'after it opened');
      const got = await first;
      assert.equal(got.value?.id, sent.id, 'the first event is the send after since(), not the one before');
      assert.ok((got.value?.seq ?? 0) > since);
      stream.close();
      const again = ferry.events({ queue: q, types: ['sent'], after: since });
      assert.equal(await again.since(), since);
      const replayed = await again[Symbol.asyncIterator]().next();
      assert.equal(replayed.value?.id, sent.id, 'resuming from since() replays exactly what followed');
      again.close();
    });

    // The timeout only guards against a hang: before the fix, since() over HTTP never resolved here.
    it('since() resolves before the stream is iterated, and the iteration starts from there', {
      timeout: 30_000,
    }, async () => {
      const { ferry } = ctx;
      const q = qname();
      await ferry.send(q, 'before the stream');
      const stream = ferry.events({ queue: q, types: ['sent'] });
      try {
        const since = await stream.since();
        assert.ok(Number.isInteger(since) && since > 0, `since is a seq: ${since}`);
        const sent = await ferry.send(q, 'after since()');
        const got = await stream[Symbol.asyncIterator]().next();
        assert.equal(got.value?.id, sent.id, 'the first event is the send after since(), not the one before');
        assert.ok((got.value?.seq ?? 0) > since);
      } finally {
        stream.close();
      }
    });

    it('emits sent, active, completed, retrying, dead and cancelled, in order, for one queue only', async () => {
      const q = qname();
      const other = qname();
      const a = new EventReader(ctx.ferry.events({ queue: q }));
      let b: EventReader | undefined;
      let c: EventReader | undefined;
      try {
        const probeSeq = await prime(ctx.ferry, q, a);
        const start = a.seen.length;

        const m1 = await ctx.ferry.send(q, 'm1');
        await ctx.ferry.ack(await receiveOne(ctx.ferry, q, '30s', 0), { r: 1 });
        await ctx.ferry.send(other, 'elsewhere');
        const m2 = await ctx.ferry.send(q, 'm2', { maxAttempts: 2, backoff: { type: 'fixed', delay: 20 } });
        await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0), { error: { message: 'e1' } });
        await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 2000), { error: { message: 'e2' } });
        const m3 = await ctx.ferry.send(q, 'm3');
        await ctx.ferry.cancel(m3.id);

        await a.until((e) => e.id === m3.id && e.type === 'cancelled');
        const got = a.seen.slice(start);
        const names: Record<string, string> = { [m1.id]: 'm1', [m2.id]: 'm2', [m3.id]: 'm3' };
        assert.deepEqual(
          got.map((e) => `${names[e.id] ?? e.id}:${e.type}`),
          [
            'm1:sent',
            'm1:active',
            'm1:completed',
            'm2:sent',
            'm2:active',
            'm2:retrying',
            'm2:active',
            'm2:dead',
            'm3:sent',
            'm3:cancelled',
          ],
          describeEvents(got),
        );
        for (const e of a.seen) {
          assert.equal(e.queue, q, 'only the filtered queue');
          isoMs(e.at, 'event at');
        }
        for (let i = 1; i < a.seen.length; i++) {
          assert.ok((a.seen[i] as FerryEvent).seq > (a.seen[i - 1] as FerryEvent).seq, 'seq increases');
        }
        const ev = (i: number) => got[i] as FerryEvent;
        assert.equal(ev(1).attempt, 1);
        assert.deepEqual(ev(2).result, { r: 1 });
        assert.equal(ev(5).error?.message, 'e1');
        assert.equal(ev(6).attempt, 2);
        assert.equal(ev(7).error?.message, 'e2');

        // Resume after the fifth event: exactly the ones after it, no gap, no duplicate, then live ones.
        b = new EventReader(ctx.ferry.events({ queue: q, after: ev(4).seq }));
        for (let i = 5; i < got.length; i++) {
          const e = await b.next();
          assert.deepEqual([e?.seq, e?.type, e?.id], [ev(i).seq, ev(i).type, ev(i).id], `replayed event ${i}`);
        }
        // A types filter, replayed from the probe on.
        c = new EventReader(ctx.ferry.events({ queue: q, types: ['completed', 'dead'], after: probeSeq }));
        const c1 = await c.next();
        const c2 = await c.next();
        assert.deepEqual([c1?.type, c1?.id, c2?.type, c2?.id], ['completed', m1.id, 'dead', m2.id]);

        // Live: all three streams follow on.
        const m4 = await ctx.ferry.send(q, 'm4');
        await ctx.ferry.ack(await receiveOne(ctx.ferry, q, '30s', 0), 'r4');
        const liveA = await a.next();
        const liveB = await b.next();
        assert.deepEqual([liveA?.type, liveA?.id], ['sent', m4.id]);
        assert.deepEqual([liveB?.seq, liveB?.type, liveB?.id], [liveA?.seq, 'sent', m4.id]);
        const liveC = await c.next();
        assert.deepEqual([liveC?.type, liveC?.id, liveC?.result], ['completed', m4.id, 'r4'], 'types filter live');
      } finally {
        a.close();
        b?.close();
        c?.close();
      }
    });

    it('events without a queue filter see every queue; close() ends the iteration', async () => {
      const q1 = qname();
      const q2 = qname();
      const reader = new EventReader(ctx.ferry.events({ types: ['sent'] }));
      try {
        await prime(ctx.ferry, q1, reader);
        const s1 = await ctx.ferry.send(q1, 1);
        const s2 = await ctx.ferry.send(q2, 2);
        await reader.until((e) => e.id === s2.id);
        const ids = reader.seen.map((e) => e.id);
        assert.ok(ids.includes(s1.id) && ids.indexOf(s1.id) < ids.indexOf(s2.id));
        assert.ok(reader.seen.every((e) => e.type === 'sent'));
      } finally {
        reader.close();
      }
      assert.equal(await reader.next(1000), null, 'the stream ended after close()');
    });

    it('close() ends a for await loop that is waiting for events', async () => {
      const stream = ctx.ferry.events({ queue: qname() });
      const seen: FerryEvent[] = [];
      const loop = (async () => {
        for await (const e of stream) seen.push(e);
        return 'ended';
      })();
      await new Promise((resolve) => setTimeout(resolve, 150));
      stream.close();
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        loop,
        new Promise((resolve) => {
          timer = setTimeout(() => resolve('still running'), 2000);
        }),
      ]);
      clearTimeout(timer);
      assert.equal(outcome, 'ended');
      assert.deepEqual(seen, []);
    });
  });
}
