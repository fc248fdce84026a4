/** PostgreSQL-only cases: migrations, transactional send, events from another process's store. */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { FerryEvent } from '../../src/core/types.ts';
import type { NewMessage, Store } from '../../src/store/store.ts';
import { createPostgresStore } from '../../src/stores/postgres/index.ts';
import { migrations } from '../../src/stores/postgres/migrate.ts';
import { testDatabase, testSchema } from '../support/postgres.ts';

function message(queue: string, fields: Partial<NewMessage> = {}): NewMessage {
  return {
    id: randomUUID(),
    queue,
    payload: '{"n":1}',
    priority: 0,
    key: null,
    dedupeId: null,
    maxAttempts: null,
    backoff: null,
    lease: null,
    timeout: null,
    headers: null,
    runAt: Date.now(),
    ...fields,
  };
}

async function opened(url: string, events: FerryEvent[] = []): Promise<Store> {
  const store = createPostgresStore(url, { pollInterval: 50 });
  await store.init({ retryDelay: () => 1000, onEvents: (batch) => events.push(...batch) });
  return store;
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('postgres store', () => {
  let schema: Awaited<ReturnType<typeof testSchema>>;
  let admin: pg.Client;
  before(async () => {
    schema = await testSchema('store');
    admin = new pg.Client({ connectionString: (await testDatabase()).url });
    await admin.connect();
  });
  after(async () => {
    await admin.end();
    await schema.drop();
  });

  it('migrates once when many processes start at once, and records the version', async () => {
    const url = `${schema.url.split('?')[0]}?schema=${schema.schema}_m`;
    const stores = await Promise.all(Array.from({ length: 6 }, () => opened(url)));
    const known = migrations().at(-1)?.version;
    const r = await admin.query(`SELECT value FROM "${schema.schema}_m".meta WHERE key = 'schema_version'`);
    assert.equal(Number(r.rows[0].value), known);
    await Promise.all(stores.map((s) => s.close()));
    await admin.query(`DROP SCHEMA "${schema.schema}_m" CASCADE`);
  });

  it('refuses a schema newer than it knows, saying so', async () => {
    const url = `${schema.url.split('?')[0]}?schema=${schema.schema}_n`;
    await (await opened(url)).close();
    await admin.query(`UPDATE "${schema.schema}_n".meta SET value = '999' WHERE key = 'schema_version'`);
    const store = createPostgresStore(url, {});
    await assert.rejects(store.init({ retryDelay: () => 0, onEvents: () => {} }), (error: Error) =>
      /version 999, newer than this Ferry knows/.test(error.message),
    );
    await store.close();
    await admin.query(`DROP SCHEMA "${schema.schema}_n" CASCADE`);
  });

  it('a send in the caller’s transaction exists if and only if it commits', async () => {
    const events: FerryEvent[] = [];
    const store = await opened(schema.url, events);
    const queue = `tx-${randomUUID()}`;
    const client = new pg.Client({ connectionString: (await testDatabase()).url });
    await client.connect();
    try {
      await client.query('BEGIN');
      const [kept] = await store.send([message(queue)], Date.now(), client);
      assert.equal(await store.get(kept?.id as string), null, 'not visible before the commit');
      await client.query('COMMIT');
      assert.equal((await store.get(kept?.id as string))?.state, 'queued');
      await until(() => events.some((e) => e.id === kept?.id && e.type === 'sent'), 'the sent event');

      await client.query('BEGIN');
      const [dropped] = await store.send([message(queue), message(queue)], Date.now(), client);
      await client.query('ROLLBACK');
      assert.equal(await store.get(dropped?.id as string), null);
      const [stats] = await store.stats(queue, Date.now());
      assert.equal(stats?.waiting, 1);
      await assert.rejects(store.send([message(queue)], Date.now(), { not: 'a client' }), /pg client/);
    } finally {
      await client.end();
      await store.close();
    }
  });

  it('events committed by another process reach onEvents in seq order, without gaps', async () => {
    const a: FerryEvent[] = [];
    const b: FerryEvent[] = [];
    const storeA = await opened(schema.url, a);
    const storeB = await opened(schema.url, b);
    const queue = `ev-${randomUUID()}`;
    const from = await storeA.lastSeq();
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? storeA : storeB).send([message(queue), message(queue)], Date.now()),
      ),
    );
    const last = await storeA.lastSeq();
    for (const seen of [a, b]) {
      await until(() => (seen.at(-1)?.seq ?? 0) >= last, 'every event');
      const seqs = seen.filter((e) => e.seq > from).map((e) => e.seq);
      assert.deepEqual(
        seqs,
        Array.from({ length: last - from }, (_, i) => from + 1 + i),
      );
    }
    await storeA.close();
    await storeB.close();
  });

  it('a process listening alone sends no hints; one that starts listening says hello, and hints resume', async () => {
    const own = await testSchema('hints');
    const channel = `ferry_${createHash('sha1').update(own.schema).digest('hex').slice(0, 24)}`;
    // A watcher on the channel, not named as Ferry's listeners are: it is not counted as a process.
    const watcher = new pg.Client({ connectionString: (await testDatabase()).url });
    const heard: string[] = [];
    await watcher.connect();
    watcher.on('notification', (n) => heard.push(n.payload ?? ''));
    const heardOne = (prefix: string) => heard.some((p) => p.startsWith(prefix));
    await watcher.query(`LISTEN ${channel}`);
    const storeA = await opened(own.url);
    let storeB: Store | undefined;
    try {
      const queue = `hints-${randomUUID()}`;
      // Polls (every 50 ms here) find A listening alone; then its sends hint no one.
      await new Promise((resolve) => setTimeout(resolve, 300));
      heard.length = 0;
      for (let i = 0; i < 10; i++) {
        await storeA.send([message(queue)], Date.now());
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(heard, [], 'no hints while alone');
      // B's LISTEN URL names an application: its listener is named as Ferry's anyway, so A counts it.
      const direct = `${(await testDatabase()).url}${(await testDatabase()).url.includes('?') ? '&' : '?'}application_name=custom`;
      storeB = await opened(`${own.url}&listen=${encodeURIComponent(direct)}`);
      await until(() => heardOne('hello:'), "B's hello");
      const named = await watcher.query<{ name: string }>(
        'SELECT application_name AS name FROM pg_stat_activity WHERE application_name LIKE $1 ORDER BY 1',
        [`ferry:${channel}%`],
      );
      assert.deepEqual(
        named.rows.map((r) => r.name),
        [`ferry:${channel}`, `ferry:${channel} custom`],
        "both listeners are named ferry:<channel>, B's with the name its URL gave after",
      );
      heard.length = 0;
      await storeA.send([message(queue)], Date.now());
      await until(() => heardOne('h'), "A's hint once B listens", 1000);
      await storeB.close();
      storeB = undefined;
      await new Promise((resolve) => setTimeout(resolve, 300));
      heard.length = 0;
      for (let i = 0; i < 5; i++) await storeA.send([message(queue)], Date.now());
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(heard, [], 'alone again after B closed');
    } finally {
      await storeB?.close();
      await storeA.close();
      await watcher.end();
      await own.drop();
    }
  });

  it('dedupe holds under concurrent sends from several processes', async () => {
    const stores = await Promise.all(Array.from({ length: 4 }, () => opened(schema.url)));
    const queue = `dd-${randomUUID()}`;
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (stores[i % 4] as Store).send([message(queue, { dedupeId: `d${i % 5}` })], Date.now()),
      ),
    );
    const ids = new Set(outcomes.map((o) => o[0]?.id));
    assert.equal(ids.size, 5);
    assert.equal(outcomes.filter((o) => !o[0]?.deduplicated).length, 5);
    await Promise.all(stores.map((s) => s.close()));
  });
  it('claims and completes strings that need JSON escaping, in the rows and in the events', async () => {
    // Claimed rows and events are built as JSON text by concatenation in SQL (migration 004).
    const events: FerryEvent[] = [];
    const store = await opened(schema.url, events);
    const queue = `esc.${randomUUID()}:a-b_c`;
    const nasty = `q"uote \\ back\nnl\ttab\u0001ctl 😀 שלום \u2028`;
    const payload = JSON.stringify({ s: nasty });
    const headers = JSON.stringify({ h: nasty });
    const [sent] = await store.send([message(queue, { payload, headers, key: nasty, priority: 3 })], Date.now());
    const [claimed] = await store.claim(queue, 5, null, Date.now());
    assert.equal(claimed?.id, sent?.id);
    assert.deepEqual(claimed?.payload, { s: nasty });
    assert.deepEqual(claimed?.headers, { h: nasty });
    assert.equal(claimed?.key, nasty);
    assert.equal(claimed?.priority, 3);
    assert.equal(claimed?.attempt, 1);
    const result = JSON.stringify({ r: nasty, n: [1, null] });
    const now = Date.now();
    const states = await store.complete([{ id: sent?.id as string, receipt: claimed?.receipt as string, result }], now);
    assert.deepEqual(states, ['completed']);
    await until(() => events.some((e) => e.id === sent?.id && e.type === 'completed'), 'the completed event');
    const mine = events.filter((e) => e.id === sent?.id);
    assert.deepEqual(
      mine.map((e) => e.type),
      ['sent', 'active', 'completed'],
    );
    const [, active, completed] = mine as [FerryEvent, FerryEvent & { attempt: number }, FerryEvent];
    assert.equal(active.queue, queue);
    assert.equal(active.attempt, 1);
    assert.deepEqual(
      { ...completed, seq: 0 },
      {
        seq: 0,
        type: 'completed',
        queue,
        id: sent?.id,
        at: new Date(now).toISOString(),
        attempt: 1,
        result: { r: nasty, n: [1, null] },
      },
    );
    await store.close();
  });
});

