/** Inserting messages: ids, stored fields, dedupe, batches all-or-none, publish fan-out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SETTINGS } from '../../src/core/validate.ts';
import { newId } from '../../src/engine/ids.ts';
import { type Ctx, claimOne, expectState, ids, msg, qname, record, sendOne, T0 } from './helpers.ts';

export function sendTests(ctx: Ctx): void {
  describe('send', () => {
    it('answers the given ids in order and stores every field as given', async () => {
      const { store } = ctx.s;
      const q = qname();
      const a = msg(q, {
        payload: '{"to":"ada"}',
        priority: 3,
        key: 'k',
        dedupeId: 'd',
        maxAttempts: 5,
        backoff: { type: 'fixed', delay: 10, max: 10, jitter: false },
        lease: 2000,
        headers: '{"h":"v"}',
        runAt: T0 + 500,
      });
      const b = msg(q);
      const out = await store.send([a, b], T0);
      assert.deepEqual(out, [
        { id: a.id, deduplicated: false },
        { id: b.id, deduplicated: false },
      ]);
      const ra = await record(store, a.id);
      assert.deepEqual(ra, {
        id: a.id,
        queue: q,
        state: 'queued',
        payload: '{"to":"ada"}',
        result: null,
        error: null,
        attempts: 0,
        maxAttempts: 5,
        priority: 3,
        key: 'k',
        dedupeId: 'd',
        progress: null,
        headers: '{"h":"v"}',
        sentAt: T0,
        runAt: T0 + 500,
        startedAt: null,
        finishedAt: null,
        leaseUntil: null,
        cancelRequested: false,
        parentId: null,
      });
      const rb = await record(store, b.id);
      assert.equal(rb.maxAttempts, DEFAULT_SETTINGS.maxAttempts, "no maxAttempts of its own: the queue's");
      assert.equal(rb.headers, null);
      assert.equal(rb.key, null);
    });

    it('an empty batch inserts nothing and answers nothing', async () => {
      assert.deepEqual(await ctx.s.store.send([], T0), []);
    });

    it("a message without maxAttempts follows the queue's current setting", async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      await store.configure(q, { maxAttempts: 7 });
      assert.equal((await record(store, id)).maxAttempts, 7);
    });

    it('dedupe: a live dedupeId answers the existing id and inserts nothing; other queues are apart', async () => {
      const { store } = ctx.s;
      const q = qname();
      const first = await sendOne(store, q, { dedupeId: 'once' });
      const again = msg(q, { dedupeId: 'once' });
      assert.deepEqual(await store.send([again], T0 + 1), [{ id: first, deduplicated: true }]);
      assert.equal(await store.get(again.id), null, 'the duplicate was not inserted');
      assert.equal((await store.stats(q, T0 + 1))[0]?.waiting, 1);
      const other = qname();
      const elsewhere = msg(other, { dedupeId: 'once' });
      assert.deepEqual(await store.send([elsewhere], T0), [{ id: elsewhere.id, deduplicated: false }]);
      await expectState(store, elsewhere.id, 'queued');
    });

    it('dedupe within one batch: the second of two equal dedupeIds is the first', async () => {
      const { store } = ctx.s;
      const q = qname();
      const a = msg(q, { dedupeId: 'twin' });
      const b = msg(q, { dedupeId: 'twin' });
      assert.deepEqual(await store.send([a, b], T0), [
        { id: a.id, deduplicated: false },
        { id: a.id, deduplicated: true },
      ]);
      assert.equal(await store.get(b.id), null);
    });

    it('dedupe holds after the message finished (completed, dead, cancelled), until it is removed', async () => {
      const { store } = ctx.s;
      const q = qname();
      const done = await sendOne(store, q, { dedupeId: 'done' });
      const c = await claimOne(store, q);
      assert.deepEqual(await store.complete([{ id: done, receipt: c.receipt, result: null }], T0), ['completed']);
      const dead = await sendOne(store, q, { dedupeId: 'dead' });
      const d = await claimOne(store, q);
      assert.deepEqual(
        await store.fail([{ id: dead, receipt: d.receipt, error: '{"message":"x"}', retry: false, delay: null }], T0),
        ['dead'],
      );
      const cancelled = await sendOne(store, q, { dedupeId: 'cancelled' });
      await store.cancel(cancelled, T0);
      for (const [dedupeId, id] of [
        ['done', done],
        ['dead', dead],
        ['cancelled', cancelled],
      ] as const) {
        const again = msg(q, { dedupeId });
        assert.deepEqual(await store.send([again], T0 + 1), [{ id, deduplicated: true }], dedupeId);
        assert.equal(await store.get(again.id), null);
      }
    });

    it('dedupe after purge: the dedupeId is free again', async () => {
      const { store } = ctx.s;
      const q = qname();
      const first = await sendOne(store, q, { dedupeId: 'p' });
      assert.equal(await store.purge(q, ['waiting'], T0), 1);
      assert.equal(await store.get(first), null);
      const again = msg(q, { dedupeId: 'p' });
      assert.deepEqual(await store.send([again], T0), [{ id: again.id, deduplicated: false }]);
      await expectState(store, again.id, 'queued');
    });

    it('a batch is all or none: one bad message (a duplicate id) leaves nothing of the batch', async () => {
      const { store } = ctx.s;
      const q = qname();
      const existing = await sendOne(store, q);
      // Own events reach onEvents once numbered, which on PostgreSQL may follow the send's answer.
      const before = (await ctx.s.waitEvents(q, 1)).length;
      const good = msg(q, { dedupeId: 'good' });
      await assert.rejects(store.send([good, msg(q, { id: existing })], T0));
      assert.equal(await store.get(good.id), null, 'the good message of the failed batch is not there');
      assert.equal((await store.stats(q, T0))[0]?.waiting, 1);
      // The dedupeId of the rolled-back message is free.
      assert.deepEqual(await store.send([msg(q, { id: good.id, dedupeId: 'good' })], T0), [
        { id: good.id, deduplicated: false },
      ]);
      const sent = (await ctx.s.waitEvents(q, before + 1)).slice(before);
      assert.deepEqual(
        sent.map((e) => e.id),
        [good.id],
        'no event of the rolled-back batch',
      );
    });

    it('capabilities say what the store is: shared with other processes, taking a transaction', () => {
      assert.deepEqual(ctx.s.store.capabilities, {
        shared: ctx.home.shared,
        transactionalSend: ctx.home.transactional,
      });
    });

    // Only where the capability is (checked above); elsewhere the engine refuses a transaction before the store.
    if (ctx.home.transactional) {
      it("a send in the caller's transaction exists if and only if that transaction commits", sendInTransaction);
    }

    async function sendInTransaction(): Promise<void> {
      const begin = ctx.db.begin;
      assert.ok(begin, 'a transactional home opens transactions');
      const opened = ctx.s;
      const q = qname();
      const rolledBack = msg(q);
      const tx1 = await begin();
      assert.deepEqual(await opened.store.send([rolledBack], T0, tx1.handle), [
        { id: rolledBack.id, deduplicated: false },
      ]);
      await tx1.rollback();
      assert.equal(await opened.store.get(rolledBack.id), null);

      const committed = msg(q, { dedupeId: 'tx' });
      const tx2 = await begin();
      await opened.store.send([committed], T0, tx2.handle);
      assert.equal(await opened.store.get(committed.id), null, 'not visible before the commit');
      await tx2.commit();
      await expectState(opened.store, committed.id, 'queued');
      const [event] = await opened.waitEvents(q, 1);
      assert.equal(event?.type, 'sent');
      assert.equal(event?.id, committed.id, 'the rolled-back send left no event');
      assert.deepEqual(ids(await opened.store.claim(q, 10, 1000, T0)), [committed.id]);
    }

    it('publish: one copy per subscribed queue, each with its own id; unsubscribe stops the copies', async () => {
      const { store } = ctx.s;
      const topic = qname('t');
      const [a, b] = [qname('a'), qname('b')].sort() as [string, string];
      await store.subscribe(topic, a);
      await store.subscribe(topic, b);
      await store.subscribe(topic, b); // twice is once
      const made: string[] = [];
      const newIdRecorded = () => {
        const id = newId();
        made.push(id);
        return id;
      };
      const { id: _id, queue: _queue, ...message } = msg('unused', { payload: '"fan"' });
      const out = await store.publish(topic, message, newIdRecorded, T0);
      assert.equal(out.length, 2);
      assert.deepEqual(out.map((o) => o.queue).sort(), [a, b]);
      assert.deepEqual(out.map((o) => o.id).sort(), [...made].sort(), 'ids come from newId');
      for (const o of out) {
        const r = await expectState(store, o.id, 'queued');
        assert.equal(r.queue, o.queue);
        assert.equal(r.payload, '"fan"');
      }
      await store.unsubscribe(topic, b);
      const after = await store.publish(topic, message, newId, T0);
      assert.deepEqual(
        after.map((o) => o.queue),
        [a],
      );
      assert.equal((await store.stats(b, T0))[0]?.waiting, 1, 'b got only the first copy');
      assert.deepEqual(await store.publish(qname('nobody'), message, newId, T0), []);
    });
  });
}
