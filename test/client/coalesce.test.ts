/**
 * connect() joins concurrent sends (POST /v1/sends) and acks (POST /v1/acks) into shared requests, through a
 * real socket: how many requests went out, that every call still answers on its own, and that a joined
 * request never grows past what the server takes (nor turns a worker's acks into dead messages when it does).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { context, createContextKey } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { Coalescer } from '../../src/client/coalesce.ts';
import { connect, type Ferry, InvalidRequestError } from '../../src/client/index.ts';
import { type Harness, harness, qname } from '../server/helpers.ts';

/** fetch that counts requests by `METHOD path`; `refuse` answers some paths itself (an older server). */
function countingFetch(refuse?: (path: string) => Response | undefined) {
  const counts = new Map<string, number>();
  const largest = new Map<string, number>();
  const f: typeof fetch = async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const key = `${init?.method ?? 'GET'} ${url.pathname}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const size = typeof init?.body === 'string' ? init.body.length : 0;
    largest.set(key, Math.max(largest.get(key) ?? 0, size));
    return refuse?.(url.pathname) ?? fetch(input, init);
  };
  return { fetch: f, count: (key: string) => counts.get(key) ?? 0, largest: (key: string) => largest.get(key) ?? 0 };
}

async function served(options: Parameters<typeof harness>[0] = {}): Promise<{ h: Harness; url: string }> {
  const h = await harness(options);
  const url = await h.app.listen({ port: 0, host: '127.0.0.1' });
  return { h, url };
}

describe('connect(): concurrent sends and acks share requests', () => {
  let h: Harness;
  let url: string;
  before(async () => {
    ({ h, url } = await served());
  });
  after(async () => h.close());

  it('200 concurrent sends to two queues go in a few requests; each gets its own id, one bad send fails alone', async () => {
    const counter = countingFetch();
    const client = await connect(url, { fetch: counter.fetch });
    try {
      const [qa, qb] = [qname('a'), qname('b')];
      const calls = Array.from({ length: 200 }, (_, i) =>
        i === 77
          ? client.send(qa, { i }, { priority: 'high' as unknown as number })
          : client.send(i % 2 ? qa : qb, { i }, { priority: i % 5 }),
      );
      const settled = await Promise.allSettled(calls);
      const refused = settled.flatMap((s, i) => (s.status === 'rejected' ? [[i, s.reason]] : []));
      assert.equal(refused.length, 1);
      assert.equal(refused[0]?.[0], 77);
      assert.ok(refused[0]?.[1] instanceof InvalidRequestError, String(refused[0]?.[1]));
      const sent = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      assert.equal(new Set(sent.map((s) => s.id)).size, 199);
      for (const [i, s] of settled.entries()) {
        if (s.status !== 'fulfilled') continue;
        const info = await h.ferry.get(s.value.id);
        assert.deepEqual(
          [info?.queue, s.value.queue, info?.payload, info?.priority],
          [i % 2 ? qa : qb, i % 2 ? qa : qb, { i }, i % 5],
        );
      }
      const joined = counter.count('POST /v1/sends');
      const alone = counter.count(`POST /v1/queues/${qa}/messages`) + counter.count(`POST /v1/queues/${qb}/messages`);
      assert.ok(joined >= 1, 'the sends made while one was in flight were joined');
      assert.ok(joined + alone <= 10, `${joined} joined and ${alone} lone requests for 200 sends`);
    } finally {
      await client.close();
    }
  });

  it('a lone send goes at once on its own route', async () => {
    const counter = countingFetch();
    const client = await connect(url, { fetch: counter.fetch });
    try {
      const q = qname();
      for (let i = 0; i < 3; i++) await client.send(q, i);
      assert.equal(counter.count(`POST /v1/queues/${q}/messages`), 3);
      assert.equal(counter.count('POST /v1/sends'), 0);
    } finally {
      await client.close();
    }
  });

  it('large sends are split so that no joined request nears the body limit', async () => {
    const counter = countingFetch();
    const client = await connect(url, { fetch: counter.fetch });
    try {
      const q = qname();
      const big = 'x'.repeat(300_000);
      const sent = await Promise.all(Array.from({ length: 21 }, (_, i) => client.send(q, { i, big })));
      assert.equal((await h.ferry.stats(q)).waiting, 21);
      const last = await h.ferry.get(sent[20]?.id as string);
      assert.equal((last?.payload as { big: string } | undefined)?.big.length, 300_000);
      // Sends of 300 KB join at most three to a request (1 MiB of JSON).
      assert.ok(counter.count('POST /v1/sends') >= 2, `${counter.count('POST /v1/sends')} joined requests`);
      assert.ok(counter.largest('POST /v1/sends') <= 1024 * 1024, `${counter.largest('POST /v1/sends')} characters`);
    } finally {
      await client.close();
    }
  });

  it('a worker whose results are large acks them all: none ends dead for a joined request too large', async () => {
    const client = await connect(url);
    try {
      const q = qname();
      await h.ferry.sendBatch(
        q,
        Array.from({ length: 40 }, (_, i) => ({ payload: i })),
      );
      const big = 'r'.repeat(200_000);
      let handled = 0;
      let allHandled: () => void = () => {};
      const done = new Promise<void>((resolve) => {
        allHandled = resolve;
      });
      const worker = client.work(
        q,
        async () => {
          if (++handled === 40) allHandled();
          return big;
        },
        { concurrency: 40 },
      );
      await done;
      await worker.close();
      for (let i = 0; i < 100 && (await h.ferry.stats(q)).completed < 40; i++)
        await new Promise((r) => setTimeout(r, 20));
      const stats = await h.ferry.stats(q);
      assert.deepEqual([stats.completed, stats.dead], [40, 0]);
    } finally {
      await client.close();
    }
  });
});

describe('connect(): every call answers for itself', () => {
  let h: Harness;
  let url: string;
  before(async () => {
    ({ h, url } = await served());
  });
  after(async () => h.close());

  it('a joined request the server refuses whole (nesting past its limit) goes item by item: each answers for itself', async () => {
    // A server whose bodies may nest 20 levels: alone, a payload 19 deep makes a body of 20 (taken) and one
    // 20 deep a body of 21 (refused); joined, either makes 22 or 23, refusing the whole request, which the
    // client then sends item by item.
    const shallow = await served({ maxDepth: 20 });
    const client = await connect(shallow.url);
    const deep = (depth: number) => {
      let value: unknown = 'bottom';
      for (let i = 0; i < depth; i++) value = { a: value };
      return value;
    };
    try {
      for (const depth of [19, 20]) {
        const q = qname();
        const settled = await Promise.allSettled(
          Array.from({ length: 12 }, (_, i) => client.send(q, i === 7 ? deep(depth) : { i })),
        );
        const refused = depth === 20 ? [7] : [];
        assert.deepEqual(
          settled.flatMap((s, i) => (s.status === 'rejected' ? [i] : [])),
          refused,
          `payload ${depth} deep`,
        );
        for (const i of refused) assert.ok((settled[i] as PromiseRejectedResult).reason instanceof InvalidRequestError);
        assert.equal((await shallow.h.ferry.stats(q)).waiting, 12 - refused.length);
      }
    } finally {
      await client.close();
      await shallow.h.close();
    }
  });

  it('a stray queue option is refused joined as it is alone, and stores nothing elsewhere', async () => {
    const client = await connect(url);
    try {
      const [q, other] = [qname(), qname('other')];
      const settled = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => client.send(q, i, (i === 4 ? { queue: other } : {}) as object)),
      );
      assert.equal(settled.filter((s) => s.status === 'rejected').length, 1);
      assert.ok((settled[4] as PromiseRejectedResult).reason instanceof InvalidRequestError);
      assert.deepEqual([(await h.ferry.stats(q)).waiting, (await h.ferry.stats(other)).waiting], [5, 0]);
    } finally {
      await client.close();
    }
  });

  it('close() with sends queued settles every one of them', async () => {
    const slow = countingFetch();
    const delayed: typeof fetch = async (input, init) => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      return slow.fetch(input, init);
    };
    const client = await connect(url, { fetch: delayed });
    const q = qname();
    const calls = Array.from({ length: 20 }, (_, i) => client.send(q, i));
    await client.close();
    const settled = await Promise.allSettled(calls);
    assert.equal(settled.length, 20, 'every call settled');
  });
});

describe('Coalescer', () => {
  it('a queued call that ends up alone runs in its caller’s trace context, not in the one that freed its slot', async () => {
    const manager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(manager);
    try {
      const who = createContextKey('who');
      let release: () => void = () => {};
      const first = new Promise<void>((resolve) => {
        release = resolve;
      });
      const coalescer = new Coalescer<string>(async () => assert.fail('nothing is joined here'));
      const seen: unknown[] = [];
      const a = context.with(context.active().setValue(who, 'a'), () =>
        coalescer.run('{}', async () => {
          await first;
          seen.push(context.active().getValue(who));
          return 'a';
        }),
      );
      const b = context.with(context.active().setValue(who, 'b'), () =>
        coalescer.run('{}', async () => {
          seen.push(context.active().getValue(who));
          return 'b';
        }),
      );
      release();
      assert.deepEqual([await a, await b], ['a', 'b']);
      assert.deepEqual(seen, ['a', 'b']);
    } finally {
      context.disable();
    }
  });
});

describe('connect(): a joined request refused whole', () => {
  it('413 (the server takes smaller joined bodies): every call goes alone and succeeds', async () => {
    const { h, url } = await served({ batchBodyLimit: 16 * 1024 });
    const counter = countingFetch();
    const client: Ferry = await connect(url, { fetch: counter.fetch });
    try {
      const q = qname();
      const sent = await Promise.all(
        Array.from({ length: 10 }, (_, i) => client.send(q, { i, pad: 'p'.repeat(5000) })),
      );
      assert.equal(new Set(sent.map((s) => s.id)).size, 10);
      assert.equal((await h.ferry.stats(q)).waiting, 10);
      assert.ok(counter.count('POST /v1/sends') >= 1, 'a joined request was tried');
    } finally {
      await client.close();
      await h.close();
    }
  });

  it('404 (a server without the joined route): sends go alone, and later ones do not try it again', async () => {
    const { h, url } = await served();
    const missing = () =>
      new Response(JSON.stringify({ type: 'not_found', title: 'Not found', status: 404, detail: 'no route' }), {
        status: 404,
        headers: { 'content-type': 'application/problem+json' },
      });
    const counter = countingFetch((path) => (path === '/v1/sends' ? missing() : undefined));
    const client = await connect(url, { fetch: counter.fetch });
    try {
      const q = qname();
      await Promise.all(Array.from({ length: 10 }, (_, i) => client.send(q, i)));
      await Promise.all(Array.from({ length: 10 }, (_, i) => client.send(q, i)));
      assert.equal((await h.ferry.stats(q)).waiting, 20);
      assert.equal(counter.count('POST /v1/sends'), 1, 'asked once');
    } finally {
      await client.close();
      await h.close();
    }
  });
});
