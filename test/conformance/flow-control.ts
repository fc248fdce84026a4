/**
 * Conformance: flow control (SPEC §6) — job timeouts (send, queue, receive and work options; the deadline
 * caps every lease; TimeoutError, backoff, maxAttempts; a racing ack) and dead-letter queues (every path to
 * dead copies the message, in the same transaction).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError, LeaseLostError, UnrecoverableError } from '../../src/core/errors.ts';
import type { Delivery, Ferry, FerryEvent, MessageInfo } from '../../src/core/types.ts';
import {
  type Ctx,
  EventReader,
  expectAllRefused,
  expectError,
  isoMs,
  mustGet,
  prime,
  qname,
  receiveOne,
  sleep,
  waitFor,
  waitState,
} from './helpers.ts';

const FIXED = (delay: number) => ({ type: 'fixed' as const, delay });
const DEAD_LETTER_FROM = 'ferry-dead-letter-from';

/** Waits until message `id` has left `active` (settled by a claim, the sweep or a worker); answers its info. */
function settled(ferry: Ferry, id: string, timeout = 4000): Promise<MessageInfo> {
  return waitFor(
    async () => {
      const info = await ferry.get(id);
      return info && info.state !== 'active' ? info : undefined;
    },
    `message ${id} to leave active`,
    timeout,
  ) as Promise<MessageInfo>;
}

function assertTimeoutError(error: MessageInfo['error'] | FerryEvent['error'], what: string): void {
  assert.equal(error?.name, 'TimeoutError', `${what}: ${JSON.stringify(error)}`);
  assert.match(error?.message ?? '', /timeout/, what);
}

/** The dead-letter copies of `id` in `dlq` (all of them, whatever their state). */
async function copiesOf(ferry: Ferry, dlq: string, id: string): Promise<MessageInfo[]> {
  const page = await ferry.list(dlq, { limit: 1000 });
  return page.messages.filter((m) => m.headers[DEAD_LETTER_FROM]?.endsWith(`/${id}`));
}

