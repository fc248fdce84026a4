/** Conformance: which lease applies, duration strings, exponential backoff. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Ctx, isoMs, mustGet, qname, receiveOne } from './helpers.ts';

export function timingTests(ctx: Ctx): void {
  describe('leases and durations', () => {
    it("the lease is the receive's, else the message's, else the queue's, else 30s", async () => {
      const q = qname();
      await ctx.ferry.send(q, 'default');
      let d = (await ctx.ferry.receive(q))[0]!;
      let left = isoMs(d.leaseUntil) - Date.now();
      assert.ok(left > 29_000 && left <= 30_100, `default lease, ${left}ms left`);

      await ctx.ferry.send(q, 'own', { lease: '2m' });
      d = (await ctx.ferry.receive(q))[0]!;
      left = isoMs(d.leaseUntil) - Date.now();
      assert.ok(left > 119_000 && left <= 120_100, `the message lease, ${left}ms left`);

      await ctx.ferry.send(q, 'overridden', { lease: '2m' });
      d = (await ctx.ferry.receive(q, { lease: '5s' }))[0]!;
      left = isoMs(d.leaseUntil) - Date.now();
      assert.ok(left > 4000 && left <= 5100, `the receive lease wins, ${left}ms left`);

      const q2 = qname();
      await ctx.ferry.configure(q2, { lease: '45s' });
      await ctx.ferry.send(q2, 'queue');
      d = (await ctx.ferry.receive(q2))[0]!;
      left = isoMs(d.leaseUntil) - Date.now();
      assert.ok(left > 44_000 && left <= 45_100, `the queue lease, ${left}ms left`);
    });

    it('reads durations as milliseconds or "250ms", "30s", "5m", "2h", "7d"', async () => {
      const q = qname();
      const cases: [number | string, number][] = [
        [1500, 1500],
        ['250ms', 250],
        ['30s', 30_000],
        ['5m', 300_000],
        ['2h', 7_200_000],
        ['7d', 604_800_000],
      ];
      for (const [delay, ms] of cases) {
        const sent = await ctx.ferry.send(q, delay, { delay });
        const info = await mustGet(ctx.ferry, sent.id);
        assert.equal(isoMs(info.runAt) - isoMs(info.sentAt), ms, `delay ${delay}`);
        assert.equal(info.state, 'delayed');
      }
    });
  });

  describe('exponential backoff', () => {
    /**
     * Fails the message `times` times; for each, the bounds of the wait the backoff chose: runAt minus the end
     * and minus the start of the nack call (the store stamps the nack at a moment between the two).
     */
    async function waits(backoff: object, times: number): Promise<{ low: number; high: number }[]> {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { backoff: backoff as never, maxAttempts: times + 1 });
      const out: { low: number; high: number }[] = [];
      for (let i = 0; i < times; i++) {
        const d = await receiveOne(ctx.ferry, q, '30s', 3000);
        const before = Date.now();
        await ctx.ferry.nack(d);
        const after = Date.now();
        const runAt = isoMs((await mustGet(ctx.ferry, sent.id)).runAt);
        out.push({ low: runAt - after, high: runAt - before });
      }
      return out;
    }

    /** The wait lies in [min, max] (give or take clock rounding), as far as the call's duration lets us see. */
    function within(wait: { low: number; high: number }, min: number, max: number, what: string): void {
      assert.ok(
        wait.high >= min - 5 && wait.low <= max + 5,
        `${what}: between ${wait.low} and ${wait.high} ms, expected ${min}–${max}`,
      );
    }

    it('doubles from delay, capped at max, without jitter when asked', async () => {
      const got = await waits({ type: 'exponential', delay: 60, max: 300, jitter: false }, 4);
      const expected = [60, 120, 240, 300];
      got.forEach((wait, i) => {
        within(wait, expected[i] as number, expected[i] as number, `wait ${i + 1}`);
      });
    });

    it('with jitter, waits between half and all of the doubled delay', async () => {
      const got = await waits({ type: 'exponential', delay: 80, max: 1000 }, 3);
      const full = [80, 160, 320];
      got.forEach((wait, i) => {
        const top = full[i] as number;
        within(wait, top / 2, top, `wait ${i + 1}`);
      });
    });
  });
}
