/**
 * Ferry through PgBouncer in transaction mode, as production deployments run it: every statement may land on
 * another server connection, so nothing may rely on session state (session advisory locks, SET, LISTEN on a
 * pooled connection). LISTEN goes on a direct connection (`?listen=<direct URL>` or `open(url, { listen })`),
 * or is turned off (`listen=off` / `listen: false`) and polling carries the wakeups. Both ways, two Ferry
 * instances share the schema through a PgBouncer with fewer server connections than their pools hold, and
 * run sends, batches, dedupe, keyed work with acks and nacks, events(), result() and a schedule.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EventStream, Ferry, FerryEvent } from '../../src/core/types.ts';
import { type OpenOptions, open } from '../../src/index.ts';
import type { PostgresOptions } from '../../src/stores/postgres/index.ts';
import { testDatabase, testSchema } from '../support/postgres.ts';
import { type Bouncer, startBouncer } from './pgbouncer.ts';

/** `listen`: a direct URL for the LISTEN connection, or false to rely on polling (the PostgreSQL store's option). */
type PgOpenOptions = OpenOptions & PostgresOptions & { listen?: string | false };

let bouncer: Bouncer;
let direct: string;

before(async () => {
  direct = (await testDatabase()).url;
  bouncer = await startBouncer(direct, 4);
});
after(async () => {
  await bouncer?.stop();
});

const queueName = (label: string) => `${label}-${Math.random().toString(36).slice(2, 8)}`;
const tag = Math.random().toString(36).slice(2, 8);

const MODES = [
  {
    name: 'LISTEN on a direct connection',
    listenApp: `ferry-listen-${tag}`,
    // One instance takes the direct URL in the store URL, the other as an option: both forms are public.
    url: (pooled: string, listenUrl: string) => withParam(pooled, 'listen', listenUrl),
    options: (listenUrl: string): PgOpenOptions => ({ listen: listenUrl }),
  },
  {
    name: 'LISTEN off, polling',
    listenApp: null,
    url: (pooled: string) => withParam(pooled, 'listen', 'off'),
    options: (): PgOpenOptions => ({ listen: false }),
  },
] as const;

function withParam(url: string, name: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(name, value);
  return u.toString();
}

