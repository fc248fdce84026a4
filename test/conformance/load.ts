/** Conformance: a 10,000-message batch drained exactly once by 50 concurrent handlers. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Ctx, qname, waitFor } from './helpers.ts';

export function loadTests(ctx: Ctx): void {
  describe('load', () => {
    it('drains a 10,000-message sendBatch exactly once with work() concurrency 50', { timeout: 120_000 }, async () => {
      const q = qname();
      const N = 10_000;
      const handled = new Map<string, number>();
      let most = 0;
      const worker = ctx.ferry.work<{ i: number }>(
        q,
        (job) => {
          handled.set(job.id, (handled.get(job.id) ?? 0) + 1);
          most = Math.max(most, worker.running);
          return job.payload.i;
        },
        { concurrency: 50 },
      );
      try {
        const sents = await ctx.ferry.sendBatch(
          q,
          Array.from({ length: N }, (_, i) => ({ payload: { i } })),
        );
        assert.equal(sents.length, N);
        assert.equal(new Set(sents.map((s) => s.id)).size, N, 'distinct ids');
        await waitFor(async () => (await ctx.ferry.stats(q)).completed === N, `${N} completed`, 100_000, 100);
        const stats = await ctx.ferry.stats(q);
        assert.deepEqual(
          [stats.waiting, stats.delayed, stats.active, stats.completed, stats.dead, stats.cancelled],
          [0, 0, 0, N, 0, 0],
        );
        assert.equal(handled.size, N, 'every message was handled');
        const twice = [...handled].filter(([, n]) => n !== 1);
        assert.deepEqual(twice, [], 'no message was handled twice');
        for (const s of sents) assert.ok(handled.has(s.id));
        assert.ok(most <= 50, `at most 50 in flight, saw ${most}`);
      } finally {
        await worker.close();
      }
    });
  });
}
