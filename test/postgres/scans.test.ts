/**
 * The hot path never reads the whole `messages` table: each statement a worker, a producer or the sweep runs
 * finds its rows through an index, so its cost follows the rows it touches, not the finished messages kept
 * for retention. A hash join against a sequential scan of `messages` is what the planner picks for a join of
 * a few hundred ids when nothing steers it to the primary key; this checks, by the table's own scan counter
 * (pg_stat_xact_user_tables), that no function of the store lets it. Each function runs more than five times,
 * so the plans PL/pgSQL switches to after its first calls (generic ones) are covered too. With EXPLAIN_DEBUG=1
 * in the environment, the plan of every statement that scanned `messages` is printed (auto_explain).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { Ferry } from '../../src/core/types.ts';
import { open } from '../../src/index.ts';
import { listQuery, statsSql } from '../../src/stores/postgres/admin.ts';
import { loneSendSql } from '../../src/stores/postgres/send.ts';
import { testSchema } from '../support/postgres.ts';

const FILLER = 20_000;

/** With EXPLAIN_DEBUG=1, prints the plan of every statement on `c` that scans `messages` (auto_explain). */
async function explainScans(c: pg.Client): Promise<void> {
  if (!process.env.EXPLAIN_DEBUG) return;
  await c.query("LOAD 'auto_explain'");
  await c.query(
    "SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = 'notice'",
  );
  c.on('notice', (n) => {
    if (/Seq Scan on messages/.test(n.message ?? '')) console.log(n.message);
  });
}

interface Claimed {
  id: string;
  receipt: string;
}

