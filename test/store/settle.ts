/** Settling a delivery: complete, fail (retry, backoff, dead), release, extend, progress; stale receipts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackoffSettings, Claimed, Store } from '../../src/store/store.ts';
import { type Ctx, claimOne, expectState, failure, qname, record, sendOne, T0 } from './helpers.ts';

const FIXED: BackoffSettings = { type: 'fixed', delay: 300, max: 300, jitter: false };

/** Every way to act on a delivery, answering whether the store accepted the receipt. */
function actions(store: Store, c: Claimed, now: number): [string, () => Promise<boolean>][] {
  const ref = { id: c.id, receipt: c.receipt };
  return [
    ['complete', async () => (await store.complete([{ ...ref, result: '1' }], now))[0] !== null],
    [
      'fail',
      async () => (await store.fail([{ ...ref, error: failure('x'), retry: true, delay: null }], now))[0] !== null,
    ],
    ['release', async () => (await store.release([ref], now))[0] !== null],
    ['extend', async () => (await store.extend(c.id, c.receipt, 5000, now)) !== null],
    ['progress', () => store.progress(c.id, c.receipt, '50', now)],
  ];
}

export function settleTests(ctx: Ctx): void {
  describe('complete', () => {
    it('completes with the result; get() shows it finished', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      const c = await claimOne(store, q);
      assert.deepEqual(await store.complete([{ id, receipt: c.receipt, result: '{"ok":true}' }], T0 + 10), [
        'completed',
      ]);
      const r = await expectState(store, id, 'completed');
      assert.equal(r.result, '{"ok":true}');
      assert.equal(r.finishedAt, T0 + 10);
      assert.equal(r.leaseUntil, null);
      assert.equal(r.attempts, 1);
    });

    it('settles a batch item by item: a stale receipt is null, its neighbours complete', async () => {
      const { store } = ctx.s;
      const q = qname();
      const a = await sendOne(store, q);
      const b = await sendOne(store, q);
      const [ca, cb] = (await store.claim(q, 2, 1000, T0)) as [Claimed, Claimed];
      const out = await store.complete(
        [
          { id: a, receipt: ca.receipt, result: null },
          { id: b, receipt: `${cb.receipt}x`, result: null },
          { id: b, receipt: cb.receipt, result: '2' },
        ],
        T0,
      );
      assert.deepEqual(out, ['completed', null, 'completed']);
      await expectState(store, a, 'completed');
      assert.equal((await expectState(store, b, 'completed')).result, '2');
    });
  });

  describe('stale receipts', () => {
    it('a receipt used once is stale: every action answers null/false and changes nothing', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      const c = await claimOne(store, q);
      assert.deepEqual(await store.complete([{ id, receipt: c.receipt, result: '"first"' }], T0), ['completed']);
      const before = await record(store, id);
      for (const [name, act] of actions(store, c, T0 + 1)) {
        assert.equal(await act(), false, `${name} with a used receipt`);
      }
      assert.deepEqual(await record(store, id), before, 'nothing changed');
    });

    it("another delivery's receipt, a wrong id, or a made-up receipt is refused", async () => {
      const { store } = ctx.s;
      const q = qname();
      const a = await sendOne(store, q);
      const b = await sendOne(store, q);
      const [ca, cb] = (await store.claim(q, 2, 1000, T0)) as [Claimed, Claimed];
      const swapped = { ...ca, receipt: cb.receipt };
      const wrongId = { ...cb, id: a };
      const madeUp = { ...ca, receipt: '1.1.nonsense' };
      for (const c of [swapped, wrongId, madeUp]) {
        for (const [name, act] of actions(store, c, T0 + 1)) assert.equal(await act(), false, name);
      }
      for (const [id, c] of [
        [a, ca],
        [b, cb],
      ] as const) {
        const r = await expectState(store, id, 'active');
        assert.equal(r.leaseUntil, c.leaseUntil);
        assert.equal(r.progress, null);
      }
    });

    it('at exactly leaseUntil the lease is gone: every action refused, the message still active until settled', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      const c = await claimOne(store, q, T0, 1000);
      for (const [name, act] of actions(store, c, T0 + 1000)) {
        assert.equal(await act(), false, `${name} at leaseUntil`);
      }
      const r = await expectState(store, id, 'active');
      assert.equal(r.leaseUntil, T0 + 1000);
      assert.equal(r.progress, null);
    });

    it('one millisecond before leaseUntil the receipt still holds', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      const c = await claimOne(store, q, T0, 1000);
      assert.equal(await store.progress(id, c.receipt, '1', T0 + 999), true);
      assert.deepEqual(await store.complete([{ id, receipt: c.receipt, result: null }], T0 + 999), ['completed']);
      await expectState(store, id, 'completed');
    });
  });

  describe('fail', () => {
    it("retries after the message's backoff, through retryDelay with the attempt that failed", async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q, { backoff: FIXED });
      const c = await claimOne(store, q);
      const calls = ctx.s.delays.length;
      assert.deepEqual(
        await store.fail([{ id, receipt: c.receipt, error: failure('boom'), retry: true, delay: null }], T0 + 10),
        ['queued'],
      );
      assert.deepEqual(ctx.s.delays.slice(calls), [{ attempt: 1, backoff: FIXED }]);
      const r = await expectState(store, id, 'queued');
      assert.equal(r.runAt, T0 + 10 + 300, 'runAt = now + retryDelay(1)');
      assert.equal(r.attempts, 1);
      assert.deepEqual(JSON.parse(r.error as string), { message: 'boom', name: 'Error' });
      assert.equal(r.leaseUntil, null);
      assert.deepEqual(await store.claim(q, 1, 1000, T0 + 309), [], 'not before the backoff');
      const again = await claimOne(store, q, T0 + 310);
      assert.equal(again.attempt, 2);
      await store.fail([{ id, receipt: again.receipt, error: failure('boom'), retry: true, delay: null }], T0 + 400);
      assert.deepEqual(ctx.s.delays.slice(calls + 1), [{ attempt: 2, backoff: FIXED }]);
      assert.equal((await expectState(store, id, 'queued')).runAt, T0 + 400 + 600);
    });

    it("without a backoff of its own, the queue's backoff applies", async () => {
      const { store } = ctx.s;
      const q = qname();
      const queueBackoff: BackoffSettings = { type: 'exponential', delay: 700, max: 10_000, jitter: false };
      await store.configure(q, { backoff: queueBackoff });
      const id = await sendOne(store, q);
      const c = await claimOne(store, q);
      const calls = ctx.s.delays.length;
      await store.fail([{ id, receipt: c.receipt, error: failure('x'), retry: true, delay: null }], T0);
      assert.deepEqual(ctx.s.delays.slice(calls), [{ attempt: 1, backoff: queueBackoff }]);
      assert.equal((await expectState(store, id, 'queued')).runAt, T0 + 700);
    });

    it('a given delay replaces the backoff (0: due at once)', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q, { backoff: FIXED });
      const calls = ctx.s.delays.length;
      const c = await claimOne(store, q);
      await store.fail([{ id, receipt: c.receipt, error: failure('x'), retry: true, delay: 5000 }], T0 + 1);
      assert.equal((await expectState(store, id, 'queued')).runAt, T0 + 5001);
      const c2 = await claimOne(store, q, T0 + 5001);
      assert.deepEqual(
        await store.fail([{ id, receipt: c2.receipt, error: failure('x'), retry: true, delay: 0 }], T0 + 5002),
        ['queued'],
      );
      assert.equal((await expectState(store, id, 'queued')).runAt, T0 + 5002);
      assert.equal(ctx.s.delays.length, calls, 'retryDelay is not asked when a delay is given');
    });

    it('dead once maxAttempts are used up', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q, { maxAttempts: 2, backoff: FIXED });
      const c1 = await claimOne(store, q);
      assert.deepEqual(
        await store.fail([{ id, receipt: c1.receipt, error: failure('one'), retry: true, delay: 0 }], T0),
        ['queued'],
      );
      const c2 = await claimOne(store, q);
      assert.deepEqual(
        await store.fail([{ id, receipt: c2.receipt, error: failure('two'), retry: true, delay: null }], T0 + 5),
        ['dead'],
      );
      const r = await expectState(store, id, 'dead');
      assert.equal(r.attempts, 2);
      assert.equal(r.finishedAt, T0 + 5);
      assert.deepEqual(JSON.parse(r.error as string), { message: 'two', name: 'Error' });
      assert.deepEqual(await store.claim(q, 1, 1000, T0 + 10_000), []);
    });

    it("the queue's maxAttempts applies to a message without its own", async () => {
      const { store } = ctx.s;
      const q = qname();
      await store.configure(q, { maxAttempts: 1 });
      const id = await sendOne(store, q);
      const c = await claimOne(store, q);
      assert.deepEqual(
        await store.fail([{ id, receipt: c.receipt, error: failure('x'), retry: true, delay: null }], T0),
        ['dead'],
      );
      await expectState(store, id, 'dead');
    });

    it('retry: false is dead at once, attempts left or not', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q, { maxAttempts: 10 });
      const c = await claimOne(store, q);
      assert.deepEqual(
        await store.fail([{ id, receipt: c.receipt, error: failure('fatal'), retry: false, delay: null }], T0),
        ['dead'],
      );
      const r = await expectState(store, id, 'dead');
      assert.equal(r.attempts, 1);
    });
  });

  describe('release', () => {
    it('puts the message back due now; the attempt does not count', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      const c = await claimOne(store, q);
      assert.deepEqual(await store.release([{ id, receipt: c.receipt }], T0 + 20), ['queued']);
      const r = await expectState(store, id, 'queued');
      assert.equal(r.attempts, 0);
      assert.equal(r.runAt, T0 + 20);
      assert.equal(r.leaseUntil, null);
      const again = await claimOne(store, q, T0 + 20);
      assert.equal(again.attempt, 1);
      assert.deepEqual(await store.release([{ id, receipt: c.receipt }], T0 + 21), [null], 'the old receipt');
    });
  });

  describe('extend', () => {
    it('moves leaseUntil to now + lease; the receipt stays valid past the old end', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      const c = await claimOne(store, q, T0, 1000);
      assert.equal(await store.extend(id, c.receipt, 5000, T0 + 900), T0 + 5900);
      assert.equal((await record(store, id)).leaseUntil, T0 + 5900);
      assert.deepEqual(await store.claim(q, 1, 1000, T0 + 1000), [], 'not redelivered at the old end');
      assert.deepEqual(await store.complete([{ id, receipt: c.receipt, result: null }], T0 + 5899), ['completed']);
    });

    it('is refused once a cancel is requested', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      const c = await claimOne(store, q, T0, 1000);
      await store.cancel(id, T0);
      assert.equal(await store.extend(id, c.receipt, 5000, T0 + 1), null);
      assert.equal((await record(store, id)).leaseUntil, T0 + 1000);
    });
  });

  describe('progress', () => {
    it('records the value on the message', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      const c = await claimOne(store, q);
      assert.equal(await store.progress(id, c.receipt, '{"pct":40}', T0 + 1), true);
      assert.equal((await record(store, id)).progress, '{"pct":40}');
      assert.equal(await store.progress(id, c.receipt, '{"pct":80}', T0 + 2), true);
      assert.equal((await record(store, id)).progress, '{"pct":80}');
    });
  });

  describe('cancel requested while active', () => {
    for (const [how, settle] of [
      ['complete', (s: Store, c: Claimed) => s.complete([{ id: c.id, receipt: c.receipt, result: '1' }], T0 + 5)],
      [
        'fail',
        (s: Store, c: Claimed) =>
          s.fail([{ id: c.id, receipt: c.receipt, error: failure('x'), retry: true, delay: null }], T0 + 5),
      ],
      ['release', (s: Store, c: Claimed) => s.release([{ id: c.id, receipt: c.receipt }], T0 + 5)],
    ] as const) {
      it(`${how} ends it cancelled, never retried`, async () => {
        const { store } = ctx.s;
        const q = qname();
        const id = await sendOne(store, q, { maxAttempts: 5 });
        const c = await claimOne(store, q);
        const flagged = await store.cancel(id, T0 + 1);
        assert.equal(flagged?.state, 'active');
        assert.equal(flagged?.cancelRequested, true);
        const r0 = await expectState(store, id, 'active');
        assert.equal(r0.cancelRequested, true);
        assert.deepEqual(await settle(store, c), ['cancelled']);
        const r = await expectState(store, id, 'cancelled');
        assert.equal(r.finishedAt, T0 + 5);
        assert.deepEqual(await store.claim(q, 1, 1000, T0 + 100_000), []);
      });
    }

    it('a lapsed lease ends it cancelled', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q, { maxAttempts: 5 });
      await claimOne(store, q, T0, 1000);
      await store.cancel(id, T0 + 1);
      assert.deepEqual(await store.claim(q, 1, 1000, T0 + 1000), []);
      await expectState(store, id, 'cancelled');
    });
  });
}
