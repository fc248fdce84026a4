/** Conformance: nack and backoff, dead messages, redrive, retry, cancel, extend and progress. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConflictError, FerryError, LeaseLostError, NotFoundError } from '../../src/core/errors.ts';
import {
  type Ctx,
  deferred,
  EventReader,
  expectError,
  isoMs,
  mustGet,
  prime,
  qname,
  receiveOne,
  sleep,
  waitState,
} from './helpers.ts';

const FIXED = (delay: number) => ({ type: 'fixed' as const, delay });

export function failureTests(ctx: Ctx): void {
  describe('nack and retries', () => {
    it("the last failed attempt's error stays through a later success and through a redrive", async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { backoff: FIXED(0) });
      await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0), { error: { message: 'first try' } });
      await ctx.ferry.ack(await receiveOne(ctx.ferry, q, '30s', 2000), 'ok');
      const done = await mustGet(ctx.ferry, sent.id);
      assert.deepEqual([done.state, done.result, done.error?.message], ['completed', 'ok', 'first try']);

      const dead = await ctx.ferry.send(q, 'y', { maxAttempts: 1 });
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      await ctx.ferry.nack(d, { error: { message: 'gave up' } });
      assert.equal((await mustGet(ctx.ferry, dead.id)).state, 'dead');
      await ctx.ferry.redrive(q);
      const again = await mustGet(ctx.ferry, dead.id);
      assert.deepEqual([again.state, again.attempts, again.error?.message], ['waiting', 0, 'gave up']);
      assert.notEqual(again.startedAt, null, 'startedAt is that of the last delivery');
    });

    it('nack waits the backoff, then redelivers with attempt + 1; the error is kept', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { backoff: FIXED(150) });
      const d1 = await receiveOne(ctx.ferry, q, '30s', 0);
      const nackedAt = Date.now();
      assert.deepEqual(await ctx.ferry.nack(d1, { error: { message: 'smtp down', name: 'SmtpError' } }), {
        state: 'delayed',
      });
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'delayed');
      assert.equal(info.attempts, 1);
      assert.equal(info.error?.message, 'smtp down');
      assert.equal(info.error?.name, 'SmtpError');
      assert.ok(Math.abs(isoMs(info.runAt) - nackedAt - 150) < 100, 'runAt = nack + backoff');
      assert.deepEqual(await ctx.ferry.receive(q), [], 'not before the backoff');
      const d2 = await receiveOne(ctx.ferry, q, '30s', 2000);
      assert.ok(Date.now() - nackedAt >= 140, 'redelivered after the backoff');
      assert.equal(d2.attempt, 2);
      assert.equal(d2.id, sent.id);
      await ctx.ferry.ack(d2, 'ok');
      const done = await mustGet(ctx.ferry, sent.id);
      assert.equal(done.state, 'completed');
      assert.equal(done.attempts, 2);
    });

    it('a nack delay replaces the backoff; delay 0 makes it waiting at once', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { backoff: FIXED(20), maxAttempts: 5 });
      const d1 = await receiveOne(ctx.ferry, q, '30s', 0);
      const nackedAt = Date.now();
      assert.equal((await ctx.ferry.nack(d1, { delay: 400 })).state, 'delayed');
      await sleep(150);
      assert.deepEqual(await ctx.ferry.receive(q), [], 'the nack delay, not the 20ms backoff');
      const d2 = await receiveOne(ctx.ferry, q, '30s', 2000);
      assert.ok(Date.now() - nackedAt >= 390, 'waited the nack delay');
      assert.equal((await ctx.ferry.nack(d2, { delay: 0, error: 'plain string' })).state, 'waiting');
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'waiting');
      assert.equal(info.error?.message, 'plain string');
      const d3 = await receiveOne(ctx.ferry, q, '30s', 0);
      assert.equal(d3.attempt, 3);
      await ctx.ferry.ack(d3);
    });

    it('nack under a zero backoff answers waiting, as get() does: due now is waiting', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { backoff: FIXED(0), maxAttempts: 3 });
      const d1 = await receiveOne(ctx.ferry, q, '30s', 0);
      assert.deepEqual(await ctx.ferry.nack(d1), { state: 'waiting' });
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'waiting');
      const d2 = await receiveOne(ctx.ferry, q, '30s', 0);
      assert.equal(d2.attempt, 2);
      await ctx.ferry.ack(d2);
    });

    it('nack with retry: false makes the message dead at once', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { maxAttempts: 5 });
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      assert.deepEqual(await ctx.ferry.nack(d, { retry: false, error: { message: 'bad input', data: { f: 1 } } }), {
        state: 'dead',
      });
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'dead');
      assert.equal(info.attempts, 1);
      assert.equal(info.error?.message, 'bad input');
      assert.deepEqual(info.error?.data, { f: 1 });
      isoMs(info.finishedAt, 'finishedAt');
      assert.deepEqual(await ctx.ferry.receive(q, { wait: 100 }), []);
    });

    it('uses up maxAttempts, then the message is dead with the last error', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { maxAttempts: 3, backoff: FIXED(20) });
      for (let attempt = 1; attempt <= 3; attempt++) {
        const d = await receiveOne(ctx.ferry, q, '30s', 2000);
        assert.equal(d.attempt, attempt);
        const { state } = await ctx.ferry.nack(d, { error: { message: `failure ${attempt}` } });
        assert.equal(state, attempt < 3 ? 'delayed' : 'dead');
      }
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'dead');
      assert.equal(info.attempts, 3);
      assert.equal(info.error?.message, 'failure 3');
      assert.deepEqual(await ctx.ferry.receive(q, { wait: 100 }), []);
      assert.equal((await ctx.ferry.stats(q)).dead, 1);
    });

    it('redrive moves every dead message back to waiting with fresh attempts', async () => {
      const q = qname();
      const a = await ctx.ferry.send(q, 'a', { maxAttempts: 1 });
      const b = await ctx.ferry.send(q, 'b', { maxAttempts: 1 });
      const c = await ctx.ferry.send(q, 'c');
      for (let i = 0; i < 2; i++) await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0));
      assert.equal((await mustGet(ctx.ferry, a.id)).state, 'dead');
      assert.equal((await mustGet(ctx.ferry, b.id)).state, 'dead');
      assert.deepEqual(await ctx.ferry.redrive(q), { moved: 2 });
      for (const s of [a, b]) {
        const info = await mustGet(ctx.ferry, s.id);
        assert.equal(info.state, 'waiting');
        assert.equal(info.attempts, 0);
      }
      assert.equal((await mustGet(ctx.ferry, c.id)).state, 'waiting');
      assert.deepEqual(await ctx.ferry.redrive(q), { moved: 0 });
      const got = await ctx.ferry.receive(q, { max: 10 });
      assert.equal(got.length, 3);
      assert.deepEqual(
        got.map((d) => d.attempt),
        [1, 1, 1],
      );
    });

    it('retry(id) revives a dead or cancelled message and makes a delayed one due now', async () => {
      const q = qname();
      const dead = await ctx.ferry.send(q, 'dead');
      await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0), { retry: false });
      assert.deepEqual(await ctx.ferry.retry(dead.id), { state: 'waiting' });
      let info = await mustGet(ctx.ferry, dead.id);
      assert.equal(info.state, 'waiting');
      assert.equal(info.attempts, 0);
      assert.equal((await receiveOne(ctx.ferry, q, '30s', 0)).attempt, 1);

      const cancelled = await ctx.ferry.send(q, 'cancelled');
      await ctx.ferry.cancel(cancelled.id);
      assert.deepEqual(await ctx.ferry.retry(cancelled.id), { state: 'waiting' });
      assert.equal((await receiveOne(ctx.ferry, q, '30s', 0)).id, cancelled.id);

      const delayed = await ctx.ferry.send(q, 'delayed', { delay: '1h' });
      assert.deepEqual(await ctx.ferry.retry(delayed.id), { state: 'waiting' });
      info = await mustGet(ctx.ferry, delayed.id);
      assert.equal(info.state, 'waiting');
      assert.ok(isoMs(info.runAt) <= Date.now() + 50);
      assert.equal((await receiveOne(ctx.ferry, q, '30s', 0)).id, delayed.id);
    });

    it('retry(id) of a completed message is a ConflictError; of an unknown id a NotFoundError', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      await ctx.ferry.ack(await receiveOne(ctx.ferry, q, '30s', 0), 'done');
      await expectError(() => ctx.ferry.retry(sent.id), ConflictError, 'retry completed');
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'completed');
      assert.equal(info.result, 'done');
      await expectError(() => ctx.ferry.retry('0190b6d2-0000-7000-8000-000000000002'), NotFoundError, 'unknown');
    });
  });

  describe('cancel', () => {
    it('cancels waiting and delayed messages at once', async () => {
      const q = qname();
      const waiting = await ctx.ferry.send(q, 'w');
      const delayed = await ctx.ferry.send(q, 'd', { delay: 200 });
      assert.deepEqual(await ctx.ferry.cancel(waiting.id), { state: 'cancelled' });
      assert.deepEqual(await ctx.ferry.cancel(delayed.id), { state: 'cancelled' });
      for (const s of [waiting, delayed]) {
        const info = await mustGet(ctx.ferry, s.id);
        assert.equal(info.state, 'cancelled');
        isoMs(info.finishedAt, 'finishedAt');
      }
      await sleep(250);
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10, wait: 100 }), []);
      const stats = await ctx.ferry.stats(q);
      assert.equal(stats.cancelled, 2);
      assert.equal(stats.waiting + stats.delayed, 0);
    });

    it('cancel of a finished message changes nothing; of an unknown id is a NotFoundError', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      await ctx.ferry.ack(await receiveOne(ctx.ferry, q, '30s', 0), 'kept');
      try {
        const answer = await ctx.ferry.cancel(sent.id);
        assert.equal(answer.state, 'completed', 'a completed message stays completed');
      } catch (error) {
        assert.ok(error instanceof ConflictError, `expected ConflictError, got ${error}`);
      }
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'completed');
      assert.equal(info.result, 'kept');
      await expectError(() => ctx.ferry.cancel('0190b6d2-0000-7000-8000-000000000003'), NotFoundError, 'unknown');
    });

    it('cancel of an active message ends it cancelled when its attempt ends, never retried', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { maxAttempts: 5, backoff: FIXED(20) });
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      const { state } = await ctx.ferry.cancel(sent.id);
      assert.ok(state === 'active' || state === 'cancelled', `cancel answered ${state}`);
      const after = await ctx.ferry.nack(d, { error: 'stopped' });
      assert.equal(after.state, 'cancelled');
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'cancelled');
      assert.deepEqual(await ctx.ferry.receive(q, { wait: 150 }), [], 'never retried');
    });

    it('cancel of an active message whose lease then runs out ends cancelled, not redelivered', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { maxAttempts: 5 });
      await receiveOne(ctx.ferry, q, 100, 0);
      await ctx.ferry.cancel(sent.id);
      await sleep(200);
      assert.deepEqual(await ctx.ferry.receive(q, { wait: 200 }), [], 'not redelivered');
      const info = await waitState(ctx.ferry, sent.id, 'cancelled', 3000);
      assert.equal(info.attempts, 1);
    });

    it("cancel of an active message aborts the worker's job.signal", async () => {
      const q = qname();
      let calls = 0;
      let sawAbort = false;
      const started = deferred();
      const worker = ctx.ferry.work(q, async (job) => {
        calls++;
        started.resolve();
        await new Promise<void>((resolve) => {
          if (job.signal.aborted) resolve();
          job.signal.addEventListener('abort', () => resolve(), { once: true });
          setTimeout(resolve, 3000);
        });
        sawAbort = job.signal.aborted;
        throw new Error('aborted');
      });
      try {
        const sent = await ctx.ferry.send(q, 'x', { maxAttempts: 5, backoff: FIXED(20) });
        await started.promise;
        const begin = Date.now();
        await ctx.ferry.cancel(sent.id);
        const info = await waitState(ctx.ferry, sent.id, 'cancelled', 2500);
        assert.ok(Date.now() - begin < 2000, 'the signal fired, the handler did not just time out');
        assert.equal(sawAbort, true);
        assert.equal(info.attempts, 1);
        await sleep(200);
        assert.equal(calls, 1, 'never retried');
      } finally {
        await worker.close();
      }
    });
  });

  describe('extend and progress', () => {
    it('extend pushes the lease out so the message is not redelivered', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x');
      const d = await receiveOne(ctx.ferry, q, 200, 0);
      const { leaseUntil } = await ctx.ferry.extend(d, 1500);
      const until = isoMs(leaseUntil, 'leaseUntil');
      assert.ok(until > isoMs(d.leaseUntil), 'later than the first lease');
      assert.ok(Math.abs(until - Date.now() - 1500) < 300, 'about now + 1.5s');
      assert.equal(isoMs((await mustGet(ctx.ferry, sent.id)).leaseUntil), until);
      await sleep(400);
      assert.deepEqual(await ctx.ferry.receive(q), [], 'still leased');
      await ctx.ferry.ack(d, 'in time');
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'completed');
    });

    it('progress is visible in get and as a progress event', async () => {
      const q = qname();
      const reader = new EventReader(ctx.ferry.events({ queue: q }));
      try {
        await prime(ctx.ferry, q, reader);
        const sent = await ctx.ferry.send(q, 'x');
        const d = await receiveOne(ctx.ferry, q, '30s', 0);
        await ctx.ferry.progress(d, 40);
        assert.equal((await mustGet(ctx.ferry, sent.id)).progress, 40);
        await ctx.ferry.progress(d, { pct: 80, step: 'upload 😀' });
        assert.deepEqual((await mustGet(ctx.ferry, sent.id)).progress, { pct: 80, step: 'upload 😀' });
        await ctx.ferry.ack(d);
        await reader.until((e) => e.id === sent.id && e.type === 'completed');
        const events = reader.seen.filter((e) => e.id === sent.id && e.type !== 'sent');
        assert.deepEqual(
          events.map((e) => [e.type, e.type === 'progress' ? e.progress : null]),
          [
            ['active', null],
            ['progress', 40],
            ['progress', { pct: 80, step: 'upload 😀' }],
            ['completed', null],
          ],
        );
      } finally {
        reader.close();
      }
    });

    it('ack, nack, extend and progress of an unknown message fail', async () => {
      const ref = { id: '0190b6d2-0000-7000-8000-000000000004', receipt: 'r' };
      for (const [what, fn] of [
        ['ack', () => ctx.ferry.ack(ref)],
        ['nack', () => ctx.ferry.nack(ref)],
        ['extend', () => ctx.ferry.extend(ref, '1s')],
        ['progress', () => ctx.ferry.progress(ref, 1)],
      ] as const) {
        const e = await expectError(fn, FerryError, what);
        assert.ok(e instanceof NotFoundError || e instanceof LeaseLostError, `${what}: ${e.name}`);
      }
    });
  });
}
