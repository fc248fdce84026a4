/** Conformance: list, stats, queues, configure, pause and resume, purge, topics. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError, PayloadTooLargeError } from '../../src/core/errors.ts';
import type { Ferry } from '../../src/core/types.ts';
import { type Ctx, expectError, isoMs, mustGet, qname, receiveOne, sleep, waitFor, waitState } from './helpers.ts';

/** Makes one queue hold 2 waiting, 1 delayed, 1 active, 1 completed, 1 dead and 1 cancelled message. */
async function everyState(ferry: Ferry, q: string): Promise<Record<string, string[]>> {
  const completed = await ferry.send(q, 'completed');
  await ferry.ack(await receiveOne(ferry, q, '30s', 0), 'ok');
  const dead = await ferry.send(q, 'dead');
  await ferry.nack(await receiveOne(ferry, q, '30s', 0), { retry: false });
  const active = await ferry.send(q, 'active');
  await receiveOne(ferry, q, '30s', 0);
  const cancelled = await ferry.send(q, 'cancelled');
  await ferry.cancel(cancelled.id);
  const w1 = await ferry.send(q, 'w1');
  const w2 = await ferry.send(q, 'w2');
  const delayed = await ferry.send(q, 'delayed', { delay: '1h' });
  return {
    waiting: [w1.id, w2.id],
    delayed: [delayed.id],
    active: [active.id],
    completed: [completed.id],
    dead: [dead.id],
    cancelled: [cancelled.id],
  };
}

