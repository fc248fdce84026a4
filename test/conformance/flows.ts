/** Conformance: flows (SPEC §6): parents pending on their children, failure policies, cascades, limits. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConflictError, InvalidRequestError, NotFoundError } from '../../src/core/errors.ts';
import type { FlowNode, FlowSent } from '../../src/core/types.ts';
import {
  type Ctx,
  EventReader,
  expectAllRefused,
  expectError,
  mustGet,
  prime,
  qname,
  receiveOne,
  waitFor,
} from './helpers.ts';

const child = (sent: FlowSent, i: number): FlowSent => {
  const c = sent.children?.[i];
  assert.ok(c, `child ${i} answered`);
  return c;
};

export function flowTests(ctx: Ctx): void {
  describe('flows', () => {
    it('a parent is pending until every child completes, then waiting; its handler reads their results', async () => {
      const [p, a, b] = [qname('parent'), qname('a'), qname('b')];
      const sent = await ctx.ferry.sendFlow({
        queue: p,
        payload: 'parent',
        children: [
          { queue: a, payload: 1 },
          { queue: b, payload: 2 },
        ],
      });
      assert.equal(sent.queue, p);
      assert.equal(sent.deduplicated, false);
      assert.equal(sent.children?.length, 2);
      assert.deepEqual(
        sent.children?.map((c) => [c.queue, c.deduplicated, 'children' in c]),
        [
          [a, false, false],
          [b, false, false],
        ],
      );
      const parent = await mustGet(ctx.ferry, sent.id);
      assert.equal(parent.state, 'pending');
      assert.equal(parent.parentId, null);
      assert.equal((await mustGet(ctx.ferry, child(sent, 0).id)).parentId, sent.id);
      assert.equal((await ctx.ferry.stats(p)).pending, 1);
      assert.deepEqual(
        (await ctx.ferry.list(p, { state: 'pending' })).messages.map((m) => m.id),
        [sent.id],
      );
      assert.deepEqual(await ctx.ferry.receive(p), [], 'a pending parent is never delivered');

      const da = await receiveOne(ctx.ferry, a);
      await ctx.ferry.ack(da, { from: 'a' });
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'pending', 'one child left');
      await ctx.ferry.ack(await receiveOne(ctx.ferry, b), { from: 'b' });
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'waiting');
      assert.equal((await ctx.ferry.stats(p)).pending, 0);

      const seen: unknown[] = [];
      const worker = ctx.ferry.work(p, async (job) => {
        const children = await job.children();
        seen.push(...children.map((c) => [c.queue, c.state, c.result, c.parentId]));
        return 'done';
      });
      try {
        assert.equal(await ctx.ferry.result(sent.id, { timeout: '5s' }), 'done');
      } finally {
        await worker.close();
      }
      assert.deepEqual(seen, [
        [a, 'completed', { from: 'a' }, sent.id],
        [b, 'completed', { from: 'b' }, sent.id],
      ]);
      const listed = await ctx.ferry.children(sent.id);
      assert.deepEqual(
        listed.map((c) => c.id),
        [child(sent, 0).id, child(sent, 1).id],
      );
    });

    it('nested, cross-queue trees finish from the leaves up', async () => {
      const [root, mid, leaf] = [qname('root'), qname('mid'), qname('leaf')];
      const sent = await ctx.ferry.sendFlow({
        queue: root,
        payload: 'root',
        children: [
          {
            queue: mid,
            payload: 'm1',
            children: [
              { queue: leaf, payload: 'l1' },
              { queue: leaf, payload: 'l2' },
            ],
          },
          { queue: leaf, payload: 'l3' },
        ],
      });
      const m1 = child(sent, 0);
      assert.equal(m1.children?.length, 2);
      assert.equal((await mustGet(ctx.ferry, m1.id)).state, 'pending');
      assert.deepEqual(await ctx.ferry.receive(mid), []);
      for (let i = 0; i < 3; i++) await ctx.ferry.ack(await receiveOne(ctx.ferry, leaf), i);
      assert.equal((await mustGet(ctx.ferry, m1.id)).state, 'waiting');
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'pending');
      await ctx.ferry.ack(await receiveOne(ctx.ferry, mid), 'mid done');
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'waiting');
      const d = await receiveOne(ctx.ferry, root);
      assert.equal(d.payload, 'root');
      const children = await ctx.ferry.children(sent.id);
      assert.deepEqual(
        children.map((c) => [c.queue, c.result]),
        [
          [mid, 'mid done'],
          [leaf, 2],
        ],
      );
    });

    it('a child that ends dead makes its parent dead with ChildFailedError and cancels its siblings', async () => {
      const [p, c] = [qname('parent'), qname('child')];
      const sent = await ctx.ferry.sendFlow({
        queue: p,
        payload: null,
        children: [
          { queue: c, payload: 'fails', options: { maxAttempts: 1 } },
          { queue: c, payload: 'runs' },
          { queue: c, payload: 'waits' },
        ],
      });
      const [failing, running] = await ctx.ferry.receive(c, { max: 2 });
      assert.ok(failing && running);
      assert.equal(failing.payload, 'fails');
      assert.equal((await ctx.ferry.nack(failing, { error: 'boom' })).state, 'dead');
      const parent = await mustGet(ctx.ferry, sent.id);
      assert.equal(parent.state, 'dead');
      assert.deepEqual(parent.error?.name, 'ChildFailedError');
      assert.deepEqual(parent.error?.data, { id: failing.id, queue: c, state: 'dead' });
      assert.equal(typeof parent.error?.message, 'string');
      assert.equal((await mustGet(ctx.ferry, child(sent, 2).id)).state, 'cancelled', 'waiting sibling cancelled');
      // The active sibling was flagged: it ends cancelled however its attempt ends.
      await ctx.ferry.ack(running, 'late');
      assert.equal((await mustGet(ctx.ferry, running.id)).state, 'cancelled');
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'dead', 'the parent stays dead');
      await expectError(() => ctx.ferry.result(sent.id, { timeout: '1s' }), Error, 'result() of a dead parent');
    });

    it('a cancelled child fails its parent; the failure climbs to the root', async () => {
      const [root, mid, leaf] = [qname('root'), qname('mid'), qname('leaf')];
      const sent = await ctx.ferry.sendFlow({
        queue: root,
        payload: null,
        children: [
          { queue: mid, payload: null, children: [{ queue: leaf, payload: 'x' }] },
          { queue: leaf, payload: 'y' },
        ],
      });
      const x = child(child(sent, 0), 0);
      await ctx.ferry.cancel(x.id);
      const m = await mustGet(ctx.ferry, child(sent, 0).id);
      assert.equal(m.state, 'dead');
      assert.deepEqual(m.error?.data, { id: x.id, queue: leaf, state: 'cancelled' });
      const r = await mustGet(ctx.ferry, sent.id);
      assert.equal(r.state, 'dead');
      assert.deepEqual(r.error?.data, { id: m.id, queue: mid, state: 'dead' });
      assert.equal((await mustGet(ctx.ferry, child(sent, 1).id)).state, 'cancelled');
    });

    it("with children: 'ignore-failures' the parent waits for every child whatever its end", async () => {
      const [p, c] = [qname('parent'), qname('child')];
      const sent = await ctx.ferry.sendFlow({
        queue: p,
        payload: null,
        options: { children: 'ignore-failures' },
        children: [
          { queue: c, payload: 'dies' },
          { queue: c, payload: 'cancelled' },
          { queue: c, payload: 'ok' },
        ],
      });
      const d = await receiveOne(ctx.ferry, c);
      await ctx.ferry.nack(d, { retry: false, error: { message: 'no', name: 'Nope' } });
      await ctx.ferry.cancel(child(sent, 1).id);
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'pending');
      await ctx.ferry.ack(await receiveOne(ctx.ferry, c), 'fine');
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'waiting');
      const children = await ctx.ferry.children(sent.id);
      assert.deepEqual(
        children.map((x) => [x.state, x.result, x.error?.name ?? null]),
        [
          ['dead', null, 'Nope'],
          ['cancelled', null, null],
          ['completed', 'fine', null],
        ],
      );
    });

    it('cancelling a parent cancels its unfinished descendants; an active one ends cancelled', async () => {
      const [p, c, g] = [qname('parent'), qname('child'), qname('grand')];
      const sent = await ctx.ferry.sendFlow({
        queue: p,
        payload: null,
        children: [
          { queue: c, payload: 'done' },
          { queue: c, payload: 'active' },
          { queue: c, payload: 'nested', children: [{ queue: g, payload: 'g' }] },
        ],
      });
      await ctx.ferry.ack(await receiveOne(ctx.ferry, c), 'finished first');
      const active = await receiveOne(ctx.ferry, c);
      assert.equal(active.payload, 'active');
      assert.equal((await ctx.ferry.cancel(sent.id)).state, 'cancelled');
      assert.equal((await mustGet(ctx.ferry, child(sent, 0).id)).state, 'completed', 'finished children stay');
      assert.equal((await mustGet(ctx.ferry, child(sent, 2).id)).state, 'cancelled');
      assert.equal((await mustGet(ctx.ferry, child(child(sent, 2), 0).id)).state, 'cancelled');
      // The child finishing while its parent is cancelled: it ends cancelled, and the parent stays as it is.
      await ctx.ferry.ack(active, 'too late');
      assert.equal((await mustGet(ctx.ferry, active.id)).state, 'cancelled');
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'cancelled');
      assert.deepEqual(await ctx.ferry.receive(g), []);
    });

    it('a parent emits sent, then waiting when its last child finishes', async () => {
      const [p, c] = [qname('parent'), qname('child')];
      const reader = new EventReader(ctx.ferry.events({ queue: p }));
      try {
        await prime(ctx.ferry, p, reader);
        const sent = await ctx.ferry.sendFlow({ queue: p, payload: null, children: [{ queue: c, payload: 1 }] });
        await ctx.ferry.ack(await receiveOne(ctx.ferry, c), null);
        const sentEvent = await reader.until((e) => e.id === sent.id);
        assert.equal(sentEvent.type, 'sent');
        const waiting = await reader.until((e) => e.id === sent.id);
        assert.equal(waiting.type, 'waiting');
        assert.ok(waiting.seq > sentEvent.seq);
      } finally {
        reader.close();
      }
    });

    it('retrying a dead parent makes it waiting; a revived child of a pending parent is waited for again', async () => {
      const [p, c] = [qname('parent'), qname('child')];
      const failed = await ctx.ferry.sendFlow({ queue: p, payload: 'p', children: [{ queue: c, payload: 'c' }] });
      await expectError(() => ctx.ferry.retry(failed.id), ConflictError, 'retry of a pending parent');
      await ctx.ferry.nack(await receiveOne(ctx.ferry, c), { retry: false });
      assert.equal((await mustGet(ctx.ferry, failed.id)).state, 'dead');
      assert.equal((await ctx.ferry.retry(failed.id)).state, 'waiting');
      assert.equal((await receiveOne(ctx.ferry, p)).id, failed.id);

      const q = qname('child');
      const waits = await ctx.ferry.sendFlow({
        queue: p,
        payload: 'p2',
        options: { children: 'ignore-failures' },
        children: [
          { queue: q, payload: 'first' },
          { queue: q, payload: 'second' },
        ],
      });
      await ctx.ferry.nack(await receiveOne(ctx.ferry, q), { retry: false });
      assert.equal((await ctx.ferry.retry(child(waits, 0).id)).state, 'waiting');
      await ctx.ferry.ack(await receiveOne(ctx.ferry, q), 'second');
      assert.equal((await mustGet(ctx.ferry, waits.id)).state, 'pending', 'the revived child is waited for');
      await ctx.ferry.ack(await receiveOne(ctx.ferry, q), 'first again');
      assert.equal((await mustGet(ctx.ferry, waits.id)).state, 'waiting');
    });

    it('dedupe inside a flow: a deduplicated node inserts nothing under it and is not waited for', async () => {
      const [p, c] = [qname('parent'), qname('child')];
      const existing = await ctx.ferry.send(c, 'already there', { dedupeId: 'one' });
      const sent = await ctx.ferry.sendFlow({
        queue: p,
        payload: null,
        children: [
          { queue: c, payload: 'dup', options: { dedupeId: 'one' }, children: [{ queue: c, payload: 'never' }] },
          { queue: c, payload: 'new', options: { dedupeId: 'two' } },
          { queue: c, payload: 'again', options: { dedupeId: 'two' } },
        ],
      });
      assert.deepEqual(
        sent.children?.map((x) => [x.deduplicated, 'children' in x]),
        [
          [true, false],
          [false, false],
          [true, false],
        ],
      );
      assert.equal(child(sent, 0).id, existing.id);
      assert.equal(child(sent, 2).id, child(sent, 1).id);
      assert.equal((await mustGet(ctx.ferry, existing.id)).parentId, null, 'the existing message is not adopted');
      assert.equal((await ctx.ferry.stats(c)).waiting, 2, 'nothing under the deduplicated node');
      assert.deepEqual(
        (await ctx.ferry.children(sent.id)).map((x) => x.id),
        [child(sent, 1).id],
      );
      const d = await ctx.ferry.receive(c, { max: 2 });
      await ctx.ferry.ack(d.find((x) => x.id === child(sent, 1).id) as never, null);
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'waiting');

      const all = await ctx.ferry.sendFlow({
        queue: p,
        payload: null,
        children: [{ queue: c, payload: 'dup', options: { dedupeId: 'one' } }],
      });
      assert.equal((await mustGet(ctx.ferry, all.id)).state, 'waiting', 'every child deduplicated: waiting at once');
      const root = await ctx.ferry.sendFlow({
        queue: c,
        payload: 'dup root',
        options: { dedupeId: 'one' },
        children: [{ queue: p, payload: 'never' }],
      });
      assert.deepEqual(root, { id: existing.id, queue: c, deduplicated: true });
    });

    it('invalid trees are refused whole, naming the node, with nothing inserted', async () => {
      const [p, c] = [qname('parent'), qname('child')];
      const deep = (n: number): FlowNode =>
        n === 1 ? { queue: c, payload: n } : { queue: c, payload: n, children: [deep(n - 1)] };
      const cases: [string, () => unknown][] = [
        ['not an object', () => ctx.ferry.sendFlow(null as never)],
        ['bad root queue', () => ctx.ferry.sendFlow({ queue: 'no spaces allowed', payload: 1 })],
        [
          'bad nested queue',
          () =>
            ctx.ferry.sendFlow({
              queue: p,
              payload: 1,
              children: [{ queue: c, payload: 2, children: [{ queue: '', payload: 3 }] }],
            }),
        ],
        [
          'bad child option',
          () => ctx.ferry.sendFlow({ queue: p, children: [{ queue: c, options: { priority: 1.5 } }] }),
        ],
        ['unknown node field', () => ctx.ferry.sendFlow({ queue: p, children: [{ queue: c, extra: 1 } as never] })],
        [
          'unknown option',
          () => ctx.ferry.sendFlow({ queue: p, options: { nope: 1 } as never, children: [{ queue: c }] }),
        ],
        ['children not an array', () => ctx.ferry.sendFlow({ queue: p, children: { queue: c } as never })],
        [
          'bad policy',
          () => ctx.ferry.sendFlow({ queue: p, options: { children: 'sometimes' as never }, children: [{ queue: c }] }),
        ],
        ['policy on a leaf', () => ctx.ferry.sendFlow({ queue: p, options: { children: 'ignore-failures' } })],
        ['key on a parent', () => ctx.ferry.sendFlow({ queue: p, options: { key: 'k' }, children: [{ queue: c }] })],
        ['too deep', () => ctx.ferry.sendFlow({ queue: p, children: [deep(32)] })],
        [
          'too many',
          () => ctx.ferry.sendFlow({ queue: p, children: Array.from({ length: 10_000 }, () => ({ queue: c })) }),
        ],
      ];
      await expectAllRefused(cases, InvalidRequestError);
      const error = await expectError(
        () => ctx.ferry.sendFlow({ queue: p, children: [{ queue: c }, { queue: c, options: { delay: 'soon' } }] }),
        InvalidRequestError,
      );
      assert.match(error.message, /children\[1\]/);
      assert.deepEqual(await ctx.ferry.list(p), { messages: [], cursor: null });
      assert.deepEqual(await ctx.ferry.list(c), { messages: [], cursor: null });
      // 31 levels under the root is the deepest allowed.
      const deepest = await ctx.ferry.sendFlow({ queue: p, children: [deep(31)] });
      assert.ok(deepest.id);
    });

    it('children() of an unknown message is NotFoundError; of a plain message, empty', async () => {
      await expectError(() => ctx.ferry.children('0190a0b0-0000-7000-8000-000000000000'), NotFoundError);
      const plain = await ctx.ferry.send(qname(), 'alone');
      assert.deepEqual(await ctx.ferry.children(plain.id), []);
      assert.equal((await mustGet(ctx.ferry, plain.id)).parentId, null);
    });

    it('purging an unfinished child counts as its cancel for the parent', async () => {
      const [p, c] = [qname('parent'), qname('child')];
      const sent = await ctx.ferry.sendFlow({
        queue: p,
        options: { children: 'ignore-failures' },
        children: [{ queue: c, payload: 1 }],
      });
      assert.equal((await ctx.ferry.purge(c)).purged, 1);
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'waiting');
    });

    it('a flow of 1,000 children runs end to end', async () => {
      const [p, c] = [qname('parent'), qname('child')];
      const started = Date.now();
      const sent = await ctx.ferry.sendFlow({
        queue: p,
        payload: 'sum',
        children: Array.from({ length: 1000 }, (_, i) => ({ queue: c, payload: i })),
      });
      assert.equal(sent.children?.length, 1000);
      const workers = [
        ctx.ferry.work(c, (job) => (job.payload as number) * 2, { concurrency: 20 }),
        ctx.ferry.work(p, async (job) => {
          const children = await job.children();
          return children.reduce((sum, x) => sum + (x.result as number), 0);
        }),
      ];
      try {
        assert.equal(await ctx.ferry.result(sent.id, { timeout: '120s' }), 999 * 1000);
      } finally {
        await Promise.all(workers.map((w) => w.close()));
      }
      console.log(`# flow of 1,000 children end to end: ${((Date.now() - started) / 1000).toFixed(2)} s`);
      await waitFor(async () => (await ctx.ferry.stats(c)).completed === 1000, 'every child completed');
    });
  });
}