export function flowControlTests(ctx: Ctx): void {
  describe('job timeout', () => {
    it('a delivery carries its deadline; the lease given and every extend are capped by it; a late ack is lease_lost', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { timeout: '600ms', backoff: FIXED(60_000) });
      const before = Date.now();
      const d = await receiveOne(ctx.ferry, q, '30s', 0);
      const after = Date.now();
      assert.ok(d.deadline, 'a delivery with a timeout has a deadline');
      const deadline = isoMs(d.deadline, 'deadline');
      assert.ok(deadline >= before + 600 - 50 && deadline <= after + 600 + 50, 'deadline = delivery + timeout');
      assert.equal(isoMs(d.leaseUntil), deadline, 'a 30s lease is capped at the deadline');
      const extended = await ctx.ferry.extend(d, '1h');
      assert.equal(isoMs(extended.leaseUntil), deadline, 'extend answers the capped leaseUntil');
      await sleep(Math.max(0, deadline - Date.now()) + 50);
      await expectError(() => ctx.ferry.ack(d, 'too late'), LeaseLostError, 'ack after the deadline');
      const info = await settled(ctx.ferry, sent.id);
      assert.equal(info.state, 'delayed', 'retried by the backoff (fixed 60s here)');
      assert.equal(info.attempts, 1, 'the attempt counted');
      assertTimeoutError(info.error, 'the error kept');
      assert.ok(isoMs(info.runAt) >= deadline + 60_000 - 100, 'runAt after the backoff');
    });

    it('without a timeout a delivery has deadline null and extend is not capped', async () => {
      const q = qname();
      await ctx.ferry.send(q, 'x');
      const d = await receiveOne(ctx.ferry, q, '1s', 0);
      assert.equal(d.deadline, null);
      const { leaseUntil } = await ctx.ferry.extend(d, '1h');
      assert.ok(isoMs(leaseUntil) > Date.now() + 3_500_000);
      await ctx.ferry.ack(d);
    });

    it('precedence: the receive (worker) option, else the message’s, else the queue’s', async () => {
      const q = qname();
      await ctx.ferry.configure(q, { timeout: '10m' });
      assert.equal((await ctx.ferry.configure(q)).timeout, 600_000);
      await ctx.ferry.send(q, 'own', { timeout: '5m', priority: 3 });
      await ctx.ferry.send(q, 'queue', { priority: 2 });
      await ctx.ferry.send(q, 'receive', { timeout: '5m', priority: 1 });
      const within = (d: Delivery, ms: number, what: string) => {
        const left = isoMs(d.deadline, what) - Date.now();
        // A store on PostgreSQL reads the database's clock (src/stores/postgres/clock.ts), which may run a
        // millisecond or so ahead of this process's: `left` may exceed `ms` by that much.
        assert.ok(left > ms - 5000 && left <= ms + 1000, `${what}: ${left} ms left, expected about ${ms}`);
      };
      const own = await receiveOne(ctx.ferry, q, '1m', 0);
      assert.equal(own.payload, 'own');
      within(own, 300_000, 'the message’s timeout');
      const queue = await receiveOne(ctx.ferry, q, '1m', 0);
      assert.equal(queue.payload, 'queue');
      within(queue, 600_000, 'the queue’s timeout');
      const [byReceive] = await ctx.ferry.receive(q, { timeout: '2m', lease: '1m' });
      assert.equal(byReceive?.payload, 'receive');
      within(byReceive as Delivery, 120_000, 'the receive option');
      for (const d of [own, queue, byReceive as Delivery]) await ctx.ferry.ack(d);
      await ctx.ferry.configure(q, { timeout: null });
      assert.equal((await ctx.ferry.configure(q)).timeout, null, 'null removes the queue’s timeout');
    });

    it('a consumer that keeps extending cannot outlive the deadline', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, 'x', { timeout: '2s', backoff: FIXED(0), maxAttempts: 3 });
      // Leases of 1.5 s, renewed every 100 ms: the first renewals move the lease, the later ones are capped.
      const d = await receiveOne(ctx.ferry, q, '1500ms', 0);
      const deadline = isoMs(d.deadline);
      let lost = false;
      let capped = 0;
      while (Date.now() < deadline + 3000) {
        try {
          const { leaseUntil } = await ctx.ferry.extend(d, '1500ms');
          assert.ok(isoMs(leaseUntil) <= deadline, 'no extension passes the deadline');
          if (isoMs(leaseUntil) === deadline) capped++;
        } catch (error) {
          assert.ok(error instanceof LeaseLostError, `extend past the deadline: ${(error as Error).message}`);
          lost = true;
          break;
        }
        await sleep(100);
      }
      assert.ok(capped > 0, 'extensions near the deadline answer the deadline');
      assert.ok(lost, 'extend is refused once the deadline passed');
      // Within the few ms by which a store on PostgreSQL's clock (the database's) may run ahead of this one.
      assert.ok(Date.now() >= deadline - 50, 'not before the deadline');
      const info = await settled(ctx.ferry, sent.id);
      assertTimeoutError(info.error, 'the renewing consumer timed out');
      assert.equal(info.attempts, 1);
      const again = await receiveOne(ctx.ferry, q, '30s', 3000);
      assert.equal(again.attempt, 2, 'retried');
      await ctx.ferry.ack(again);
    });

    it('a receive() consumer that never answers: the store fails the attempt at the deadline, dead when attempts are spent', async () => {
      const q = qname();
      const reader = new EventReader(ctx.ferry.events({ queue: q }));
      try {
        await prime(ctx.ferry, q, reader);
        const sent = await ctx.ferry.send(q, 'x', { timeout: '300ms', maxAttempts: 1 });
        await receiveOne(ctx.ferry, q, '1h', 0);
        const dead = await reader.until((e) => e.id === sent.id && e.type === 'dead', 5000);
        assertTimeoutError(dead.error, 'the dead event carries the TimeoutError');
        assert.equal(dead.attempt, 1);
        const info = await mustGet(ctx.ferry, sent.id);
        assert.equal(info.state, 'dead');
        assertTimeoutError(info.error, 'kept on the message');
      } finally {
        reader.close();
      }
    });

    it('work(…, { timeout }): the signal fires with a TimeoutError; retried by the backoff, dead when maxAttempts is spent', async () => {
      const q = qname();
      const reasons: unknown[] = [];
      const reader = new EventReader(ctx.ferry.events({ queue: q, types: ['retrying', 'dead'] }));
      const worker = ctx.ferry.work(
        q,
        (job) =>
          new Promise((_resolve, reject) => {
            // Hangs until its signal fires, as a well-behaved handler does.
            job.signal.addEventListener('abort', () => {
              reasons.push(job.signal.reason);
              reject(job.signal.reason);
            });
          }),
        { timeout: '300ms', concurrency: 2 },
      );
      try {
        // The worker's option overrides the message's hour.
        const sent = await ctx.ferry.send(q, 'hangs', { timeout: '1h', maxAttempts: 2, backoff: FIXED(50) });
        const retrying = await reader.until((e) => e.id === sent.id && e.type === 'retrying', 5000);
        assertTimeoutError(retrying.error, 'retrying after the timeout');
        assert.equal(retrying.attempt, 1);
        const dead = await reader.until((e) => e.id === sent.id && e.type === 'dead', 5000);
        assertTimeoutError(dead.error, 'dead after the second timeout');
        assert.equal(dead.attempt, 2);
        await waitFor(async () => reasons.length >= 2, 'both signals', 3000);
        for (const reason of reasons) assert.equal((reason as Error).name, 'TimeoutError');
        const info = await mustGet(ctx.ferry, sent.id);
        assert.equal(info.state, 'dead');
        assert.equal(info.attempts, 2);
        assertTimeoutError(info.error, 'kept');
      } finally {
        reader.close();
        await worker.close({ timeout: '1s' });
      }
    });

    it('a handler that finishes in time is not touched by its timeout', async () => {
      const q = qname();
      const worker = ctx.ferry.work(q, async (job) => {
        await sleep(50);
        return { deadline: job.deadline };
      });
      try {
        const sent = await ctx.ferry.send(q, 'quick', { timeout: '5s' });
        const result = (await sent.result({ timeout: '5s' })) as { deadline: string };
        isoMs(result.deadline, 'job.deadline');
        const info = await mustGet(ctx.ferry, sent.id);
        assert.equal(info.state, 'completed');
        assert.equal(info.attempts, 1);
      } finally {
        await worker.close();
      }
    });

    it('a timeout racing an ack: exactly one wins, and the events say which', async () => {
      const q = qname();
      const n = 16;
      const reader = new EventReader(ctx.ferry.events({ queue: q }));
      try {
        await prime(ctx.ferry, q, reader);
        await ctx.ferry.sendBatch(
          q,
          Array.from({ length: n }, (_, i) => ({ payload: i, timeout: '400ms', backoff: FIXED(60_000) })),
        );
        const deliveries = await ctx.ferry.receive(q, { max: n, lease: '30s' });
        assert.equal(deliveries.length, n);
        // Each ack aims at its deadline, some a little before, some a little after.
        const outcomes = await Promise.all(
          deliveries.map(async (d, i) => {
            await sleep(Math.max(0, isoMs(d.deadline) - Date.now() + (i % 4) * 3 - 5));
            try {
              await ctx.ferry.ack(d, 'acked');
              return 'completed';
            } catch (error) {
              assert.ok(error instanceof LeaseLostError, `a lost race answers lease_lost: ${(error as Error).message}`);
              return 'timed out';
            }
          }),
        );
        for (const d of deliveries) await settled(ctx.ferry, d.id);
        // Every outcome is in the log by now: a probe sent after them closes the window read.
        const probe = await ctx.ferry.send(q, 'probe', { delay: '1h' });
        await reader.until((e) => e.id === probe.id, 5000);
        const ends = (id: string) =>
          reader.seen.filter((e) => e.id === id && (e.type === 'completed' || e.type === 'retrying'));
        for (const [i, d] of deliveries.entries()) {
          const info = await mustGet(ctx.ferry, d.id);
          const events = ends(d.id);
          assert.equal(events.length, 1, `one outcome for ${d.id}: ${events.map((e) => e.type).join(',')}`);
          if (outcomes[i] === 'completed') {
            assert.equal(events[0]?.type, 'completed');
            assert.equal(info.state, 'completed');
            assert.equal(info.result, 'acked');
          } else {
            assert.equal(events[0]?.type, 'retrying');
            assertTimeoutError(events[0]?.error, 'the timeout won');
            assert.equal(info.state, 'delayed');
            assert.equal(info.result, null);
          }
        }
      } finally {
        reader.close();
      }
    });

    it('bad timeout values are refused with InvalidRequestError', async () => {
      const q = qname();
      await expectAllRefused(
        [
          ['send 0', () => ctx.ferry.send(q, 1, { timeout: 0 })],
          ['send 99ms', () => ctx.ferry.send(q, 1, { timeout: '99ms' })],
          ['send negative', () => ctx.ferry.send(q, 1, { timeout: -5 })],
          ['send text', () => ctx.ferry.send(q, 1, { timeout: 'soon' })],
          ['send 8 days', () => ctx.ferry.send(q, 1, { timeout: '8d' })],
          ['send object', () => ctx.ferry.send(q, 1, { timeout: {} as unknown as string })],
          ['batch', () => ctx.ferry.sendBatch(q, [{ payload: 1, timeout: 1.5 }])],
          ['publish', () => ctx.ferry.publish(qname('t'), 1, { timeout: 'x' })],
          ['configure', () => ctx.ferry.configure(q, { timeout: '1' })],
          ['configure text', () => ctx.ferry.configure(q, { timeout: 'never' })],
          ['receive', () => ctx.ferry.receive(q, { timeout: 'x' })],
          ['work', () => ctx.ferry.work(q, () => null, { timeout: 50 })],
          ['schedule', () => ctx.ferry.schedule(qname('s'), { cron: '0 3 * * *', queue: q, options: { timeout: 1 } })],
        ],
        InvalidRequestError,
      );
      assert.equal((await ctx.ferry.stats(q)).waiting, 0, 'nothing was sent');
    });
  });

  describe('dead-letter queue', () => {
    /** A queue with a dead-letter queue; answers both names. */
    async function pair(config: Parameters<Ferry['configure']>[1] = {}): Promise<{ q: string; dlq: string }> {
      const q = qname('src');
      const dlq = qname('dlq');
      const settings = await ctx.ferry.configure(q, { deadLetter: dlq, ...config });
      assert.equal(settings.deadLetter, dlq);
      return { q, dlq };
    }

    /** Asserts `id` is dead in `q` and has exactly one copy in `dlq`, made with it; answers the copy. */
    async function assertCopied(q: string, dlq: string, id: string, payload: unknown): Promise<MessageInfo> {
      const info = await mustGet(ctx.ferry, id);
      assert.equal(info.state, 'dead', 'the original stays dead');
      // Same transaction: whoever sees the original dead sees the copy.
      const copies = await copiesOf(ctx.ferry, dlq, id);
      assert.equal(copies.length, 1, `one copy of ${id}`);
      const copy = copies[0] as MessageInfo;
      assert.notEqual(copy.id, id, 'a new message');
      assert.equal(copy.queue, dlq);
      assert.deepEqual(copy.payload, payload);
      assert.equal(copy.headers[DEAD_LETTER_FROM], `${q}/${id}`);
      assert.ok(['waiting', 'active', 'completed'].includes(copy.state), copy.state);
      return copy;
    }

    it('nack with retry: false, and a nack that spends the attempts, copy the message with its headers', async () => {
      const { q, dlq } = await pair();
      const a = await ctx.ferry.send(q, { n: 1 }, { headers: { trace: 'abc' }, maxAttempts: 5 });
      await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0), { retry: false, error: 'poison' });
      const copy = await assertCopied(q, dlq, a.id, { n: 1 });
      assert.deepEqual(copy.headers, { trace: 'abc', [DEAD_LETTER_FROM]: `${q}/${a.id}` });
      const b = await ctx.ferry.send(q, { n: 2 }, { maxAttempts: 1 });
      assert.deepEqual(await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0)), { state: 'dead' });
      await assertCopied(q, dlq, b.id, { n: 2 });
    });

    it('a handler that throws (attempts spent) and an UnrecoverableError copy the message', async () => {
      const { q, dlq } = await pair({ maxAttempts: 1 });
      const worker = ctx.ferry.work(q, (job) => {
        if (job.payload === 'unrecoverable') throw new UnrecoverableError('no');
        throw new Error('boom');
      });
      try {
        const thrown = await ctx.ferry.send(q, 'throws');
        const unrecoverable = await ctx.ferry.send(q, 'unrecoverable', { maxAttempts: 5 });
        await waitState(ctx.ferry, thrown.id, 'dead');
        await waitState(ctx.ferry, unrecoverable.id, 'dead');
        await assertCopied(q, dlq, thrown.id, 'throws');
        await assertCopied(q, dlq, unrecoverable.id, 'unrecoverable');
      } finally {
        await worker.close();
      }
    });

    it('an expired lease with attempts spent, and a timeout, copy the message', async () => {
      const { q, dlq } = await pair({ maxAttempts: 1 });
      const lapsed = await ctx.ferry.send(q, 'lapsed');
      await receiveOne(ctx.ferry, q, '200ms', 0);
      const timedOut = await ctx.ferry.send(q, 'timed out', { timeout: '200ms' });
      await receiveOne(ctx.ferry, q, '1h', 1000);
      await waitState(ctx.ferry, lapsed.id, 'dead', 5000);
      await waitState(ctx.ferry, timedOut.id, 'dead', 5000);
      await assertCopied(q, dlq, lapsed.id, 'lapsed');
      await assertCopied(q, dlq, timedOut.id, 'timed out');
      assertTimeoutError((await mustGet(ctx.ferry, timedOut.id)).error, 'the timed-out original');
    });

    it('the copy’s sent event follows the dead event; it takes the target queue’s defaults, not the original’s options', async () => {
      const { q, dlq } = await pair();
      await ctx.ferry.configure(dlq, { maxAttempts: 7 });
      const reader = new EventReader(ctx.ferry.events());
      try {
        await prime(ctx.ferry, q, reader);
        const sent = await ctx.ferry.send(q, 'x', { priority: 9, key: 'k1', maxAttempts: 4, timeout: '1m' });
        await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0), { retry: false });
        const dead = await reader.until((e) => e.type === 'dead' && e.id === sent.id);
        const copySent = await reader.until((e) => e.type === 'sent' && e.queue === dlq);
        assert.equal(copySent.seq, dead.seq + 1, 'the copy is sent in the transaction that made the original dead');
        const copy = await mustGet(ctx.ferry, copySent.id);
        assert.equal(copy.headers[DEAD_LETTER_FROM], `${q}/${sent.id}`);
        assert.equal(copy.maxAttempts, 7, 'the target queue’s maxAttempts');
        assert.equal(copy.priority, 0);
        assert.equal(copy.key, null);
        const d = await receiveOne(ctx.ferry, dlq, '30s', 0);
        assert.equal(d.id, copy.id);
        assert.equal(d.deadline, null, 'the original’s timeout is not carried over');
        await ctx.ferry.ack(d);
      } finally {
        reader.close();
      }
    });

    it('a paused dead-letter queue still receives copies, delivered once it is resumed', async () => {
      const { q, dlq } = await pair();
      await ctx.ferry.pause(dlq);
      const sent = await ctx.ferry.send(q, 'while paused');
      await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0), { retry: false });
      const copy = await assertCopied(q, dlq, sent.id, 'while paused');
      assert.equal(copy.state, 'waiting');
      assert.deepEqual(await ctx.ferry.receive(dlq), [], 'paused: not delivered');
      await ctx.ferry.resume(dlq);
      const d = await receiveOne(ctx.ferry, dlq, '30s', 1000);
      assert.equal(d.id, copy.id);
      await ctx.ferry.ack(d);
    });

    it('redriving the original keeps the copy; a second death makes a second copy; no deadLetter, no copy', async () => {
      const { q, dlq } = await pair();
      const sent = await ctx.ferry.send(q, 'twice');
      await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0), { retry: false });
      await assertCopied(q, dlq, sent.id, 'twice');
      assert.deepEqual(await ctx.ferry.redrive(q), { moved: 1 });
      assert.equal((await copiesOf(ctx.ferry, dlq, sent.id)).length, 1, 'redrive does not remove the copy');
      await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0), { retry: false });
      assert.equal((await copiesOf(ctx.ferry, dlq, sent.id)).length, 2, 'a copy per death');

      await ctx.ferry.configure(q, { deadLetter: null });
      assert.equal((await ctx.ferry.configure(q)).deadLetter, null);
      const third = await ctx.ferry.send(q, 'uncopied');
      await ctx.ferry.nack(await receiveOne(ctx.ferry, q, '30s', 0), { retry: false });
      assert.equal((await mustGet(ctx.ferry, third.id)).state, 'dead');
      assert.equal((await copiesOf(ctx.ferry, dlq, third.id)).length, 0);
    });

    it('bad deadLetter values are refused with InvalidRequestError and change nothing', async () => {
      const q = qname();
      await ctx.ferry.configure(q, { maxAttempts: 4 });
      await expectAllRefused(
        [
          ['itself', () => ctx.ferry.configure(q, { deadLetter: q })],
          ['bad name', () => ctx.ferry.configure(q, { deadLetter: 'bad name' })],
          ['empty', () => ctx.ferry.configure(q, { deadLetter: '' })],
          ['number', () => ctx.ferry.configure(q, { deadLetter: 5 as unknown as string })],
          ['with a good change', () => ctx.ferry.configure(q, { maxAttempts: 9, deadLetter: '-x' })],
        ],
        InvalidRequestError,
      );
      const settings = await ctx.ferry.configure(q);
      assert.equal(settings.deadLetter, null);
      assert.equal(settings.maxAttempts, 4, 'a refused patch changes nothing');
    });
  });
}