for (const mode of MODES) {
  describe(`through PgBouncer (transaction mode), ${mode.name}`, () => {
    let schema: Awaited<ReturnType<typeof testSchema>>;
    let a: Ferry;
    let b: Ferry;

    before(async () => {
      schema = await testSchema(`pgbouncer_${mode.listenApp ? 'direct' : 'off'}`);
      const pooled = bouncer.pooled(schema.url);
      const listenUrl = mode.listenApp ? withParam(direct, 'application_name', mode.listenApp) : '';
      // Two pools of 6 over PgBouncer's 4 server connections; `a` vacuums eagerly, so its vacuum lock is taken
      // and released many times while both instances work.
      a = await open(mode.url(pooled, listenUrl), {
        poolSize: 6,
        vacuum: { interval: 200, minDead: 1 },
        sweepInterval: 200,
      } as PgOpenOptions);
      b = await open(pooled, { ...mode.options(listenUrl), poolSize: 6, sweepInterval: 200 } as PgOpenOptions);
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await schema?.drop();
    });

    it('single sends, batches and dedupe from both instances', async () => {
      const queue = queueName('send');
      const singles = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).send(queue, { i })));
      const batch = await b.sendBatch(
        queue,
        Array.from({ length: 50 }, (_, i) => ({ payload: { i: 20 + i } })),
      );
      assert.equal(new Set([...singles, ...batch].map((s) => s.id)).size, 70);
      assert.equal((await a.stats(queue)).waiting, 70);

      const first = await a.send(queue, { d: 1 }, { dedupeId: 'once' });
      const second = await b.send(queue, { d: 2 }, { dedupeId: 'once' });
      assert.equal(first.deduplicated, false);
      assert.equal(second.deduplicated, true);
      assert.equal(second.id, first.id);
      assert.equal((await b.stats(queue)).waiting, 71);
    });

    it('keyed work on both instances with acks and failures; events() sees each completion once; result() answers across instances', async () => {
      const queue = queueName('work');
      const COUNT = 60;
      const stream: EventStream = a.events({ queue });
      const completions = (async () => {
        const seen = new Map<string, number>();
        let total = 0;
        for await (const e of stream as AsyncIterable<FerryEvent>) {
          if (e.type !== 'completed') continue;
          seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
          if (++total === COUNT) break;
        }
        stream.close();
        return seen;
      })();
      await stream.since();
      await a.configure(queue, { backoff: { type: 'fixed', delay: 10 }, maxAttempts: 5 });

      const done: { key: string; n: number; by: string }[] = [];
      const handler = (by: string) => (job: { payload: unknown; attempt: number }) => {
        const p = job.payload as { key: string; n: number };
        if (p.n % 4 === 0 && job.attempt === 1) throw new Error('first attempt fails');
        done.push({ ...p, by });
        return { n: p.n, key: p.key };
      };
      const workers = [
        a.work(queue, handler('a'), { concurrency: 4 }),
        b.work(queue, handler('b'), { concurrency: 4 }),
      ];

      // Half in one batch through a (send order = batch order), half as awaited single sends through b.
      const perKey = new Map<string, number>();
      const next = (key: string) => {
        const n = (perKey.get(key) ?? 0) + 1;
        perKey.set(key, n);
        return { key, n };
      };
      const batch = Array.from({ length: COUNT / 2 }, (_, i) => next(`a${i % 5}`));
      const sentA = await a.sendBatch(
        queue,
        batch.map((payload) => ({ payload, key: payload.key })),
      );
      const sentB = [];
      for (let i = 0; i < COUNT / 2; i++) {
        const payload = next(`b${i % 5}`);
        sentB.push(await b.send(queue, payload, { key: payload.key }));
      }
      // The result of a message sent through b, awaited on b while either instance may run it.
      assert.deepEqual(await sentB[3]?.result({ timeout: '30s' }), { n: 1, key: 'b3' });

      const seen = await completions;
      await Promise.all(workers.map((w) => w.close()));
      assert.equal(seen.size, COUNT);
      assert.ok(
        [...seen.values()].every((n) => n === 1),
        'each completed once',
      );
      assert.deepEqual(new Set(seen.keys()), new Set([...sentA, ...sentB].map((s) => s.id)));
      for (const key of perKey.keys()) {
        const order = done.filter((d) => d.key === key).map((d) => d.n);
        assert.deepEqual(
          order,
          order.map((_, i) => i + 1),
          `key ${key} ran in send order`,
        );
      }
      // A message sent through a and run on b: result() through a.
      const one = await a.send(queue, { key: 'solo', n: 1 });
      const worker = b.work(queue, handler('b'), { concurrency: 1 });
      assert.deepEqual(await one.result({ timeout: '30s' }), { n: 1, key: 'solo' });
      await worker.close();
    });

    if (mode.listenApp) {
      it('each instance listens on the direct connection it was given', async () => {
        const { default: pg } = await import('pg');
        const client = new pg.Client({ connectionString: direct });
        await client.connect();
        try {
          // Only the listen URL carries this application_name (after Ferry's own `ferry:<channel> `): one
          // connection per instance, not through PgBouncer.
          const r = await client.query<{ n: string }>(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE 'ferry:% ' || $1",
            [mode.listenApp],
          );
          assert.ok(Number(r.rows[0]?.n) >= 2, `${r.rows[0]?.n} direct connections under the listen URL`);
        } finally {
          await client.end();
        }
      });
    }

    it('a nack through one instance, the retry received and acked through the other', async () => {
      const queue = queueName('nack');
      const sent = await a.send(queue, { x: 1 }, { maxAttempts: 3 });
      const [first] = await b.receive(queue, { max: 1, wait: '20s' });
      assert.equal(first?.id, sent.id);
      assert.equal(
        (await b.nack(first as NonNullable<typeof first>, { error: { message: 'later' }, delay: 0 })).state,
        'waiting',
      );
      const [again] = await a.receive(queue, { max: 1, wait: '20s' });
      assert.equal(again?.id, sent.id);
      assert.equal(again?.attempt, 2);
      await a.ack(again as NonNullable<typeof again>, 'ok');
      assert.equal(await b.get(sent.id).then((m) => m?.state), 'completed');
    });

    it('a schedule run by both instances sends each tick once', async () => {
      const queue = queueName('tick');
      await a.schedule(`every-second-${queue}`, { cron: '* * * * * *', queue, payload: { tick: true } });
      const runAts: string[] = [];
      for (let waited = 0; ; waited++) {
        const { messages } = await b.list(queue, { limit: 100 });
        if (messages.length >= 3) {
          runAts.push(...messages.map((m) => m.runAt as string));
          break;
        }
        // A hang guard only.
        assert.ok(waited < 300, `only ${messages.length} ticks sent in about 60 s`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await a.unschedule(`every-second-${queue}`);
      assert.equal(new Set(runAts).size, runAts.length, `one message per tick: ${runAts.join(', ')}`);
    });

    it('vacuums through PgBouncer and leaves no session lock behind', async () => {
      const { default: pg } = await import('pg');
      // Dead tuples of its own to vacuum, whichever tests ran before.
      const queue = queueName('vacuum');
      await b.sendBatch(
        queue,
        Array.from({ length: 100 }, (_, i) => ({ payload: { i } })),
      );
      for (let acked = 0; acked < 100; ) {
        for (const d of await b.receive(queue, { max: 50, wait: '5s' })) {
          await b.ack(d);
          acked++;
        }
      }
      const client = new pg.Client({ connectionString: direct });
      await client.connect();
      try {
        for (let waited = 0; ; waited++) {
          const r = await client.query<{ n: string }>(
            `SELECT coalesce(sum(vacuum_count), 0) AS n FROM pg_stat_user_tables WHERE schemaname = $1`,
            [schema.schema],
          );
          if (Number(r.rows[0]?.n) > 0) break;
          assert.ok(waited < 150, 'Ferry vacuumed its tables within about 30 s');
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        await a.close();
        await b.close();
        // Every Ferry on this schema is closed: any advisory lock of its still held sits on a server connection
        // PgBouncer will hand to someone else.
        const held = await client.query<{ pid: number; mode: string; granted: boolean }>(
          `SELECT l.pid, l.mode, l.granted FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.objsubid = 2
              AND l.objid::bigint = (hashtext($1)::bigint + 4294967296) % 4294967296`,
          [schema.schema],
        );
        assert.deepEqual(held.rows, [], 'no advisory lock of the schema outlives its Ferry instances');
      } finally {
        await client.end();
      }
    });
  });
}
