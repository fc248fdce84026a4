/** Conformance: send, sendBatch, get, ids, queue names, option checks, payload limits and odd payloads. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError, PayloadTooLargeError } from '../../src/core/errors.ts';
import type { FlowNode, SendOptions } from '../../src/core/types.ts';
import { type Ctx, expectAllRefused, expectError, isoMs, mustGet, nested, qname } from './helpers.ts';

const MIB = 1024 * 1024;

export function sendTests(ctx: Ctx): void {
  describe('send and get', () => {
    it('concurrent sends each answer on their own: distinct ids, their own options, a bad one refused alone', async () => {
      const [qa, qb] = [qname(), qname()];
      const settled = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) =>
          i === 31
            ? ctx.ferry.send(qa, { i }, { maxAttempts: 0 })
            : ctx.ferry.send(
                i % 2 ? qa : qb,
                { i },
                { priority: i % 4, ...(i % 10 === 0 ? { dedupeId: 'same' } : {}) },
              ),
        ),
      );
      const refused = settled.flatMap((s, i) => (s.status === 'rejected' ? [{ i, error: s.reason }] : []));
      assert.deepEqual(
        refused.map((r) => r.i),
        [31],
      );
      assert.ok(refused[0]?.error instanceof InvalidRequestError, String(refused[0]?.error));
      const byIndex = settled.map((s) => (s.status === 'fulfilled' ? s.value : null));
      // i % 10 === 0 all go to qb with one dedupe id: one message, the others deduplicated onto it.
      const deduped = byIndex.filter((s, i) => i % 10 === 0 && s !== null);
      assert.equal(new Set(deduped.map((s) => s?.id)).size, 1);
      assert.equal(deduped.filter((s) => s?.deduplicated === false).length, 1);
      const distinct = byIndex.filter((s, i) => i % 10 !== 0 && s !== null);
      assert.equal(new Set(distinct.map((s) => s?.id)).size, 53);
      for (const [i, s] of byIndex.entries()) {
        if (s === null || i % 10 === 0) continue;
        const info = await mustGet(ctx.ferry, s.id);
        assert.deepEqual(
          [s.queue, info.queue, info.payload, info.priority],
          [i % 2 ? qa : qb, i % 2 ? qa : qb, { i }, i % 4],
        );
      }
    });

    it('send answers { id, queue, deduplicated: false } and get answers the full message info', async () => {
      const q = qname();
      const before = Date.now();
      const sent = await ctx.ferry.send(q, { hello: 'world', n: 1 });
      const after = Date.now();
      assert.equal(typeof sent.id, 'string');
      assert.ok(sent.id.length > 0);
      assert.equal(sent.queue, q);
      assert.equal(sent.deduplicated, false);
      const info = await mustGet(ctx.ferry, sent.id);
      for (const field of [
        'id',
        'queue',
        'state',
        'payload',
        'result',
        'error',
        'attempts',
        'maxAttempts',
        'priority',
        'key',
        'dedupeId',
        'progress',
        'headers',
        'sentAt',
        'runAt',
        'startedAt',
        'finishedAt',
      ]) {
        assert.ok(field in info, `message info should have ${field}`);
      }
      assert.equal(info.id, sent.id);
      assert.equal(info.queue, q);
      assert.equal(info.state, 'waiting');
      assert.deepEqual(info.payload, { hello: 'world', n: 1 });
      assert.equal(info.result, null);
      assert.equal(info.error, null);
      assert.equal(info.attempts, 0);
      assert.equal(info.maxAttempts, 3);
      assert.equal(info.priority, 0);
      assert.equal(info.key, null);
      assert.equal(info.dedupeId, null);
      assert.equal(info.progress, null);
      assert.deepEqual(info.headers, {});
      const sentAt = isoMs(info.sentAt, 'sentAt');
      assert.ok(sentAt >= before - 1000 && sentAt <= after + 1000, `sentAt ${info.sentAt} should be now`);
      const runAt = isoMs(info.runAt, 'runAt');
      assert.ok(Math.abs(runAt - sentAt) < 50, 'runAt of an undelayed message is its sentAt');
      assert.equal(info.startedAt, null);
      assert.equal(info.finishedAt, null);
    });

    it('send options show in the message info', async () => {
      const q = qname();
      const sent = await ctx.ferry.send(q, [1, 2, 3], {
        priority: 7,
        key: 'user-42',
        dedupeId: 'welcome-42',
        maxAttempts: 5,
        lease: '1m',
        headers: { traceparent: '00-abc-def-01', 'x-tenant': 'ünï' },
      });
      const info = await mustGet(ctx.ferry, sent.id);
      assert.deepEqual(info.payload, [1, 2, 3]);
      assert.equal(info.priority, 7);
      assert.equal(info.key, 'user-42');
      assert.equal(info.dedupeId, 'welcome-42');
      assert.equal(info.maxAttempts, 5);
      assert.deepEqual(info.headers, { traceparent: '00-abc-def-01', 'x-tenant': 'ünï' });
    });

    it('get of an unknown id answers null', async () => {
      assert.equal(await ctx.ferry.get('0190b6d2-0000-7000-8000-000000000000'), null);
      assert.equal(await ctx.ferry.get('no-such-message'), null);
    });

    it('ids are unique and sort in creation order', async () => {
      const q = qname();
      const ids: string[] = [];
      for (let i = 0; i < 60; i++) ids.push((await ctx.ferry.send(q, i)).id);
      assert.equal(new Set(ids).size, ids.length, 'ids are unique');
      assert.deepEqual([...ids].sort(), ids, 'sorting ids gives the send order');
      const batch = await ctx.ferry.sendBatch(
        q,
        Array.from({ length: 40 }, (_, i) => ({ payload: i })),
      );
      const batchIds = batch.map((s) => s.id);
      assert.equal(new Set([...ids, ...batchIds]).size, 100);
      assert.deepEqual([...batchIds].sort(), batchIds, 'batch ids sort in batch order');
      assert.ok((batchIds[0] as string) > (ids[59] as string), 'later sends sort after earlier ones');
    });

    it('sendBatch stores every message, in order, with their own options', async () => {
      const q = qname();
      const sents = await ctx.ferry.sendBatch(q, [
        { payload: 'a' },
        { payload: { b: true }, priority: 3, key: 'k' },
        { payload: null, delay: '1h' },
      ]);
      assert.equal(sents.length, 3);
      assert.deepEqual(
        sents.map((s) => [s.queue, s.deduplicated]),
        [
          [q, false],
          [q, false],
          [q, false],
        ],
      );
      const infos = await Promise.all(sents.map((s) => mustGet(ctx.ferry, s.id)));
      assert.deepEqual(
        infos.map((i) => [i.payload, i.priority, i.key, i.state]),
        [
          ['a', 0, null, 'waiting'],
          [{ b: true }, 3, 'k', 'waiting'],
          [null, 0, null, 'delayed'],
        ],
      );
    });

    it('sendBatch is all or nothing: one invalid item stores nothing', async () => {
      const q = qname();
      await expectError(
        () => ctx.ferry.sendBatch(q, [{ payload: 1 }, { payload: 2, priority: 1.5 }, { payload: 3 }]),
        InvalidRequestError,
        'bad priority in batch',
      );
      await expectError(
        () => ctx.ferry.sendBatch(q, [{ payload: 1 }, { payload: 'x'.repeat(MIB) }]),
        PayloadTooLargeError,
        'oversized payload in batch',
      );
      await expectError(
        () => ctx.ferry.sendBatch(q, [{ payload: 1 }, { payload: 2, colour: 'red' } as never]),
        InvalidRequestError,
        'unknown field in batch',
      );
      await expectError(() => ctx.ferry.sendBatch(q, 'nope' as never), InvalidRequestError, 'batch not an array');
      const stats = await ctx.ferry.stats(q);
      assert.equal(stats.waiting + stats.delayed, 0, 'nothing stored');
      assert.equal((await ctx.ferry.list(q)).messages.length, 0);
    });
  });

  describe('queue names', () => {
    it('accepts every name the pattern allows', async () => {
      const suffix = qname('').slice(1);
      const good = [
        `a${suffix}`,
        `0${suffix}`,
        `Z.b_c:d-e${suffix}`,
        `${suffix}${'x'.repeat(128 - suffix.length)}`,
        `q${suffix}...`,
        `9:${suffix}::--__`,
      ];
      for (const name of good) {
        assert.ok(name.length <= 128, name);
        const sent = await ctx.ferry.send(name, name);
        assert.equal((await mustGet(ctx.ferry, sent.id)).queue, name);
        assert.equal((await ctx.ferry.stats(name)).waiting, 1, `stats of ${name}`);
      }
    });

    it('refuses hostile names with InvalidRequestError', async () => {
      const bad = [
        '',
        '-a',
        '.a',
        '_a',
        ':a',
        'a b',
        'a/b',
        '../etc/passwd',
        'a\\b',
        'x'.repeat(129),
        'é',
        'qé',
        'a\n',
        'a\u0000b',
        "a';DROP TABLE messages;--",
        'a%2Fb',
        'a?b=c',
        'a#b',
        '😀',
        ' a',
      ];
      await expectAllRefused(
        [
          ...bad.flatMap((name): [string, () => unknown][] => [
            [`send to ${JSON.stringify(name)}`, () => ctx.ferry.send(name, 1)],
            [`receive ${JSON.stringify(name)}`, () => ctx.ferry.receive(name)],
            [`stats ${JSON.stringify(name)}`, () => ctx.ferry.stats(name)],
            [`configure ${JSON.stringify(name)}`, () => ctx.ferry.configure(name)],
            [`list ${JSON.stringify(name)}`, () => ctx.ferry.list(name)],
          ]),
          ['numeric name', () => ctx.ferry.send(42 as never, 1)],
        ],
        InvalidRequestError,
      );
      const names = (await ctx.ferry.queues()).map((s) => s.name);
      for (const name of names) assert.match(name, /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/);
    });
  });

  describe('option checks', () => {
    const badSends: [string, SendOptions][] = [
      ['negative delay', { delay: -1 }],
      ['fractional delay', { delay: 1.5 }],
      ['delay in words', { delay: '5 minutes' }],
      ['delay unit unknown', { delay: '5y' }],
      ['delay not a duration', { delay: 'abc' }],
      ['delay and runAt', { delay: '1s', runAt: Date.now() }],
      ['runAt garbage', { runAt: 'not a date' }],
      ['runAt NaN', { runAt: Number.NaN }],
      ['fractional priority', { priority: 1.5 }],
      ['string priority', { priority: '1' as never }],
      ['huge priority', { priority: 2 ** 40 }],
      ['NaN priority', { priority: Number.NaN }],
      ['lease 99ms', { lease: 99 }],
      ['lease 50ms string', { lease: '50ms' }],
      ['lease 0', { lease: 0 }],
      ['lease 13h', { lease: '13h' }],
      ['lease 12h + 1ms', { lease: 12 * 3_600_000 + 1 }],
      ['maxAttempts 0', { maxAttempts: 0 }],
      ['maxAttempts -1', { maxAttempts: -1 }],
      ['maxAttempts 1.5', { maxAttempts: 1.5 }],
      ['backoff type unknown', { backoff: { type: 'linear' as never } }],
      ['backoff negative delay', { backoff: { type: 'fixed', delay: -5 } }],
      ['backoff unknown field', { backoff: { type: 'fixed', delay: '1s', bogus: 1 } as never }],
      ['backoff max below delay', { backoff: { type: 'exponential', delay: '10s', max: '1s' } }],
      ['empty key', { key: '' }],
      ['numeric key', { key: 5 as never }],
      ['empty dedupeId', { dedupeId: '' }],
      ['non-string header', { headers: { a: 1 } as never }],
      ['headers not an object', { headers: 'x' as never }],
      ['unknown option', { colour: 'red' } as never],
      ['options not an object', 'fast' as never],
    ];

    it('refuses every bad send option with InvalidRequestError and stores nothing', async () => {
      const q = qname();
      await expectAllRefused(
        badSends.map(([what, options]) => [what, () => ctx.ferry.send(q, { what }, options)]),
        InvalidRequestError,
      );
      const stats = await ctx.ferry.stats(q);
      assert.equal(stats.waiting + stats.delayed + stats.active, 0, 'nothing stored');
    });

    it('accepts the lease bounds exactly: 100ms and 12h', async () => {
      const q = qname();
      const a = await ctx.ferry.send(q, 'a', { lease: 100 });
      const b = await ctx.ferry.send(q, 'b', { lease: '12h' });
      const c = await ctx.ferry.send(q, 'c', { lease: '100ms', delay: 0, priority: -5 });
      for (const s of [a, b, c]) assert.ok(await ctx.ferry.get(s.id));
    });

    it('refuses bad receive, nack, extend and configure options', async () => {
      const q = qname();
      const bad: [string, () => Promise<unknown>][] = [
        ['receive max 0', () => ctx.ferry.receive(q, { max: 0 })],
        ['receive max 1001', () => ctx.ferry.receive(q, { max: 1001 })],
        ['receive max 1.5', () => ctx.ferry.receive(q, { max: 1.5 })],
        ['receive wait -1', () => ctx.ferry.receive(q, { wait: -1 })],
        ['receive wait words', () => ctx.ferry.receive(q, { wait: 'soon' })],
        ['receive lease 99', () => ctx.ferry.receive(q, { lease: 99 })],
        ['receive lease 13h', () => ctx.ferry.receive(q, { lease: '13h' })],
        ['receive unknown field', () => ctx.ferry.receive(q, { colour: 'red' } as never)],
        ['receive options not an object', () => ctx.ferry.receive(q, 'all' as never)],
        ['configure maxAttempts 0', () => ctx.ferry.configure(q, { maxAttempts: 0 })],
        ['configure lease 50', () => ctx.ferry.configure(q, { lease: 50 })],
        ['configure backoff', () => ctx.ferry.configure(q, { backoff: { type: 'nope' as never } })],
        ['configure unknown', () => ctx.ferry.configure(q, { colour: 'red' } as never)],
        ['list state', () => ctx.ferry.list(q, { state: 'lost' as never })],
        ['list limit 0', () => ctx.ferry.list(q, { limit: 0 })],
        ['list limit 1001', () => ctx.ferry.list(q, { limit: 1001 })],
        ['purge state', () => ctx.ferry.purge(q, { state: 'everything' as never })],
      ];
      await expectAllRefused(bad, InvalidRequestError);

      await ctx.ferry.send(q, 'x');
      const [d] = await ctx.ferry.receive(q, { lease: '10s' });
      assert.ok(d);
      await expectAllRefused(
        [
          ['extend 99ms', () => ctx.ferry.extend(d, 99)],
          ['extend 13h', () => ctx.ferry.extend(d, '13h')],
          ['nack delay -1', () => ctx.ferry.nack(d, { delay: -1 })],
          ['nack retry not a boolean', () => ctx.ferry.nack(d, { retry: 'no' as never })],
          ['nack error a number', () => ctx.ferry.nack(d, { error: 42 as never })],
          ['nack unknown field', () => ctx.ferry.nack(d, { colour: 1 } as never)],
          ['progress BigInt', () => ctx.ferry.progress(d, 1n)],
          ['ack BigInt result', () => ctx.ferry.ack(d, { n: 1n })],
        ],
        InvalidRequestError,
      );
      const info = await mustGet(ctx.ferry, d.id);
      assert.equal(info.state, 'active', 'refused calls changed nothing');
      assert.equal(info.attempts, 1);
      await ctx.ferry.ack(d, 'fine');
      assert.equal((await mustGet(ctx.ferry, d.id)).state, 'completed');
    });
  });

  describe('payloads', () => {
    it('accepts a payload of exactly 1 MiB as JSON and refuses one byte more', async () => {
      const q = qname();
      // JSON of a string of n ASCII characters is n + 2 bytes.
      const exact = 'x'.repeat(MIB - 2);
      const sent = await ctx.ferry.send(q, exact);
      assert.equal((await mustGet(ctx.ferry, sent.id)).payload, exact);
      await expectError(() => ctx.ferry.send(q, 'x'.repeat(MIB - 1)), PayloadTooLargeError, '1 MiB + 1');
      assert.equal((await ctx.ferry.stats(q)).waiting, 1, 'the refused payload was not stored');
    });

    it('measures the limit in UTF-8 bytes, not characters', async () => {
      const q = qname();
      // 'é' is 2 bytes in UTF-8: 524287 of them plus the quotes make exactly 1 MiB.
      const exact = 'é'.repeat(MIB / 2 - 1);
      const sent = await ctx.ferry.send(q, exact);
      assert.equal((await mustGet(ctx.ferry, sent.id)).payload, exact);
      await expectError(() => ctx.ferry.send(q, `${exact}x`), PayloadTooLargeError, 'UTF-8 1 MiB + 1');
      // '😀' is 4 bytes in UTF-8 and 2 UTF-16 units.
      await expectError(
        () => ctx.ferry.send(q, '😀'.repeat(MIB / 4)),
        PayloadTooLargeError,
        'emoji over the limit in bytes',
      );
      assert.equal((await ctx.ferry.stats(q)).waiting, 1);
    });

    it('round-trips unicode: emoji, astral planes, RTL, combining marks, NUL', async () => {
      const q = qname();
      const payload = {
        emoji: '😀🎉👩‍👩‍👧‍👦🏳️‍🌈',
        astral: '𝄞 𠜎 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
        rtl: 'مرحبا بالعالم שלום עולם',
        mixed: 'abc\u202Edef\u200F',
        combining: 'e\u0301 n\u0303',
        controls: 'tab\tnl\ncr\rnul\u0000end',
        quotes: `'"\\\`$\${x}`,
        '🔑 ключ': '値',
      };
      const sent = await ctx.ferry.send(q, payload, { key: '🔑-ключ', headers: { note: 'שלום 😀' } });
      const info = await mustGet(ctx.ferry, sent.id);
      assert.deepEqual(info.payload, payload);
      assert.equal(info.key, '🔑-ключ');
      assert.deepEqual(info.headers, { note: 'שלום 😀' });
      const [d] = await ctx.ferry.receive(q);
      assert.deepEqual(d?.payload, payload);
    });

    it('round-trips null and other bare JSON values', async () => {
      const q = qname();
      const values = [null, 0, -1.5, false, true, '', 'text', [], {}, 1e21, [null, [null]]];
      for (const value of values) {
        const sent = await ctx.ferry.send(q, value);
        assert.deepEqual((await mustGet(ctx.ferry, sent.id)).payload, value, JSON.stringify(value));
      }
    });

    it('round-trips 500 levels of nesting and large arrays', async () => {
      const q = qname();
      const deep = nested(500);
      const big = Array.from({ length: 100_000 }, (_, i) => i);
      const objects = Array.from({ length: 5000 }, (_, i) => ({ i, s: `s${i}` }));
      const a = await ctx.ferry.send(q, deep);
      const b = await ctx.ferry.send(q, big);
      const c = await ctx.ferry.send(q, objects);
      assert.deepEqual((await mustGet(ctx.ferry, a.id)).payload, deep);
      assert.deepEqual((await mustGet(ctx.ferry, b.id)).payload, big);
      assert.deepEqual((await mustGet(ctx.ferry, c.id)).payload, objects);
    });

    it('refuses a payload or result nested deeper than 1000 levels, alike everywhere', async () => {
      const q = qname();
      await expectError(() => ctx.ferry.send(q, nested(1001)), InvalidRequestError, 'payload 1001 deep');
      await expectError(
        () => ctx.ferry.sendBatch(q, [{ payload: 1 }, { payload: nested(1001) }]),
        InvalidRequestError,
        'a batch with a payload 1001 deep',
      );
      assert.equal((await ctx.ferry.stats(q)).waiting, 0, 'nothing of a refused batch is stored');
      const sent = await ctx.ferry.send(q, nested(1000));
      assert.deepEqual((await mustGet(ctx.ferry, sent.id)).payload, nested(1000));
      const [d] = await ctx.ferry.receive(q);
      assert.ok(d);
      await expectError(() => ctx.ferry.ack(d, nested(1001)), InvalidRequestError, 'result 1001 deep');
      await ctx.ferry.ack(d, nested(1000));
      assert.deepEqual(await ctx.ferry.result(sent.id, { timeout: '5s' }), nested(1000));
      await expectError(() => ctx.ferry.publish(qname('topic'), nested(1001)), InvalidRequestError, 'publish');
    });

    it('takes a flow 32 levels deep whose leaf payload nests 1000 levels, and refuses one level more', async () => {
      const q = qname();
      const flow = (leaf: unknown) => {
        let node: FlowNode = { queue: q, payload: leaf };
        for (let level = 1; level < 32; level++) node = { queue: q, payload: level, children: [node] };
        return node;
      };
      await expectError(() => ctx.ferry.sendFlow(flow(nested(1001))), InvalidRequestError, 'leaf 1001 deep');
      assert.equal((await ctx.ferry.stats(q)).pending, 0, 'nothing of a refused flow is stored');
      let node = await ctx.ferry.sendFlow(flow(nested(1000)));
      while (node.children?.[0]) node = node.children[0];
      assert.deepEqual((await mustGet(ctx.ferry, node.id)).payload, nested(1000));
    });

    it('keeps keys named __proto__ and constructor in payloads and results, and pollutes no prototype', async () => {
      const q = qname();
      const text = '{"user":{"__proto__":{"admin":true}},"constructor":{"prototype":{"polluted":1}}}';
      const payload = JSON.parse(text) as Record<string, unknown>;
      const sent = await ctx.ferry.send(q, payload);
      assert.equal(JSON.stringify((await mustGet(ctx.ferry, sent.id)).payload), text);
      const [d] = await ctx.ferry.receive(q);
      assert.ok(d);
      assert.equal(JSON.stringify(d.payload), text);
      await ctx.ferry.ack(d, payload);
      assert.equal(JSON.stringify(await ctx.ferry.result(sent.id, { timeout: '5s' })), text);
      assert.equal((await mustGet(ctx.ferry, sent.id)).state, 'completed');
      const plain: Record<string, unknown> = {};
      assert.equal(plain.admin, undefined);
      assert.equal(plain.polluted, undefined);
    });

    it('refuses values that are not JSON with InvalidRequestError', async () => {
      const q = qname();
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      await expectError(() => ctx.ferry.send(q, circular), InvalidRequestError, 'circular');
      await expectError(() => ctx.ferry.send(q, { n: 10n }), InvalidRequestError, 'BigInt');
      assert.equal((await ctx.ferry.stats(q)).waiting, 0);
    });
  });
}