describe('postgres store housekeeping', () => {
  it('vacuums its hot tables itself once dead tuples pile up', async () => {
    const schema = await testSchema('vacuum');
    const admin = new pg.Client({ connectionString: (await testDatabase()).url });
    await admin.connect();
    const store = createPostgresStore(schema.url, { vacuum: { interval: 0, minDead: 200 } });
    try {
      await store.init({ retryDelay: () => 1000, onEvents: () => {} });
      const queue = `vac-${randomUUID()}`;
      await store.send(
        Array.from({ length: 500 }, () => message(queue)),
        Date.now(),
      );
      await store.purge(queue, ['waiting'], Date.now());
      const lastVacuum = async () => {
        const r = await admin.query(
          `SELECT last_vacuum FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'messages'`,
          [schema.schema],
        );
        return r.rows[0]?.last_vacuum ?? null;
      };
      assert.equal(await lastVacuum(), null);
      await until(
        async () => {
          await store.sweep(Date.now(), 86_400_000);
          return (await lastVacuum()) !== null;
        },
        'a VACUUM of messages',
        15_000,
      );
    } finally {
      await store.close();
      await admin.end();
      await schema.drop();
    }
  });
});

describe('postgres store options', () => {
  it('refuses a listen value that is not a postgres URL or off, naming it without its password', () => {
    for (const [url, options] of [
      ['postgres://app:s3cret@db/app?listen=mysql%3A%2F%2Fapp%3As3cret%40db', {}],
      ['postgres://app@db/app', { listen: 'db:5432' }],
    ] as const) {
      assert.throws(
        () => createPostgresStore(url, options),
        (error: Error) =>
          error.name === 'InvalidRequestError' &&
          /listen must be a postgres:\/\/ URL/.test(error.message) &&
          !error.message.includes('s3cret'),
      );
    }
  });

  it('accepts listen=off and a direct URL', () => {
    for (const url of [
      'postgres://app@db/app?listen=off',
      'postgres://app@db/app?listen=postgres%3A%2F%2Fapp%40db2%2Fapp',
    ]) {
      const store = createPostgresStore(url);
      assert.equal(store.capabilities.shared, true);
      void store.close();
    }
  });
});