export function adminTests(ctx: Ctx): void {
  describe('list, stats and queues', () => {
    it('stats counts every state; queues() lists the queue with the same counts', async () => {
      const q = qname();
      await everyState(ctx.ferry, q);
      const expected = {
        name: q,
        pending: 0,
        waiting: 2,
        delayed: 1,
        active: 1,
        completed: 1,
        dead: 1,
        cancelled: 1,
        paused: false,
      };
      assert.deepEqual(await ctx.ferry.stats(q), expected);
      const listed = (await ctx.ferry.queues()).find((s) => s.name === q);
      assert.deepEqual(listed, expected);
    });

    it('list filters by state', async () => {
      const q = qname();
      const ids = await everyState(ctx.ferry, q);
      for (const [state, expected] of Object.entries(ids)) {
        const page = await ctx.ferry.list(q, { state: state as never });
        assert.deepEqual(page.messages.map((m) => m.id).sort(), [...expected].sort(), state);
        for (const m of page.messages) assert.equal(m.state, state);
        assert.equal(page.cursor, null);
      }
      const all = await ctx.ferry.list(q);
      assert.equal(all.messages.length, 7);
      const one = all.messages.find((m) => m.payload === 'completed');
      assert.equal(one?.result, 'ok');
      isoMs(one?.finishedAt, 'finishedAt');
    });

    it('pages with a cursor: no duplicates, no gaps, null cursor at the end', async () => {
      const q = qname();
      const sent = await ctx.ferry.sendBatch(
        q,
        Array.from({ length: 53 }, (_, i) => ({ payload: i })),
      );
      await ctx.ferry.sendBatch(
        q,
        Array.from({ length: 4 }, (_, i) => ({ payload: `d${i}`, delay: '1h' })),
      );
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await ctx.ferry.list(q, { state: 'waiting', limit: 7, cursor });
        assert.ok(page.messages.length <= 7);
        pages++;
        seen.push(...page.messages.map((m) => m.id));
        cursor = page.cursor;
        assert.ok(pages < 20, 'paging ends');
      } while (cursor);
      assert.equal(pages, 8);
      assert.equal(new Set(seen).size, seen.length, 'no duplicates');
      assert.deepEqual([...seen].sort(), sent.map((s) => s.id).sort(), 'no gaps');
      const everything: string[] = [];
      cursor = null;
      do {
        const page = await ctx.ferry.list(q, { limit: 10, cursor });
        everything.push(...page.messages.map((m) => m.id));
        cursor = page.cursor;
      } while (cursor);
      assert.equal(new Set(everything).size, 57);
    });

    it('list of an empty queue is empty with a null cursor', async () => {
      assert.deepEqual(await ctx.ferry.list(qname()), { messages: [], cursor: null });
    });

    it('list refuses a state it does not know, a bad limit and a cursor it did not give, and changes nothing', async () => {
      const q = qname();
      await ctx.ferry.send(q, 'kept');
      await expectError(() => ctx.ferry.list(q, { state: 'queued' as never }), InvalidRequestError, 'unknown state');
      await expectError(() => ctx.ferry.list(q, { limit: 0 }), InvalidRequestError, 'limit 0');
      await expectError(() => ctx.ferry.list(q, { cursor: 'abc' }), InvalidRequestError, 'foreign cursor');
      const page = await ctx.ferry.list(q, { state: 'waiting' });
      assert.deepEqual(
        page.messages.map((m) => m.payload),
        ['kept'],
      );
    });
  });

  describe('configure', () => {
    it('configure(q) reads the defaults', async () => {
      const s = await ctx.ferry.configure(qname());
      assert.equal(s.maxAttempts, 3);
      assert.deepEqual(s.backoff, { type: 'exponential', delay: 1000, max: 3_600_000, jitter: true });
      assert.equal(s.lease, 30_000);
      assert.equal(s.retention, 7 * 86_400_000);
      assert.equal(s.concurrency, null);
      assert.equal(s.rateLimit, null);
      assert.deepEqual(s.metadata, {});
      assert.equal(s.paused, false);
    });

    it('metadata is kept whole, replaced whole, and leaves the other settings alone', async () => {
      const q = qname();
      await ctx.ferry.configure(q, { maxAttempts: 4 });
      const set = await ctx.ferry.configure(q, { metadata: { a: '1', 'b.c': 'two words' } });
      assert.deepEqual(set.metadata, { a: '1', 'b.c': 'two words' });
      assert.equal(set.maxAttempts, 4);
      assert.deepEqual((await ctx.ferry.configure(q, { metadata: { d: '' } })).metadata, { d: '' });
      assert.deepEqual((await ctx.ferry.configure(q)).metadata, { d: '' });
      assert.deepEqual((await ctx.ferry.configure(qname())).metadata, {}, 'other queues see none');
      await expectError(() => ctx.ferry.configure(q, { metadata: { n: 1 } as never }), InvalidRequestError);
      await expectError(() => ctx.ferry.configure(q, { metadata: { big: 'x'.repeat(70_000) } }), InvalidRequestError);
    });

    it("configure() answers a copy: changing it changes neither the queue nor another queue's defaults", async () => {
      const q = qname();
      const read = await ctx.ferry.configure(q);
      read.lease = 1;
      read.backoff.delay = 5;
      const set = await ctx.ferry.configure(q, { maxAttempts: 4 });
      set.backoff.max = 6;
      set.maxAttempts = 9;
      const again = await ctx.ferry.configure(q);
      assert.equal(again.lease, 30_000);
      assert.equal(again.maxAttempts, 4);
      assert.deepEqual(again.backoff, { type: 'exponential', delay: 1000, max: 3_600_000, jitter: true });
      assert.deepEqual((await ctx.ferry.configure(qname())).backoff, again.backoff, 'the defaults are intact');
    });

    it('queue defaults for maxAttempts, backoff and lease apply to messages sent without their own', async () => {
      const q = qname();
      const s = await ctx.ferry.configure(q, { maxAttempts: 2, backoff: { type: 'fixed', delay: 60 }, lease: '300ms' });
      assert.equal(s.maxAttempts, 2);
      assert.equal(s.backoff.type, 'fixed');
      assert.equal(s.backoff.delay, 60);
      assert.equal(s.lease, 300);
      const read = await ctx.ferry.configure(q);
      assert.deepEqual(read, s, 'configure(q) reads what was set');

      const own = await ctx.ferry.send(q, 'own', { maxAttempts: 5, delay: '1h' });
      assert.equal((await mustGet(ctx.ferry, own.id)).maxAttempts, 5);
      const sent = await ctx.ferry.send(q, 'x');
      assert.equal((await mustGet(ctx.ferry, sent.id)).maxAttempts, 2);
      const d1 = (await ctx.ferry.receive(q))[0];
      assert.ok(d1);
      const left = isoMs(d1.leaseUntil) - Date.now();
      assert.ok(left > 100 && left <= 350, `the queue lease of 300ms applies (${left}ms left)`);
      const nackedAt = Date.now();
      assert.equal((await ctx.ferry.nack(d1)).state, 'delayed');
      const runAt = isoMs((await mustGet(ctx.ferry, sent.id)).runAt);
      assert.ok(runAt - nackedAt >= 40 && runAt - nackedAt < 200, `fixed 60ms backoff (${runAt - nackedAt}ms)`);
      const d2 = (await ctx.ferry.receive(q, { wait: 1000 }))[0];
      assert.equal(d2?.attempt, 2);
      await sleep(450);
      assert.deepEqual(await ctx.ferry.receive(q), [], 'no third attempt');
      const info = await waitState(ctx.ferry, sent.id, 'dead', 3000);
      assert.equal(info.attempts, 2, 'the expired second lease used up the queue maxAttempts of 2');
    });

    it('retention removes finished messages once it has passed; their dedupeId is free again', async () => {
      const q = qname();
      assert.equal((await ctx.ferry.configure(q, { retention: 200 })).retention, 200);
      const done = await ctx.ferry.send(q, 'done', { dedupeId: 'r' });
      await ctx.ferry.ack(await receiveOne(ctx.ferry, q, '30s', 0), 'ok');
      const live = await ctx.ferry.send(q, 'live', { delay: '1h' });
      await waitFor(async () => (await ctx.ferry.get(done.id)) === null, 'the completed message to go', 6000, 100);
      assert.equal((await mustGet(ctx.ferry, live.id)).state, 'delayed', 'unfinished messages are kept');
      const again = await ctx.ferry.send(q, 'again', { dedupeId: 'r' });
      assert.equal(again.deduplicated, false);
      assert.notEqual(again.id, done.id);
    });

    it("retention is the queue's current setting: shortening it removes messages that finished under the longer one", async () => {
      const q = qname();
      await ctx.ferry.configure(q, { retention: '1h' });
      const done = await ctx.ferry.send(q, 'done');
      await ctx.ferry.ack(await receiveOne(ctx.ferry, q, '30s', 0), 'ok');
      const live = await ctx.ferry.send(q, 'live', { delay: '1h' });
      assert.equal((await mustGet(ctx.ferry, done.id)).state, 'completed');
      await ctx.ferry.configure(q, { retention: 100 });
      // The timeout is a hang guard: the sweep runs every second.
      await waitFor(async () => (await ctx.ferry.get(done.id)) === null, 'the new retention to remove it', 60_000, 100);
      assert.equal((await mustGet(ctx.ferry, live.id)).state, 'delayed', 'unfinished messages are kept');
    });

    it('queue concurrency caps the active messages across consumers', async () => {
      const q = qname();
      assert.equal((await ctx.ferry.configure(q, { concurrency: 2 })).concurrency, 2);
      await ctx.ferry.sendBatch(
        q,
        Array.from({ length: 5 }, (_, i) => ({ payload: i })),
      );
      const first = await ctx.ferry.receive(q, { max: 10 });
      assert.equal(first.length, 2);
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), []);
      await ctx.ferry.ack(first[0]!);
      assert.equal((await ctx.ferry.receive(q, { max: 10 })).length, 1);
      await ctx.ferry.configure(q, { concurrency: null });
      assert.equal((await ctx.ferry.receive(q, { max: 10 })).length, 2);
    });

    it('queue rateLimit caps deliveries per window', async () => {
      const q = qname();
      await ctx.ferry.configure(q, { rateLimit: { max: 3, per: '600ms' } });
      await ctx.ferry.sendBatch(
        q,
        Array.from({ length: 6 }, (_, i) => ({ payload: i })),
      );
      assert.equal((await ctx.ferry.receive(q, { max: 10 })).length, 3);
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), []);
      const got = await waitFor(
        async () => {
          const d = await ctx.ferry.receive(q, { max: 10 });
          return d.length ? d : undefined;
        },
        'the next window',
        3000,
        50,
      );
      assert.ok(got.length <= 3);
    });
  });

  describe('pause and resume', () => {
    it('a paused queue delivers nothing; resume lets it go', async () => {
      const q = qname();
      await ctx.ferry.pause(q);
      assert.equal((await ctx.ferry.stats(q)).paused, true);
      assert.equal((await ctx.ferry.configure(q)).paused, true);
      const sent = await ctx.ferry.send(q, 'x');
      assert.deepEqual(await ctx.ferry.receive(q), []);
      assert.deepEqual(await ctx.ferry.receive(q, { wait: 200 }), []);
      const worker = ctx.ferry.work(q, () => 'handled');
      try {
        await sleep(250);
        assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'waiting');
        await ctx.ferry.resume(q);
        assert.equal((await ctx.ferry.stats(q)).paused, false);
        assert.equal(await ctx.ferry.result(sent.id, { timeout: '5s' }), 'handled');
      } finally {
        await worker.close();
      }
    });
  });

  describe('purge', () => {
    it('purges by state; by default every state but active', async () => {
      const q = qname();
      const ids = await everyState(ctx.ferry, q);
      assert.deepEqual(await ctx.ferry.purge(q, { state: 'completed' }), { purged: 1 });
      assert.equal(await ctx.ferry.get(ids.completed![0]!), null);
      assert.deepEqual(await ctx.ferry.purge(q, { state: ['dead', 'cancelled'] }), { purged: 2 });
      assert.deepEqual(await ctx.ferry.purge(q), { purged: 3 });
      const stats = await ctx.ferry.stats(q);
      assert.deepEqual(
        [stats.waiting, stats.delayed, stats.active, stats.completed, stats.dead, stats.cancelled],
        [0, 0, 1, 0, 0, 0],
      );
      assert.equal((await mustGet(ctx.ferry, ids.active![0]!)).state, 'active');
      assert.equal(await ctx.ferry.get(ids.waiting![0]!), null);
    });

    it('a purged message no longer dedupes', async () => {
      const q = qname();
      const first = await ctx.ferry.send(q, 1, { dedupeId: 'p' });
      await ctx.ferry.purge(q);
      const second = await ctx.ferry.send(q, 2, { dedupeId: 'p' });
      assert.equal(second.deduplicated, false);
      assert.notEqual(second.id, first.id);
    });
  });

  describe('topics', () => {
    it('publish sends one copy into each subscribed queue; unsubscribe stops it', async () => {
      const t = qname('t');
      const q1 = qname();
      const q2 = qname();
      await ctx.ferry.subscribe(t, q1);
      await ctx.ferry.subscribe(t, q2);
      await ctx.ferry.subscribe(t, q1);
      const out = await ctx.ferry.publish(t, { order: 1 }, { priority: 2 });
      assert.deepEqual(out.messages.map((m) => m.queue).sort(), [q1, q2].sort());
      for (const m of out.messages) {
        const info = await mustGet(ctx.ferry, m.id);
        assert.equal(info.queue, m.queue);
        assert.deepEqual(info.payload, { order: 1 });
        assert.equal(info.priority, 2);
      }
      assert.equal((await ctx.ferry.stats(q1)).waiting, 1, 'one copy, although subscribed twice');
      assert.equal((await ctx.ferry.stats(q2)).waiting, 1);

      await ctx.ferry.unsubscribe(t, q1);
      const second = await ctx.ferry.publish(t, { order: 2 });
      assert.deepEqual(
        second.messages.map((m) => m.queue),
        [q2],
      );
      await ctx.ferry.unsubscribe(t, q2);
      assert.deepEqual((await ctx.ferry.publish(t, { order: 3 })).messages, []);
      assert.equal((await ctx.ferry.stats(q1)).waiting, 1);
      assert.equal((await ctx.ferry.stats(q2)).waiting, 2);
    });

    it('subscriptions(topic) lists the subscribed queues by name, once each, and follows unsubscribe', async () => {
      const t = qname('t');
      const [a, b] = [qname(), qname()].sort() as [string, string];
      assert.deepEqual(await ctx.ferry.subscriptions(t), [], 'a topic nobody subscribed to');
      await ctx.ferry.subscribe(t, b);
      await ctx.ferry.subscribe(t, a);
      await ctx.ferry.subscribe(t, b);
      await ctx.ferry.subscribe(qname('t'), a);
      assert.deepEqual(await ctx.ferry.subscriptions(t), [a, b]);
      await ctx.ferry.unsubscribe(t, b);
      assert.deepEqual(await ctx.ferry.subscriptions(t), [a]);
      await expectError(() => ctx.ferry.subscriptions('bad topic!'), InvalidRequestError, 'bad topic name');
    });

    it('publish to a topic with no subscriber sends nothing; bad input is refused', async () => {
      assert.deepEqual((await ctx.ferry.publish(qname('t'), 1)).messages, []);
      const t = qname('t');
      const q = qname();
      await ctx.ferry.subscribe(t, q);
      await expectError(() => ctx.ferry.publish(t, 'x'.repeat(1024 * 1024)), PayloadTooLargeError, 'too large');
      await expectError(() => ctx.ferry.publish(t, 1, { priority: 0.5 }), InvalidRequestError, 'bad option');
      assert.equal((await ctx.ferry.stats(q)).waiting, 0);
      await expectError(() => ctx.ferry.subscribe(t, 'bad queue'), InvalidRequestError, 'bad queue');
      await expectError(() => ctx.ferry.subscribe('', q), InvalidRequestError, 'empty topic');
    });
  });
}
