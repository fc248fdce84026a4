/** Conformance: receive (max, wait, lease), delivery order, delays, ack and results, receipts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeaseLostError, MessageFailedError, NotFoundError, TimeoutError } from '../../src/core/errors.ts';
import { type Ctx, expectError, isoMs, mustGet, qname, receiveOne, sleep, waitState } from './helpers.ts';

export function receiveTests(ctx: Ctx): void {
  describe('receive', () => {
    it('hands out a delivery with its receipt and marks the message active', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, { n: 1 }, { priority: 2, key: 'k1', headers: { h: 'v' } });
      const before = Date.now();
      const d = await receiveOne(ctx.ferry, q, 5000, 0);
      assert.equal(d.id, sent.id);
      assert.equal(d.queue, q);
      assert.deepEqual(d.payload, { n: 1 });
      assert.equal(d.attempt, 1);
      assert.equal(typeof d.receipt, 'string');
      assert.ok(d.receipt.length > 0);
      assert.equal(d.priority, 2);
      assert.equal(d.key, 'k1');
      assert.deepEqual(d.headers, { h: 'v' });
      isoMs(d.sentAt, 'sentAt');
      const leaseUntil = isoMs(d.leaseUntil, 'leaseUntil');
      assert.ok(
        leaseUntil >= before + 4500 && leaseUntil <= Date.now() + 5500,
        `leaseUntil ${d.leaseUntil} ≈ now + 5s`,
      );
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'active');
      assert.equal(info.attempts, 1);
      isoMs(info.startedAt, 'startedAt');
      assert.equal(info.finishedAt, null);
    });

    it('respects max and never hands a message out twice', async () => {
      const q = qname();
      await ctx.ferry.sendBatch(
        q,
        Array.from({ length: 5 }, (_, i) => ({ payload: i })),
      );
      const first = await ctx.ferry.receive(q, { max: 3 });
      assert.equal(first.length, 3);
      const second = await ctx.ferry.receive(q, { max: 10 });
      assert.equal(second.length, 2);
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), []);
      const ids = [...first, ...second].map((d) => d.id);
      assert.equal(new Set(ids).size, 5);
      assert.equal(new Set([...first, ...second].map((d) => d.receipt)).size, 5, 'receipts are unique');
      assert.equal((await ctx.ferry.stats(q)).active, 5);
    });

    it('answers [] at once on an empty queue without wait', async () => {
      const start = Date.now();
      assert.deepEqual(await ctx.ferry.receive(qname()), []);
      assert.ok(Date.now() - start < 500, 'no wait by default');
    });

    it('long-polls: wakes as soon as a message is sent', async () => {
      const q = qname();
      const start = Date.now();
      const pending = ctx.ferry.receive(q, { wait: '5s' });
      await sleep(150);
      const sent = await ctx.ferry.send(q, 'late');
      const got = await pending;
      const elapsed = Date.now() - start;
      assert.equal(got.length, 1);
      assert.equal(got[0]?.id, sent.id);
      assert.ok(elapsed >= 140 && elapsed < 2000, `woke after ${elapsed}ms`);
    });

    it('long-polls: answers [] once the wait is over', async () => {
      const start = Date.now();
      const got = await ctx.ferry.receive(qname(), { wait: 300 });
      const elapsed = Date.now() - start;
      assert.deepEqual(got, []);
      assert.ok(elapsed >= 280 && elapsed < 2000, `waited ${elapsed}ms`);
    });

    it('long-polls: wakes when a delayed message becomes due', async () => {
      const q = qname();
      await ctx.ferry.send(q, 'soon', { delay: 300 });
      const start = Date.now();
      const got = await ctx.ferry.receive(q, { wait: '5s' });
      const elapsed = Date.now() - start;
      assert.equal(got.length, 1);
      assert.ok(elapsed >= 250 && elapsed < 2500, `delivered after ${elapsed}ms`);
    });

    it('a lease that runs out makes the message deliverable again with attempt + 1 and a new receipt', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      const d1 = await receiveOne(ctx.ferry, q, 200, 0);
      const until = isoMs(d1.leaseUntil);
      assert.ok(until - Date.now() <= 250, 'lease of 200ms');
      assert.deepEqual(await ctx.ferry.receive(q), [], 'leased: not delivered again');
      await sleep(350);
      const d2 = await receiveOne(ctx.ferry, q, 5000, 1000);
      assert.equal(d2.id, sent.id);
      assert.equal(d2.attempt, 2);
      assert.notEqual(d2.receipt, d1.receipt);
      assert.equal((await mustGet(ctx.ferry, sent.id)).attempts, 2);
    });
  });

  describe('delivery order', () => {
    it('delivers higher priority first, then older runAt, then send order', async () => {
      const q = qname();
      const now = Date.now();
      const ids: Record<string, string> = {};
      const plan: [string, { priority?: number; runAt?: number }][] = [
        ['a', {}],
        ['b', { priority: 5 }],
        ['c', { priority: -1 }],
        ['d', { priority: 5 }],
        ['e', {}],
        ['f', { runAt: now - 20_000 }],
        ['g', { runAt: now - 40_000 }],
        ['h', { priority: 5, runAt: now - 10_000 }],
      ];
      for (const [name, options] of plan) ids[name] = (await ctx.ferry.send(q, name, options)).id;
      const order: unknown[] = [];
      for (let i = 0; i < plan.length; i++) order.push((await receiveOne(ctx.ferry, q, '30s', 0)).payload);
      assert.deepEqual(order, ['h', 'b', 'd', 'g', 'f', 'a', 'e', 'c']);
    });

    it('delivers equal messages in send order, also within one receive', async () => {
      const q = qname();
      for (let i = 0; i < 30; i++) await ctx.ferry.send(q, i);
      const one = [];
      for (let i = 0; i < 10; i++) one.push((await receiveOne(ctx.ferry, q, '30s', 0)).payload);
      assert.deepEqual(
        one,
        Array.from({ length: 10 }, (_, i) => i),
      );
      const many = (await ctx.ferry.receive(q, { max: 20 })).map((d) => d.payload);
      assert.deepEqual(
        many,
        Array.from({ length: 20 }, (_, i) => i + 10),
      );
    });

    it('does not deliver a delayed message before its runAt, and shows it delayed until then', async () => {
      const q = qname();
      const DELAY = 1000;
      // runAt is on the store's clock (PostgreSQL's, corrected by a measured offset), which may run some
      // milliseconds ahead of this process's: compare time elapsed on one clock, not times from two.
      const before = performance.now();
      /**
       * Asserts what `read` found, if it answered before runAt: the store stamped the send after `before`, so
       * an answer received less than DELAY after `before` was read before runAt. A stalled machine (a first
       * PostgreSQL query can take longer than the delay) skips the check rather than fail on time alone.
       */
      const beforeRunAt = async <T>(read: () => Promise<T>, expected: T, what: string): Promise<void> => {
        const found = await read();
        if (performance.now() - before < DELAY) assert.deepEqual(found, expected, what);
      };
      const sent = await ctx.ferry.send(q, 'later', { delay: DELAY });
      await beforeRunAt(async () => (await mustGet(ctx.ferry, sent.id)).state, 'delayed', 'state');
      const info = await mustGet(ctx.ferry, sent.id);
      const runAt = isoMs(info.runAt, 'runAt');
      assert.ok(Math.abs(runAt - isoMs(info.sentAt) - DELAY) < 50, 'runAt = sentAt + delay');
      await beforeRunAt(async () => (await ctx.ferry.stats(q)).delayed, 1, 'stats.delayed');
      await beforeRunAt(() => ctx.ferry.receive(q), [], 'receive');
      await sleep(150);
      await beforeRunAt(() => ctx.ferry.receive(q, { wait: 50 }), [], 'receive with a wait');
      await waitState(ctx.ferry, sent.id, 'waiting', DELAY + 2000);
      // The store stamps times to the millisecond, so the delay may end up to 1 ms early by the local clock.
      const waited = performance.now() - before;
      assert.ok(waited >= DELAY - 1, `became waiting only once runAt passed, ${waited} ms after the send began`);
      const stats = await ctx.ferry.stats(q);
      assert.equal(stats.delayed, 0);
      assert.equal(stats.waiting, 1);
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      assert.equal(d.id, sent.id);
    });

    it('takes runAt as a Date, an ISO string or epoch milliseconds', async () => {
      const q = qname();
      const at = Date.now() + 3_600_000;
      const a = await ctx.ferry.send(q, 1, { runAt: new Date(at) });
      const b = await ctx.ferry.send(q, 2, { runAt: new Date(at).toISOString() });
      const c = await ctx.ferry.send(q, 3, { runAt: at });
      for (const s of [a, b, c]) {
        const info = await mustGet(ctx.ferry, s.id);
        assert.equal(info.state, 'delayed');
        assert.equal(isoMs(info.runAt), at);
      }
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), []);
    });
  });

  describe('ack and results', () => {
    it('ack with a result completes the message; get, sent.result() and result(id) read it', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'work');
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      await ctx.ferry.ack(d, { delivered: true, at: 'ünï 😀' });
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'completed');
      assert.deepEqual(info.result, { delivered: true, at: 'ünï 😀' });
      assert.equal(info.attempts, 1);
      assert.equal(info.error, null);
      assert.equal(info.leaseUntil, null);
      const finished = isoMs(info.finishedAt, 'finishedAt');
      assert.ok(finished >= isoMs(info.startedAt), 'finishedAt after startedAt');
      assert.deepEqual(await sent.result(), { delivered: true, at: 'ünï 😀' });
      assert.deepEqual(await ctx.ferry.result(sent.id), { delivered: true, at: 'ünï 😀' });
      const stats = await ctx.ferry.stats(q);
      assert.equal(stats.completed, 1);
      assert.equal(stats.active, 0);
    });

    it('result() waits for an ack that comes later', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      const waiting = sent.result({ timeout: '5s' });
      await sleep(100);
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      await ctx.ferry.ack(d, 42);
      assert.equal(await waiting, 42);
    });

    it('ack without a result stores null; falsy results are kept as they are', async () => {
      const q = qname();
      const values = [undefined, 0, false, '', [], null];
      for (const value of values) {
        const sent = await ctx.ferry.send(q, 'x');
        const d = await receiveOne(ctx.ferry, q, '30s', 0);
        await ctx.ferry.ack(d, value);
        assert.deepEqual(await sent.result(), value === undefined ? null : value, `result ${JSON.stringify(value)}`);
        assert.deepEqual((await mustGet(ctx.ferry, sent.id)).result, value === undefined ? null : value);
      }
    });

    it('call() sends and resolves with the worker result', async () => {
      const q = qname();
      const worker = ctx.ferry.work<{ n: number }>(q, (job) => ({ doubled: job.payload.n * 2 }));
      try {
        assert.deepEqual(await ctx.ferry.call(q, { n: 21 }, { timeout: '5s' }), { doubled: 42 });
        assert.deepEqual(await ctx.ferry.call(q, { n: 1 }, { timeout: '5s', priority: 3 }), { doubled: 2 });
      } finally {
        await worker.close();
      }
    });

    it('result() rejects with MessageFailedError when the message ends dead or cancelled', async () => {
      const q = qname();
      const dead = await ctx.ferry.send(q, 'x');
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      const pending = dead.result({ timeout: '5s' });
      await ctx.ferry.nack(d, {
        error: { message: 'smtp down', name: 'SmtpError', data: { code: 421 } },
        retry: false,
      });
      const e1 = await expectError(() => pending, MessageFailedError, 'dead');
      assert.equal(e1.info.state, 'dead');
      assert.equal(e1.info.id, dead.id);
      assert.equal(e1.info.error?.message, 'smtp down');
      const e2 = await expectError(() => ctx.ferry.result(dead.id), MessageFailedError, 'dead via result(id)');
      assert.equal(e2.info.state, 'dead');

      const cancelled = await ctx.ferry.send(q, 'y', { delay: '1h' });
      await ctx.ferry.cancel(cancelled.id);
      const e3 = await expectError(() => cancelled.result({ timeout: '5s' }), MessageFailedError, 'cancelled');
      assert.equal(e3.info.state, 'cancelled');
    });

    it('result() and call() reject with TimeoutError after their timeout and leave the message alone', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      const start = Date.now();
      await expectError(() => sent.result({ timeout: 200 }), TimeoutError, 'result timeout');
      const elapsed = Date.now() - start;
      assert.ok(elapsed >= 180 && elapsed < 2000, `timed out after ${elapsed}ms`);
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'waiting');
      await expectError(() => ctx.ferry.call(q, 'y', { timeout: '200ms' }), TimeoutError, 'call timeout');
      assert.equal((await ctx.ferry.stats(q)).waiting, 2, 'the call message was sent and is still there');
    });

    it('result() of an unknown id rejects with NotFoundError', async () => {
      await expectError(
        () => ctx.ferry.result('0190b6d2-0000-7000-8000-000000000001', { timeout: 500 }),
        NotFoundError,
        'unknown id',
      );
    });
  });

  describe('receipts', () => {
    it('a second ack is refused with LeaseLostError and changes nothing', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      await ctx.ferry.ack(d, 'first');
      await expectError(() => ctx.ferry.ack(d, 'second'), LeaseLostError, 'double ack');
      await expectError(() => ctx.ferry.nack(d), LeaseLostError, 'nack after ack');
      await expectError(() => ctx.ferry.extend(d, '1m'), LeaseLostError, 'extend after ack');
      await expectError(() => ctx.ferry.progress(d, 99), LeaseLostError, 'progress after ack');
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'completed');
      assert.equal(info.result, 'first');
      assert.equal(info.progress, null);
    });

    it('a stale receipt after the lease ran out and the message was redelivered is refused', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      const d1 = await receiveOne(ctx.ferry, q, 100, 0);
      await sleep(250);
      const d2 = await receiveOne(ctx.ferry, q, '30s', 1000);
      assert.equal(d2.attempt, 2);
      await expectError(() => ctx.ferry.ack(d1, 'stale'), LeaseLostError, 'stale ack');
      await expectError(() => ctx.ferry.nack(d1, { retry: false }), LeaseLostError, 'stale nack');
      await expectError(() => ctx.ferry.extend(d1, '1m'), LeaseLostError, 'stale extend');
      await expectError(() => ctx.ferry.progress(d1, 50), LeaseLostError, 'stale progress');
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'active');
      assert.equal(info.attempts, 2);
      assert.equal(info.result, null);
      assert.equal(info.progress, null);
      assert.equal(isoMs(info.leaseUntil), isoMs(d2.leaseUntil), 'the stale extend moved nothing');
      await ctx.ferry.ack(d2, 'fresh');
      assert.equal((await mustGet(ctx.ferry, sent.id)).result, 'fresh');
    });

    it('a forged receipt is refused with LeaseLostError', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      await expectError(() => ctx.ferry.ack({ id: d.id, receipt: `${d.receipt}x` }), LeaseLostError, 'forged');
      await expectError(() => ctx.ferry.ack({ id: d.id, receipt: 'bogus' }), LeaseLostError, 'bogus');
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'active');
      await ctx.ferry.ack(d);
    });

    it('expired leases count toward maxAttempts: the last one leaves the message dead', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { maxAttempts: 2 });
      const d1 = await receiveOne(ctx.ferry, q, 100, 0);
      assert.equal(d1.attempt, 1);
      await sleep(200);
      const d2 = await receiveOne(ctx.ferry, q, 100, 1000);
      assert.equal(d2.attempt, 2);
      await sleep(200);
      assert.deepEqual(await ctx.ferry.receive(q, { wait: 200 }), [], 'no third delivery');
      const info = await waitState(ctx.ferry, sent.id, 'dead', 3000);
      assert.equal(info.attempts, 2);
      assert.ok(info.error, 'the dead message says why');
      await expectError(() => ctx.ferry.ack(d2), LeaseLostError, 'ack after the last lease ran out and it died');
    });
  });
}
