/** Conformance: work() — concurrency, results, retries, UnrecoverableError, lease renewal, signals, close. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError, UnrecoverableError } from '../../src/core/errors.ts';
import type { Job } from '../../src/core/types.ts';
import { type Ctx, deferred, expectError, isoMs, mustGet, qname, sleep, waitFor, waitState } from './helpers.ts';

const FIXED = (delay: number) => ({ type: 'fixed' as const, delay });

export function workTests(ctx: Ctx): void {
  describe('work()', () => {
    it('hands the handler a job with the message fields; its return value becomes the result', async () => {
      const q = qname();
      const jobs: Job[] = [];
      const worker = ctx.ferry.work<{ n: number }>(q, async (job) => {
        jobs.push(job as Job);
        return { doubled: job.payload.n * 2 };
      });
      try {
        assert.equal(worker.queue, q);
        const sent = await ctx.ferry.send(q, { n: 21 }, { priority: 4, key: 'kk', headers: { a: 'b' } });
        assert.deepEqual(await sent.result({ timeout: '5s' }), { doubled: 42 });
        const job = jobs[0] as Job;
        assert.equal(job.id, sent.id);
        assert.equal(job.queue, q);
        assert.deepEqual(job.payload, { n: 21 });
        assert.equal(job.attempt, 1);
        assert.equal(job.key, 'kk');
        assert.equal(job.priority, 4);
        assert.deepEqual(job.headers, { a: 'b' });
        assert.equal(typeof job.receipt, 'string');
        isoMs(job.sentAt, 'sentAt');
        assert.ok(job.signal instanceof AbortSignal);
        const info = await mustGet(ctx.ferry, sent.id);
        assert.equal(info.state, 'completed');
        assert.equal(info.attempts, 1);
      } finally {
        await worker.close();
      }
    });

    it('runs at most `concurrency` handlers at once, and reaches it', async () => {
      const q = qname();
      let inFlight = 0;
      let most = 0;
      let runningSeen = 0;
      const worker = ctx.ferry.work(
        q,
        async () => {
          inFlight++;
          most = Math.max(most, inFlight);
          await sleep(80);
          runningSeen = Math.max(runningSeen, worker.running);
          inFlight--;
        },
        { concurrency: 4 },
      );
      try {
        await ctx.ferry.sendBatch(
          q,
          Array.from({ length: 16 }, (_, i) => ({ payload: i })),
        );
        await waitFor(async () => (await ctx.ferry.stats(q)).completed === 16, '16 completed', 10_000);
        assert.equal(most, 4);
        assert.ok(runningSeen >= 2 && runningSeen <= 4, `worker.running saw ${runningSeen}`);
      } finally {
        await worker.close();
      }
    });

    it("a handler's error whose data cannot be stored still ends the attempt as its failure, without the data", async () => {
      const q = qname();
      let data: unknown = 'bottom';
      for (let i = 0; i < 1000; i++) data = { a: data };
      const worker = ctx.ferry.work(
        q,
        () => {
          throw Object.assign(new Error('handler broke'), { name: 'BrokeError', data });
        },
        { onError: () => {} },
      );
      try {
        const sent = await ctx.ferry.send(q, 1, { maxAttempts: 1 });
        const info = await waitState(ctx.ferry, sent.id, 'dead', 5000);
        assert.equal(info.error?.name, 'BrokeError');
        assert.match(info.error?.message ?? '', /^handler broke \(its data could not be stored: .*nested deeper/);
        assert.equal(info.error?.data, undefined);
      } finally {
        await worker.close();
      }
    });

    it('a worker with more room than one receive may ask for (concurrency + prefetch > 1000) still works', async () => {
      const q = qname();
      const errors: unknown[] = [];
      const worker = ctx.ferry.work(q, (job) => job.payload, {
        concurrency: 1000,
        prefetch: 500,
        onError: (error) => errors.push(error),
      });
      try {
        await ctx.ferry.sendBatch(
          q,
          Array.from({ length: 30 }, (_, i) => ({ payload: i })),
        );
        await waitFor(async () => (await ctx.ferry.stats(q)).completed === 30, '30 completed', 10_000);
        assert.deepEqual(errors, []);
      } finally {
        await worker.close();
      }
    });
    it('a throwing handler is retried after the backoff, then the message is dead', async () => {
      const q = qname();
      const times: number[] = [];
      const attempts: number[] = [];
      const worker = ctx.ferry.work(q, (job) => {
        times.push(Date.now());
        attempts.push(job.attempt);
        throw new Error(`boom ${job.attempt}`);
      });
      try {
        const sent = await ctx.ferry.send(q, 'x', { maxAttempts: 3, backoff: FIXED(100) });
        const info = await waitState(ctx.ferry, sent.id, 'dead', 5000);
        assert.deepEqual(attempts, [1, 2, 3]);
        assert.equal(info.attempts, 3);
        assert.equal(info.error?.message, 'boom 3');
        assert.equal(info.error?.name, 'Error');
        for (let i = 1; i < times.length; i++) {
          const gap = (times[i] as number) - (times[i - 1] as number);
          assert.ok(gap >= 90, `attempt ${i + 1} came ${gap}ms after the previous one`);
        }
        await sleep(200);
        assert.equal(attempts.length, 3, 'no attempt after dead');
      } finally {
        await worker.close();
      }
    });

    it('a handler that fails once then succeeds completes with attempts 2', async () => {
      const q = qname();
      const worker = ctx.ferry.work(q, (job) => {
        if (job.attempt === 1) throw new Error('transient');
        return 'second time lucky';
      });
      try {
        const sent = await ctx.ferry.send(q, 'x', { backoff: FIXED(30) });
        assert.equal(await sent.result({ timeout: '5s' }), 'second time lucky');
        assert.equal((await mustGet(ctx.ferry, sent.id)).attempts, 2);
      } finally {
        await worker.close();
      }
    });

    it('UnrecoverableError makes the message dead at once, with attempts 1', async () => {
      const q = qname();
      let calls = 0;
      const worker = ctx.ferry.work(q, () => {
        calls++;
        throw new UnrecoverableError('bad address');
      });
      try {
        const sent = await ctx.ferry.send(q, 'x', { maxAttempts: 5, backoff: FIXED(20) });
        const info = await waitState(ctx.ferry, sent.id, 'dead', 3000);
        assert.equal(info.attempts, 1);
        assert.equal(info.error?.message, 'bad address');
        await sleep(150);
        assert.equal(calls, 1);
      } finally {
        await worker.close();
      }
    });

    it('renews the lease while a handler runs longer than it: delivered exactly once', async () => {
      const q = qname();
      let calls = 0;
      const worker = ctx.ferry.work(
        q,
        async () => {
          calls++;
          await sleep(700);
          return 'slow';
        },
        { lease: 200 },
      );
      try {
        const sent = await ctx.ferry.send(q, 'x');
        await waitState(ctx.ferry, sent.id, 'active', 2000);
        await sleep(350);
        assert.deepEqual(await ctx.ferry.receive(q), [], 'another consumer gets nothing while the lease is renewed');
        assert.equal(await sent.result({ timeout: '5s' }), 'slow');
        assert.equal(calls, 1);
        assert.equal((await mustGet(ctx.ferry, sent.id)).attempts, 1);
      } finally {
        await worker.close();
      }
    });

    it('renews a message lease of 200ms too (lease given at send)', async () => {
      const q = qname();
      let calls = 0;
      const worker = ctx.ferry.work(q, async () => {
        calls++;
        await sleep(600);
        return 'ok';
      });
      try {
        const sent = await ctx.ferry.send(q, 'x', { lease: 200 });
        assert.equal(await sent.result({ timeout: '5s' }), 'ok');
        assert.equal(calls, 1);
        assert.equal((await mustGet(ctx.ferry, sent.id)).attempts, 1);
      } finally {
        await worker.close();
      }
    });

    it('job.signal fires when the lease is lost to someone else', async () => {
      const q = qname();
      const started = deferred<Job>();
      const errors: unknown[] = [];
      let aborted = false;
      const worker = ctx.ferry.work(
        q,
        async (job) => {
          started.resolve(job as Job);
          await new Promise<void>((resolve) => {
            job.signal.addEventListener('abort', () => resolve(), { once: true });
            setTimeout(resolve, 3000);
          });
          aborted = job.signal.aborted;
          return 'from the worker';
        },
        { lease: 200, onError: (e) => errors.push(e) },
      );
      try {
        const sent = await ctx.ferry.send(q, 'x');
        const job = await started.promise;
        // Settling the delivery with the worker's own receipt makes its next renewal find the lease lost.
        await ctx.ferry.ack({ id: job.id, receipt: job.receipt }, 'settled elsewhere');
        await waitFor(async () => aborted, 'job.signal to abort', 2500);
        const info = await mustGet(ctx.ferry, sent.id);
        assert.equal(info.state, 'completed');
        assert.equal(info.result, 'settled elsewhere', "the worker's late ack changed nothing");
      } finally {
        await worker.close();
      }
    });

    it('job.progress and job.extend work from inside the handler', async () => {
      const q = qname();
      const seen: unknown[] = [];
      const worker = ctx.ferry.work(q, async (job) => {
        await job.progress({ pct: 50 });
        seen.push((await ctx.ferry.get(job.id))?.progress);
        await job.extend('10s');
        const until = (await ctx.ferry.get(job.id))?.leaseUntil;
        seen.push(until ? Date.parse(until) - Date.now() : null);
        return 'done';
      });
      try {
        const sent = await ctx.ferry.send(q, 'x');
        assert.equal(await sent.result({ timeout: '5s' }), 'done');
        assert.deepEqual(seen[0], { pct: 50 });
        assert.ok((seen[1] as number) > 8000, `extended lease has ${seen[1]}ms left`);
        assert.deepEqual((await mustGet(ctx.ferry, sent.id)).progress, { pct: 50 });
      } finally {
        await worker.close();
      }
    });

    it('close() stops taking messages and waits for the work in hand', async () => {
      const q = qname();
      const started = deferred();
      let finished = false;
      const worker = ctx.ferry.work(q, async () => {
        started.resolve();
        await sleep(300);
        finished = true;
        return 'finished';
      });
      const sent = await ctx.ferry.send(q, 'x');
      await started.promise;
      const begin = Date.now();
      await worker.close();
      assert.ok(Date.now() - begin >= 200, 'close waited for the handler');
      assert.equal(finished, true);
      assert.equal(worker.running, 0);
      const info = await mustGet(ctx.ferry, sent.id);
      assert.equal(info.state, 'completed', 'acked before close resolved');
      assert.equal(info.result, 'finished');
      const later = await ctx.ferry.send(q, 'after close');
      await sleep(200);
      assert.equal((await mustGet(ctx.ferry, later.id)).state, 'waiting', 'a closed worker takes nothing');
    });

    it('close({ timeout }) stops waiting after the timeout and aborts the handler signal', async () => {
      const q = qname();
      const started = deferred<Job>();
      const worker = ctx.ferry.work(
        q,
        async (job) => {
          started.resolve(job as Job);
          await new Promise<void>((resolve) => {
            job.signal.addEventListener('abort', () => resolve(), { once: true });
            setTimeout(resolve, 3000);
          });
          throw new Error('stopped');
        },
        { onError: () => {} },
      );
      await ctx.ferry.send(q, 'x');
      const job = await started.promise;
      const begin = Date.now();
      await worker.close({ timeout: 150 });
      const took = Date.now() - begin;
      assert.ok(took >= 100 && took < 1500, `close took ${took}ms`);
      assert.equal(job.signal.aborted, true);
    });

    it('refuses a bad queue name or concurrency with InvalidRequestError', async () => {
      await expectError(() => ctx.ferry.work('bad name', () => 1), InvalidRequestError, 'bad queue');
      await expectError(() => ctx.ferry.work(qname(), () => 1, { concurrency: 0 }), InvalidRequestError, 'conc 0');
      await expectError(() => ctx.ferry.work(qname(), () => 1, { lease: 50 }), InvalidRequestError, 'lease 50');
    });
  });
}
