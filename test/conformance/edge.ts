/** Conformance: ugly interactions — racing consumers, aborts, keys against priority, odd handler outcomes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConflictError, LeaseLostError, MessageFailedError, UnrecoverableError } from '../../src/core/errors.ts';
import type { Delivery } from '../../src/core/types.ts';
import { type Ctx, expectError, mustGet, qname, receiveOne, sleep, waitFor, waitState } from './helpers.ts';

export function edgeTests(ctx: Ctx): void {
  describe('racing consumers', () => {
    it('concurrent long-polls each get a different message', async () => {
      const q = qname();
      const start = Date.now();
      const polls = Array.from({ length: 5 }, () => ctx.ferry.receive(q, { wait: '3s' }));
      await sleep(100);
      await ctx.ferry.sendBatch(
        q,
        Array.from({ length: 5 }, (_, i) => ({ payload: i })),
      );
      const got = await Promise.all(polls);
      assert.ok(Date.now() - start < 2500, 'every poll woke before its wait ran out');
      assert.deepEqual(
        got.map((d) => d.length),
        [1, 1, 1, 1, 1],
      );
      assert.equal(new Set(got.map((d) => d[0]?.id)).size, 5);
    });

    it('parallel receives never hand out a message twice', async () => {
      const q = qname();
      await ctx.ferry.sendBatch(
        q,
        Array.from({ length: 200 }, (_, i) => ({ payload: i })),
      );
      const seen: Delivery[] = [];
      for (let round = 0; round < 10 && seen.length < 200; round++) {
        const batches = await Promise.all(Array.from({ length: 20 }, () => ctx.ferry.receive(q, { max: 7 })));
        seen.push(...batches.flat());
      }
      assert.equal(seen.length, 200);
      assert.equal(new Set(seen.map((d) => d.id)).size, 200, 'no message handed out twice');
      assert.equal((await ctx.ferry.stats(q)).active, 200);
    });

    it('two workers on one queue handle each message exactly once', async () => {
      const q = qname();
      const counts = new Map<string, number>();
      const handler = (job: { id: string }) => {
        counts.set(job.id, (counts.get(job.id) ?? 0) + 1);
        return sleep(Math.floor(Math.random() * 3));
      };
      const w1 = ctx.ferry.work(q, handler, { concurrency: 5 });
      const w2 = ctx.ferry.work(q, handler, { concurrency: 5 });
      try {
        await ctx.ferry.sendBatch(
          q,
          Array.from({ length: 300 }, (_, i) => ({ payload: i })),
        );
        await waitFor(async () => (await ctx.ferry.stats(q)).completed === 300, '300 completed', 20_000, 50);
        assert.equal(counts.size, 300);
        assert.deepEqual(
          [...counts.values()].filter((n) => n !== 1),
          [],
        );
      } finally {
        await Promise.all([w1.close(), w2.close()]);
      }
    });

    it('a lease running out wakes a waiting receive', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      await receiveOne(ctx.ferry, q, 200, 0);
      const start = Date.now();
      const d = await receiveOne(ctx.ferry, q, '30s', 3000);
      const took = Date.now() - start;
      assert.equal(d.id, sent.id);
      assert.equal(d.attempt, 2);
      assert.ok(took >= 100 && took < 2000, `redelivered after ${took}ms`);
    });
  });

  describe('aborts', () => {
    it('an aborted long-poll claims nothing afterwards', async () => {
      const q = qname();
      const controller = new AbortController();
      const start = Date.now();
      const poll = ctx.ferry.receive(q, { wait: '5s', signal: controller.signal }).then(
        (d) => d,
        () => 'rejected' as const,
      );
      await sleep(100);
      controller.abort();
      const outcome = await poll;
      assert.ok(Date.now() - start < 1500, 'the poll settled soon after the abort');
      assert.ok(outcome === 'rejected' || outcome.length === 0, 'an aborted poll hands out nothing');
      const sent = await ctx.ferry.send(q, 'after the abort');
      await sleep(100);
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'waiting', 'nobody claimed it');
      assert.equal((await receiveOne(ctx.ferry, q, '30s', 0)).id, sent.id);
    });

    it('result() stops waiting when its signal aborts, and leaves the message alone', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      const controller = new AbortController();
      const start = Date.now();
      const pending = sent.result({ signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      await assert.rejects(pending);
      assert.ok(Date.now() - start < 1500);
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'waiting');
    });
  });

  describe('settling twice', () => {
    it('ack after nack is refused and the message stays as the nack left it', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      await ctx.ferry.nack(d, { delay: '1h', error: 'later' });
      await expectError(() => ctx.ferry.ack(d, 'too late'), LeaseLostError, 'ack after nack');
      await expectError(() => ctx.ferry.nack(d), LeaseLostError, 'nack after nack');
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'delayed');
      assert.equal(info.result, null);
      assert.equal(info.error?.message, 'later');
    });

    it('retry(id) of an active message never makes a second delivery', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      try {
        const { state } = await ctx.ferry.retry(sent.id);
        assert.equal(state, 'active');
      } catch (error) {
        assert.ok(error instanceof ConflictError, `expected ConflictError, got ${error}`);
      }
      assert.deepEqual(await ctx.ferry.receive(q), []);
      const info = await mustGet(ctx.ferry, sent.id);
      assert.deepEqual([info.state, info.attempts], ['active', 1]);
      await ctx.ferry.ack(d, 'still mine');
      assert.equal((await mustGet(ctx.ferry, sent.id)).result, 'still mine');
    });
  });

  describe('ordering keys against other rules', () => {
    it('send order within a key wins over priority', async () => {
      const q = qname();
      const m1 = await ctx.ferry.send(q, 'm1', { key: 'k' });
      const m2 = await ctx.ferry.send(q, 'm2', { key: 'k', priority: 10 });
      const n = await ctx.ferry.send(q, 'n', { priority: 5 });
      const got = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(
        got.map((d) => d.id),
        [n.id, m1.id],
      );
      await ctx.ferry.ack(got[1]!);
      assert.equal((await receiveOne(ctx.ferry, q, '30s', 0)).id, m2.id);
    });

    it('an expired lease redelivers the head of the key, not the next', async () => {
      const q = qname();
      const m1 = await ctx.ferry.send(q, 'm1', { key: 'k' });
      await ctx.ferry.send(q, 'm2', { key: 'k' });
      await receiveOne(ctx.ferry, q, 100, 0);
      await sleep(200);
      const got = await ctx.ferry.receive(q, { max: 10, wait: 1000 });
      assert.deepEqual(
        got.map((d) => [d.id, d.attempt]),
        [[m1.id, 2]],
      );
    });

    it('a head whose cancel is requested keeps blocking its key until its attempt ends', async () => {
      const q = qname();
      const m1 = await ctx.ferry.send(q, 'm1', { key: 'k' });
      const m2 = await ctx.ferry.send(q, 'm2', { key: 'k' });
      const d1 = await receiveOne(ctx.ferry, q, '30s', 0);
      await ctx.ferry.cancel(m1.id);
      assert.deepEqual(await ctx.ferry.receive(q), [], 'm1 is still active');
      await ctx.ferry.nack(d1);
      assert.equal((await mustGet(ctx.ferry, m1.id)).state, 'cancelled');
      assert.equal((await receiveOne(ctx.ferry, q, '30s', 1000)).id, m2.id);
    });
  });

  describe('odd values', () => {
    it('orders extreme priorities and a runAt at the epoch', async () => {
      const q = qname();
      const top = 2 ** 31 - 1;
      await ctx.ferry.send(q, 'plain');
      await ctx.ferry.send(q, 'min', { priority: -top });
      await ctx.ferry.send(q, 'epoch', { runAt: 0 });
      await ctx.ferry.send(q, 'max', { priority: top });
      const order = (await ctx.ferry.receive(q, { max: 1000 })).map((d) => d.payload);
      assert.deepEqual(order, ['max', 'epoch', 'plain', 'min']);
    });

    it('a handler returning undefined stores null; a thrown string becomes the error message', async () => {
      const q = qname();
      const worker = ctx.ferry.work(q, (job) => {
        if (job.payload === 'throw') throw 'plain string failure';
        return undefined;
      });
      try {
        const ok = await ctx.ferry.send(q, 'ok');
        assert.equal(await ok.result({ timeout: '5s' }), null);
        const bad = await ctx.ferry.send(q, 'throw', { maxAttempts: 1 });
        const info = await waitState(ctx.ferry, bad.id, 'dead', 3000);
        assert.equal(info.error?.message, 'plain string failure');
      } finally {
        await worker.close();
      }
    });

    it('call() rejects with MessageFailedError when the handler throws UnrecoverableError', async () => {
      const q = qname();
      const worker = ctx.ferry.work(q, () => {
        throw new UnrecoverableError('no such user');
      });
      try {
        const e = await expectError(() => ctx.ferry.call(q, 'x', { timeout: '5s' }), MessageFailedError, 'call');
        assert.equal(e.info.state, 'dead');
        assert.equal(e.info.error?.message, 'no such user');
        assert.equal(e.info.attempts, 1);
      } finally {
        await worker.close();
      }
    });
  });
}
