/** Conformance: ordering keys and deduplication. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Ctx, mustGet, qname, receiveOne, sleep, waitFor } from './helpers.ts';

const FIXED = (delay: number) => ({ type: 'fixed' as const, delay });

export function orderingTests(ctx: Ctx): void {
  describe('ordering keys', () => {
    it('delivers one message per key at a time, in send order; other keys and no key in parallel', async () => {
      const q = qname();
      const a1 = await ctx.ferry.send(q, 'a1', { key: 'a' });
      await ctx.ferry.send(q, 'a2', { key: 'a' });
      await ctx.ferry.send(q, 'a3', { key: 'a' });
      const b1 = await ctx.ferry.send(q, 'b1', { key: 'b' });
      await ctx.ferry.send(q, 'b2', { key: 'b' });
      const n1 = await ctx.ferry.send(q, 'n1');
      const n2 = await ctx.ferry.send(q, 'n2');
      const first = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(first.map((d) => d.payload).sort(), ['a1', 'b1', 'n1', 'n2']);
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), [], 'the next of each key waits');
      const byPayload = new Map(first.map((d) => [d.payload, d]));
      await ctx.ferry.ack(byPayload.get('a1')!);
      let next = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(
        next.map((d) => d.payload),
        ['a2'],
      );
      await ctx.ferry.ack(next[0]!);
      await ctx.ferry.ack(byPayload.get('b1')!);
      next = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(next.map((d) => d.payload).sort(), ['a3', 'b2']);
      assert.equal((await mustGet(ctx.ferry, a1.id)).state, 'completed');
      assert.equal((await mustGet(ctx.ferry, b1.id)).state, 'completed');
      for (const s of [n1, n2]) assert.equal((await mustGet(ctx.ferry, s.id)).state, 'active');
    });

    it('a failing head blocks the next of its key through its retries until it is dead', async () => {
      const q = qname();
      const m1 = await ctx.ferry.send(q, 'm1', { key: 'k', maxAttempts: 2, backoff: FIXED(150) });
      const m2 = await ctx.ferry.send(q, 'm2', { key: 'k' });
      const d1 = await receiveOne(ctx.ferry, q, '30s', 0);
      assert.equal(d1.id, m1.id);
      assert.equal((await ctx.ferry.nack(d1, { error: 'first' })).state, 'delayed');
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), [], 'm2 waits while m1 backs off');
      const d2 = await receiveOne(ctx.ferry, q, '30s', 2000);
      assert.equal(d2.id, m1.id, 'the retry of m1 comes before m2');
      assert.equal(d2.attempt, 2);
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), []);
      assert.equal((await ctx.ferry.nack(d2, { error: 'second' })).state, 'dead');
      const d3 = await receiveOne(ctx.ferry, q, '30s', 1000);
      assert.equal(d3.id, m2.id, 'm2 once m1 is dead');
      await ctx.ferry.ack(d3);
    });

    it('a delayed head holds back the later messages of its key', async () => {
      const q = qname();
      const m1 = await ctx.ferry.send(q, 'm1', { key: 'k', delay: 300 });
      const m2 = await ctx.ferry.send(q, 'm2', { key: 'k' });
      const free = await ctx.ferry.send(q, 'free', { key: 'other' });
      const got = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(
        got.map((d) => d.id),
        [free.id],
      );
      const d1 = await receiveOne(ctx.ferry, q, '30s', 2000);
      assert.equal(d1.id, m1.id);
      await ctx.ferry.ack(d1);
      assert.equal((await receiveOne(ctx.ferry, q, '30s', 1000)).id, m2.id);
    });

    it('a cancelled head unblocks the next of its key', async () => {
      const q = qname();
      const m1 = await ctx.ferry.send(q, 'm1', { key: 'k', delay: '1h' });
      const m2 = await ctx.ferry.send(q, 'm2', { key: 'k' });
      assert.deepEqual(await ctx.ferry.receive(q), []);
      await ctx.ferry.cancel(m1.id);
      assert.equal((await receiveOne(ctx.ferry, q, '30s', 1000)).id, m2.id);
    });

    it('holds under work() concurrency 50: 20 keys × 25 messages, in order, never overlapping', async () => {
      const q = qname();
      const KEYS = 20;
      const PER_KEY = 25;
      const starts = new Map<number, number[]>();
      const active = new Set<number>();
      const overlaps: string[] = [];
      let most = 0;
      const worker = ctx.ferry.work<{ k: number; i: number }>(
        q,
        async (job) => {
          const { k, i } = job.payload;
          if (active.has(k)) overlaps.push(`key ${k} at ${i}`);
          active.add(k);
          most = Math.max(most, active.size);
          starts.set(k, [...(starts.get(k) ?? []), i]);
          await sleep(Math.floor(Math.random() * 4));
          active.delete(k);
          return i;
        },
        { concurrency: 50 },
      );
      try {
        const batch = [];
        for (let i = 0; i < PER_KEY; i++) {
          for (let k = 0; k < KEYS; k++) batch.push({ payload: { k, i }, key: `key-${k}` });
        }
        await ctx.ferry.sendBatch(q, batch);
        await waitFor(async () => (await ctx.ferry.stats(q)).completed === KEYS * PER_KEY, 'all completed', 30_000, 50);
        assert.deepEqual(overlaps, [], 'no two messages of one key ran at once');
        for (let k = 0; k < KEYS; k++) {
          assert.deepEqual(
            starts.get(k),
            Array.from({ length: PER_KEY }, (_, i) => i),
            `key ${k} handled in send order, once each`,
          );
        }
        assert.ok(most > 1, 'different keys ran in parallel');
      } finally {
        await worker.close();
      }
    });
  });

  describe('deduplication', () => {
    it('a second send with the same dedupeId creates nothing and answers the first id', async () => {
      const q = qname();
      const first = await ctx.ferry.send(q, 'first', { dedupeId: 'welcome-42' });
      const again = await ctx.ferry.send(q, 'second', { dedupeId: 'welcome-42', priority: 9 });
      assert.equal(first.deduplicated, false);
      assert.equal(again.deduplicated, true);
      assert.equal(again.id, first.id);
      const info = await mustGet(ctx.ferry, first.id);
      assert.equal(info.payload, 'first');
      assert.equal(info.priority, 0);
      assert.equal((await ctx.ferry.stats(q)).waiting, 1);
      const other = await ctx.ferry.send(qname(), 'other queue', { dedupeId: 'welcome-42' });
      assert.equal(other.deduplicated, false);
      assert.notEqual(other.id, first.id);
      const distinct = await ctx.ferry.send(q, 'third', { dedupeId: 'welcome-43' });
      assert.equal(distinct.deduplicated, false);
      assert.equal((await ctx.ferry.stats(q)).waiting, 2);
    });

    it('dedupes against messages in every state, completed, dead and cancelled included', async () => {
      const q = qname();
      const done = await ctx.ferry.send(q, 'done', { dedupeId: 'd-completed' });
      await ctx.ferry.ack(await receiveOne(ctx.ferry, q, '30s', 0), 'r');
      const dead = await ctx.ferry.send(q, 'dead', { dedupeId: 'd-dead' });
      await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0), { retry: false });
      const cancelled = await ctx.ferry.send(q, 'cancelled', { dedupeId: 'd-cancelled' });
      await ctx.ferry.cancel(cancelled.id);
      const active = await ctx.ferry.send(q, 'active', { dedupeId: 'd-active' });
      await receiveOne(ctx.ferry, q, '30s', 0);
      for (const [dedupeId, sent] of [
        ['d-completed', done],
        ['d-dead', dead],
        ['d-cancelled', cancelled],
        ['d-active', active],
      ] as const) {
        const again = await ctx.ferry.send(q, 'again', { dedupeId });
        assert.deepEqual([again.id, again.deduplicated], [sent.id, true], dedupeId);
      }
      assert.equal(await (await ctx.ferry.send(q, 'x', { dedupeId: 'd-completed' })).result(), 'r');
      const stats = await ctx.ferry.stats(q);
      assert.equal(stats.waiting + stats.delayed, 0, 'nothing new was created');
    });

    it('50 concurrent sends with one dedupeId create exactly one message', async () => {
      const q = qname();
      const sents = await Promise.all(Array.from({ length: 50 }, (_, i) => ctx.ferry.send(q, i, { dedupeId: 'race' })));
      assert.equal(new Set(sents.map((s) => s.id)).size, 1, 'one id for all');
      assert.equal(sents.filter((s) => !s.deduplicated).length, 1, 'exactly one created');
      assert.equal((await ctx.ferry.stats(q)).waiting, 1);
    });

    it('sendBatch dedupes against existing messages and within the batch', async () => {
      const q = qname();
      const existing = await ctx.ferry.send(q, 'existing', { dedupeId: 'e' });
      const sents = await ctx.ferry.sendBatch(q, [
        { payload: 'new', dedupeId: 'n' },
        { payload: 'dup of existing', dedupeId: 'e' },
        { payload: 'dup of new', dedupeId: 'n' },
        { payload: 'plain' },
      ]);
      assert.deepEqual(
        sents.map((s) => s.deduplicated),
        [false, true, true, false],
      );
      assert.equal(sents[1]?.id, existing.id);
      assert.equal(sents[2]?.id, sents[0]?.id);
      assert.equal((await ctx.ferry.stats(q)).waiting, 3);
      assert.equal((await mustGet(ctx.ferry, sents[0]!.id)).payload, 'new');
    });
  });
}