describe('PostgreSQL: no statement of the hot path scans the messages table', () => {
  let schema: Awaited<ReturnType<typeof testSchema>>;
  let ferry: Ferry;
  let c: pg.Client;
  let s: string;
  let now: number;

  before(async () => {
    schema = await testSchema('scans');
    ferry = await open(schema.url);
    s = `"${schema.schema}"`;
    c = new pg.Client({ connectionString: schema.url.replace(/[?&]schema=[^&]*/, '') });
    await c.connect();
    await explainScans(c);
    // Finished messages kept for retention: what a long-running queue's table mostly holds.
    for (let i = 0; i < FILLER; i += 1000) {
      await ferry.sendBatch(
        'old',
        Array.from({ length: 1000 }, (_, j) => ({ payload: { i: i + j } })),
      );
    }
    await c.query(`UPDATE ${s}.messages SET state = 2, finished_at = sent_at WHERE queue = 'old' AND state = 0`);
    await c.query(`VACUUM ANALYZE ${s}.messages`);
    now = Date.now();
  });

  after(async () => {
    await ferry?.close();
    await c?.end();
    await schema?.drop();
  });

  /** Runs `text` in a transaction of its own and answers its rows, failing if it scanned `messages`. */
  async function scanFree<R extends pg.QueryResultRow>(what: string, text: string, args: unknown[]): Promise<R[]> {
    await c.query('BEGIN');
    try {
      const r = await c.query<R>(text, args);
      const scans = await c.query<{ seq_scan: string }>(
        `SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = '${s}.messages'::regclass`,
      );
      assert.equal(Number(scans.rows[0]?.seq_scan), 0, `${what} scanned the messages table`);
      await c.query('COMMIT');
      return r.rows;
    } catch (error) {
      await c.query('ROLLBACK');
      throw error;
    }
  }

  const stepSql = () => `SELECT data, c_settled, deliveries FROM ${s}.step($1::text[], $2::text[], $3::text[],
    $4::int8[], $5::text[], $6::text, $7::int, $8::int, $9::int, $10::int8, $11::text, $12::int, $13::int, $14::text)`;

  async function step(what: string, acks: Claimed[], queue: string | null, max: number, at = now): Promise<Claimed[]> {
    const has = acks.length > 0;
    const [row] = await scanFree<{ deliveries: string | null }>(what, stepSql(), [
      has ? acks.map((a) => a.id) : null,
      has ? acks.map((a) => a.receipt) : null,
      has ? acks.map(() => '{"ok":true}') : null,
      has ? acks.map(() => at) : null,
      has ? acks.map(() => new Date(at).toISOString()) : null,
      queue,
      queue ? max : null,
      queue ? 30_000 : null,
      null,
      queue ? at : null,
      queue ? new Date(at).toISOString() : null,
      30_000,
      3,
      'scans',
    ]);
    return row?.deliveries ? (JSON.parse(row.deliveries) as Claimed[]) : [];
  }

  it('claims and acks, plain and keyed, in steps of 50, 200, 500 and 1', async () => {
    // A backlog: the queue claimed from holds most of the table's deliverable rows.
    for (let i = 0; i < FILLER; i += 1000) {
      await ferry.sendBatch(
        'plain',
        Array.from({ length: 1000 }, (_, j) => ({ payload: { i: i + j } })),
      );
    }
    await c.query(`ANALYZE ${s}.messages`);
    await ferry.sendBatch(
      'keyed',
      Array.from({ length: 600 }, (_, i) => ({ payload: { i }, key: `k${i % 300}` })),
    );
    now = Date.now();
    for (const [queue, max, rounds] of [
      ['plain', 50, 8],
      ['plain', 200, 7],
      ['plain', 500, 5],
      ['plain', 1, 7],
      ['keyed', 50, 8],
    ] as const) {
      let held: Claimed[] = [];
      for (let r = 0; r < rounds; r++) held = await step(`a step (${queue}, ${max})`, held, queue, max);
      assert.ok(held.length > 0, `${queue}: something was claimed`);
      await step(`an ack-only step (${queue})`, held, null, 0);
    }
  });

  it('fails (retried and dead), releases, and settles expired leases', async () => {
    await ferry.sendBatch(
      'failing',
      Array.from({ length: 1200 }, (_, i) => ({ payload: { i } })),
    );
    now = Date.now();
    const at = new Date(now).toISOString();
    for (let r = 0; r < 7; r++) {
      const held = await step('a claim', [], 'failing', 50);
      const half = held.slice(0, 25);
      await scanFree(
        'fail_items',
        `SELECT * FROM ${s}.fail_items($1::text[], $2::text[], $3::text[], $4::boolean[], $5::int8[], $6::int8[],
           $7::text[], 3, 'scans')`,
        [
          half.map((h) => h.id),
          half.map((h) => h.receipt),
          half.map(() => '{"message":"no"}'),
          half.map((_, i) => i % 2 === 0),
          half.map(() => now + 1000),
          half.map(() => now),
          half.map(() => at),
        ],
      );
      const rest = held.slice(25);
      await scanFree(
        'release_items',
        `SELECT * FROM ${s}.release_items($1::text[], $2::text[], $3::int8, $4::text, 'scans')`,
        [rest.map((h) => h.id), rest.map((h) => h.receipt), now, at],
      );
    }
    // Leases that ran out: the next claim of the queue settles them first; the sweep settles the others.
    for (let r = 0; r < 7; r++) await step('a claim', [], 'failing', 50, now + r);
    for (let r = 0; r < 7; r++) await step('a claim settling expired leases', [], 'failing', 50, now + 60_000 + r);
    for (let r = 0; r < 7; r++) await step('a claim', [], 'failing', 50, now + 60_000 + r);
    for (let r = 0; r < 7; r++) {
      const later = now + 200_000 + r;
      await scanFree('sweep', `SELECT * FROM ${s}.sweep($1::int8, $2::text, $3::int8, 3, 604800000, 'scans')`, [
        later,
        new Date(later).toISOString(),
        0,
      ]);
    }
  });

  it('lists, counts, redrives and purges through the index of each state', async () => {
    // A queue in every state beside the 20,000 finished rows of 'old': some dead, some waiting, some delayed,
    // some active.
    await ferry.sendBatch(
      'admin',
      Array.from({ length: 40 }, (_, i) => ({ payload: { i }, delay: i % 4 === 0 ? '1h' : undefined })),
    );
    const t = Date.now();
    const held = await step('a claim', [], 'admin', 20, t);
    await scanFree(
      'fail_items',
      `SELECT * FROM ${s}.fail_items($1::text[], $2::text[], $3::text[], $4::bool[], $5::int8[], $6::int8[],
         $7::text[], 3, 'scans')`,
      [
        held.slice(0, 10).map((h) => h.id),
        held.slice(0, 10).map((h) => h.receipt),
        held.slice(0, 10).map(() => '{"message":"no"}'),
        held.slice(0, 10).map(() => false),
        held.slice(0, 10).map(() => t),
        held.slice(0, 10).map(() => t),
        held.slice(0, 10).map(() => new Date(t).toISOString()),
      ],
    );
    const states = ['waiting', 'delayed', 'active', 'completed', 'dead', 'cancelled', 'pending', null] as const;
    const seen: Record<string, number> = {};
    for (const state of states) {
      for (let r = 0; r < 6; r++) {
        const { text, values } = listQuery(s, 'admin', { state, limit: 100, cursor: null }, t);
        const rows = await scanFree<{ seq: string }>(`list ${state}`, text, values);
        seen[String(state)] = rows.length;
        const seqs = rows.map((row) => Number(row.seq));
        assert.deepEqual(
          seqs,
          [...seqs].sort((a, b) => a - b),
          `list ${state} is in send order`,
        );
      }
    }
    assert.deepEqual(seen, {
      waiting: 10,
      delayed: 10,
      active: 10,
      completed: 0,
      dead: 10,
      cancelled: 0,
      pending: 0,
      null: 40,
    });
    for (let r = 0; r < 6; r++) {
      const rows = await scanFree<{ state: number; n: string; later: string }>('stats', statsSql(s), [['admin'], t]);
      const counts = Object.fromEntries(rows.map((row) => [row.state, [Number(row.n), Number(row.later)]]));
      assert.deepEqual(counts, { 0: [20, 10], 1: [10, 0], 3: [10, 0] });
    }
    for (let r = 0; r < 6; r++) {
      await scanFree('redrive_queue', `SELECT * FROM ${s}.redrive_queue('admin', $1::int8, $2::text, 'scans')`, [
        t,
        new Date(t).toISOString(),
      ]);
    }
    for (let r = 0; r < 6; r++) {
      await scanFree(
        'purge_queue',
        `SELECT * FROM ${s}.purge_queue('admin', $1::int[], true, true, $2::int8, $3::text, 'scans')`,
        [[1, 3], t, new Date(t).toISOString()],
      );
    }
    const all = listQuery(s, 'admin', { state: null, limit: 100, cursor: null }, t);
    const left = await scanFree('list', all.text, all.values);
    assert.equal(left.length, 0, 'everything of the queue was purged');
  });

  it('acks of flow children count their parents down', async () => {
    for (let f = 0; f < 8; f++) {
      await ferry.sendFlow({
        queue: 'parents',
        payload: { f },
        children: Array.from({ length: 40 }, (_, i) => ({ queue: 'children', payload: { i } })),
      });
    }
    now = Date.now();
    let held: Claimed[] = [];
    for (let r = 0; r < 9; r++) held = await step('a step of flow children', held, 'children', 40);
    await step('an ack-only step (flow children)', held, null, 0);
    const [row] = await scanFree<{ n: string }>(
      'counting',
      `SELECT count(*) AS n FROM ${s}.messages WHERE queue = 'parents' AND state = 0`,
      [],
    );
    assert.equal(Number(row?.n), 8, 'every parent is waiting');
  });

  it('sends, single and keyed', async () => {
    for (let r = 0; r < 7; r++) {
      await ferry.send('singles', { r });
      await ferry.send('singles', { r }, { key: `k${r % 2}` });
    }
    // The SDK's sends ran on its own connections: the same statement here, where the counter can be read.
    for (let r = 0; r < 7; r++) {
      const at = new Date(now).toISOString();
      await scanFree(
        'send',
        `SELECT * FROM ${s}.send(ARRAY[$1]::text[], ARRAY['singles'], ARRAY[0], ARRAY[$2::int8], ARRAY['{}'], ARRAY[NULL]::text[],
           ARRAY[$3]::text[], ARRAY[NULL]::text[], ARRAY[NULL]::int[], ARRAY[NULL]::text[], ARRAY[NULL]::int[],
           ARRAY[NULL]::int[], $2::int8, $4::text, NULL, 'scans', true)`,
        [`scan-send-${r}`, now, r % 2 ? `k${r}` : null, at],
      );
      await scanFree(
        'send_one',
        `SELECT ${s}.send_one($1, 'singles', 0, $2::int8, '{}', NULL, NULL, NULL, NULL, NULL, $2::int8, $3, $4, 'scans')`,
        [`scan-one-${r}`, now, at, r === 0],
      );
    }
  });

  it('a lone send probes the event inbox by its key, not by reading the table, as it grows', async () => {
    const other = new pg.Client({ connectionString: schema.url.replace(/[?&]schema=[^&]*/, '') });
    await other.connect();
    const lone = async (round: number) => {
      const at = new Date(now).toISOString();
      await c.query('BEGIN');
      try {
        const row = await c.query<{ data: string }>({
          name: 'lone-send',
          text: loneSendSql(s),
          values: [`scan-lone-${round}`, 'singles', 0, now, '{}', null, null, null, null, null, now, at, 'scans'],
        });
        assert.match(row.rows[0]?.data ?? '', /"type":"sent"/);
        const scans = await c.query<{ relname: string; seq_scan: string }>(
          `SELECT relname, seq_scan FROM pg_stat_xact_user_tables
            WHERE relid IN ('${s}.messages'::regclass, '${s}.event_inbox'::regclass)`,
        );
        for (const t of scans.rows)
          assert.equal(Number(t.seq_scan), 0, `round ${round}: a lone send scanned ${t.relname}`);
        await c.query('COMMIT');
      } catch (error) {
        await c.query('ROLLBACK');
        throw error;
      }
    };
    try {
      // Plans made while the inbox is empty and vacuumed (where reading the table is cheapest)...
      await other.query(`VACUUM ${s}.event_inbox`);
      for (let r = 0; r < 7; r++) await lone(r);
      // ...kept once it holds the dead rows of blocks staged and numbered (inserted and deleted here in one
      // transaction, so no sequencer sees them; on a connection of its own, since a backend's scan counters
      // include its earlier transactions' until they are flushed).
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO ${s}.event_inbox (at, n, origin, data) SELECT 0, 1, 'filler', '[]' FROM generate_series(1, 2000)`,
      );
      await other.query(`DELETE FROM ${s}.event_inbox WHERE origin = 'filler'`);
      await other.query('COMMIT');
      for (let r = 7; r < 14; r++) await lone(r);
    } finally {
      await other.end();
    }
  });

  it("settling one queue's expired leases reads none of another queue's, call after call", async () => {
    // Another queue's leases, expired as of `later` (not of the clock, so the store's own sweep leaves them).
    const later = Date.now() + 20 * 60_000;
    await ferry.sendBatch(
      'exp-b',
      Array.from({ length: 2000 }, (_, i) => ({ payload: i })),
    );
    for (let got = 0; got < 2000; ) got += (await ferry.receive('exp-b', { max: 500, lease: '1h' })).length;
    await ferry.send('exp-a', 'a');
    await c.query(`UPDATE ${s}.messages SET lease_until = $1 WHERE queue = 'exp-b' AND state = 1`, [later - 600_000]);
    // More calls than PL/pgSQL makes before it may switch a statement to a generic plan.
    for (let call = 0; call < 8; call++) {
      const [d] = await ferry.receive('exp-a', { lease: '1h' });
      assert.ok(d, `call ${call}: exp-a's message was received`);
      await c.query(`UPDATE ${s}.messages SET lease_until = $1 WHERE id = $2`, [later - 600_000, d.id]);
      // Rows fetched through the table's indexes, by this backend's counters not yet reported (they may
      // hold earlier transactions' counts too: the call's own are the difference).
      const fetched = async () =>
        Number(
          (
            await c.query<{ n: string }>(
              `SELECT idx_tup_fetch AS n FROM pg_stat_xact_user_tables WHERE relid = '${s}.messages'::regclass`,
            )
          ).rows[0]?.n,
        );
      await c.query('BEGIN');
      try {
        const before = await fetched();
        const r = await c.query<{ n: number }>(`SELECT n FROM ${s}.expire_leases($1, $2, 'exp-a', 25)`, [
          later,
          new Date(later).toISOString(),
        ]);
        assert.equal(r.rows[0]?.n, 1, `call ${call} settled exp-a's lease`);
        const read = (await fetched()) - before;
        assert.ok(read < 100, `call ${call} read ${read} rows`);
        await c.query('COMMIT');
        // Settled as of `later`, it would run again then: due now instead, for the next call.
        await c.query(`UPDATE ${s}.messages SET run_at = $1 WHERE id = $2`, [Date.now(), d.id]);
      } catch (error) {
        await c.query('ROLLBACK');
        throw error;
      }
    }
  });
});

describe('PostgreSQL: plans made while the table was small do not scan it once it has grown', () => {
  let schema: Awaited<ReturnType<typeof testSchema>>;
  let ferry: Ferry;
  let c: pg.Client;

  before(async () => {
    schema = await testSchema('scans_small');
    ferry = await open(schema.url);
    c = new pg.Client({ connectionString: schema.url.replace(/[?&]schema=[^&]*/, '') });
    await c.connect();
    await explainScans(c);
  });

  after(async () => {
    await ferry?.close();
    await c?.end();
    await schema?.drop();
  });

  it('steps whose plans were cached on a near-empty table find their rows by index after it grew', async () => {
    const s = `"${schema.schema}"`;
    const sql = `SELECT c_settled, deliveries FROM ${s}.step($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[],
      $6::text, $7::int, $8::int, $9::int, $10::int8, $11::text, $12::int, $13::int, $14::text)`;
    let held: Claimed[] = [];
    /** One step on this connection: acks what it holds, claims up to 5; answers the table's scans. */
    const step = async (): Promise<number> => {
      const now = Date.now();
      const at = new Date(now).toISOString();
      const has = held.length > 0;
      await c.query('BEGIN');
      const r = await c.query<{ deliveries: string | null }>(sql, [
        has ? held.map((h) => h.id) : null,
        has ? held.map((h) => h.receipt) : null,
        has ? held.map(() => 'null') : null,
        has ? held.map(() => now) : null,
        has ? held.map(() => at) : null,
        'grow',
        5,
        30_000,
        null,
        now,
        at,
        30_000,
        3,
        'scans',
      ]);
      const scans = await c.query<{ seq_scan: string }>(
        `SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = '${s}.messages'::regclass`,
      );
      await c.query('COMMIT');
      const claimed = r.rows[0]?.deliveries;
      held = claimed ? (JSON.parse(claimed) as Claimed[]) : [];
      return Number(scans.rows[0]?.seq_scan);
    };
    // A new deployment: a handful of messages, and enough steps for PL/pgSQL to cache generic plans.
    for (let r = 0; r < 10; r++) {
      await ferry.sendBatch(
        'grow',
        Array.from({ length: 5 }, (_, i) => ({ payload: { r, i } })),
      );
      await step();
    }
    // Then the table grows (finished messages kept for retention), with no ANALYZE in between, as in the
    // first minutes of a busy queue, before autovacuum has looked at it.
    for (let i = 0; i < FILLER; i += 1000) {
      await ferry.sendBatch(
        'kept',
        Array.from({ length: 1000 }, (_, j) => ({ payload: { i: i + j } })),
      );
    }
    await c.query(`UPDATE ${s}.messages SET state = 2, finished_at = sent_at WHERE queue = 'kept' AND state = 0`);
    for (let r = 0; r < 5; r++) {
      await ferry.sendBatch(
        'grow',
        Array.from({ length: 5 }, (_, i) => ({ payload: { r, i } })),
      );
      assert.equal(await step(), 0, `step ${r} after the growth scanned the messages table`);
    }
    assert.ok(held.length > 0, 'the last step claimed messages');
  });
});
