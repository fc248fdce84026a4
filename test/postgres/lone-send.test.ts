/**
 * A lone send's statement (send.ts, `loneSendSql`) keeps the event log's rule that `stage_events` keeps for
 * every other writer (`may_number`, functions/events.sql): its block is numbered at once only when nothing
 * is staged and the numbering lock is free; otherwise it is staged for the sequencer, and the sender never
 * waits for the lock. The rule's cases run on a schema with no Ferry process attached, so no sequencer
 * numbers anything behind the test's back; the columns it writes are checked through the SDK too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { open } from '../../src/index.ts';
import { loneSendSql } from '../../src/stores/postgres/send.ts';
import { testSchema } from '../support/postgres.ts';

describe('PostgreSQL: a lone send numbers its block or stages it, as every writer does', () => {
  let schema: Awaited<ReturnType<typeof testSchema>>;
  let s: string;
  let c: pg.Client;
  let other: pg.Client;
  let n = 0;

  before(async () => {
    schema = await testSchema('lone_send');
    s = `"${schema.schema}"`;
    await (await open(schema.url)).close();
    const url = schema.url.replace(/[?&]schema=[^&]*/, '');
    c = new pg.Client({ connectionString: url });
    other = new pg.Client({ connectionString: url });
    await c.connect();
    await other.connect();
    await c.query(`INSERT INTO ${s}.queues (name) VALUES ('lone')`);
  });

  after(async () => {
    await c?.end();
    await other?.end();
    await schema?.drop();
  });

  /** The statement as the store runs it: named, on a connection that has prepared it. */
  async function send(): Promise<{ id: string; data: string; now: number }> {
    const id = `lone-${++n}`;
    const now = 1_800_000_000_000 + n;
    const r = await c.query<{ data: string }>({
      name: 'lone',
      text: loneSendSql(s),
      values: [
        id,
        'lone',
        7,
        now + 5000,
        `{"n":${n}}`,
        '{"h":"v"}',
        4,
        '{"type":"fixed","delay":10}',
        60_000,
        90_000,
        now,
        new Date(now).toISOString(),
        'test-origin',
      ],
    });
    return { id, data: r.rows[0]?.data as string, now };
  }

  const counts = async () => {
    const r = await other.query<{ last: string; events: string; inbox: string }>(
      `SELECT (SELECT last FROM ${s}.event_seq) AS last, (SELECT count(*) FROM ${s}.events) AS events,
              (SELECT count(*) FROM ${s}.event_inbox) AS inbox`,
    );
    const row = r.rows[0] as { last: string; events: string; inbox: string };
    return { last: Number(row.last), events: Number(row.events), inbox: Number(row.inbox) };
  };

  it('numbers its block when nothing is staged and the lock is free, writing what send_one writes', async () => {
    const before = await counts();
    const { id, data, now } = await send();
    const at = new Date(now).toISOString();
    const event = { type: 'sent', queue: 'lone', id, at, runAt: now + 5000 };
    assert.deepEqual(JSON.parse(data), { seq: before.last + 1, events: [event] });
    assert.deepEqual(await counts(), { last: before.last + 1, events: before.events + 1, inbox: 0 });
    const block = await other.query(`SELECT n, at::float8 AS at, origin, data FROM ${s}.events WHERE seq = $1`, [
      before.last + 1,
    ]);
    assert.deepEqual(block.rows[0], { n: 1, at: now, origin: 'test-origin', data: JSON.stringify([event]) });
    // The same message through send_one, on its own schema's function: every column alike but id and seq.
    const twin = `${id}-twin`;
    await other.query(
      `SELECT ${s}.send_one($1, 'lone', 7, $2::int8, $3, '{"h":"v"}', 4, '{"type":"fixed","delay":10}', 60000, 90000,
         $4::int8, $5, false, 'test-origin')`,
      [twin, now + 5000, `{"n":${n}}`, now, at],
    );
    const rows = await other.query(`SELECT * FROM ${s}.messages WHERE id = ANY($1) ORDER BY seq`, [[id, twin]]);
    const [mine, theirs] = rows.rows.map(({ id: _id, seq: _seq, ...rest }) => rest);
    assert.deepEqual(mine, theirs);
    assert.equal(mine?.state, 0);
    assert.equal(mine?.priority, 7);
  });

  it('stages its block behind one already staged, so it is not numbered ahead of it', async () => {
    await other.query(`INSERT INTO ${s}.event_inbox (at, n, origin, data) VALUES (0, 1, 'earlier', '[]')`);
    const before = await counts();
    const { id, data } = await send();
    const staged = JSON.parse(data) as { type: string; id: string }[];
    assert.ok(Array.isArray(staged), 'answered as a staged block');
    assert.deepEqual(
      staged.map((e) => [e.type, e.id]),
      [['sent', id]],
    );
    assert.deepEqual(await counts(), { last: before.last, events: before.events, inbox: 2 });
    await other.query(`DELETE FROM ${s}.event_inbox`);
  });

  it("stages its block without waiting while the sequencer's pass holds the numbering lock", async () => {
    await other.query('BEGIN');
    const pass = await other.query<{ got: boolean }>(`SELECT got FROM ${s}.sequence_events(0)`);
    assert.equal(pass.rows[0]?.got, true, 'the sequencer took the lock');
    try {
      const { data } = await send();
      assert.ok(Array.isArray(JSON.parse(data)), 'answered as a staged block');
    } finally {
      await other.query('COMMIT');
    }
    assert.equal((await counts()).inbox, 1);
    await other.query(`DELETE FROM ${s}.event_inbox`);
  });

  it('holds the numbering lock to its commit once it numbered its block', async () => {
    await c.query('BEGIN');
    try {
      const { data } = await send();
      assert.equal(typeof (JSON.parse(data) as { seq: number }).seq, 'number', 'numbered');
      const pass = await other.query<{ got: boolean }>(`SELECT got FROM ${s}.sequence_events(0)`);
      assert.equal(pass.rows[0]?.got, false, 'the sequencer finds the lock taken');
    } finally {
      await c.query('COMMIT');
    }
    const pass = await other.query<{ got: boolean }>(`SELECT got FROM ${s}.sequence_events(0)`);
    assert.equal(pass.rows[0]?.got, true, 'free after the commit');
  });

  it('through the SDK: a lone send with every option reads back as sent, on the statement and on send_one', async () => {
    const ferry = await open(schema.url);
    try {
      const options = {
        priority: 3,
        delay: '1h',
        maxAttempts: 6,
        backoff: { type: 'fixed' as const, delay: '2s' },
        lease: '45s',
        timeout: '2m',
        headers: { a: 'b' },
      };
      // The first send to a queue this process has not seen runs send_one (which creates the queue); the
      // second, the statement.
      const first = await ferry.send('sdk-lone', { i: 1 }, options);
      const second = await ferry.send('sdk-lone', { i: 2 }, options);
      const statements = await other.query<{ id: string; seq: string }>(
        `SELECT id, seq FROM ${s}.messages WHERE queue = 'sdk-lone' ORDER BY seq`,
      );
      assert.deepEqual(
        statements.rows.map((r) => r.id),
        [first.id, second.id],
      );
      const [a, b] = await Promise.all([ferry.get(first.id), ferry.get(second.id)]);
      assert.ok(a && b);
      const strip = ({ id: _id, payload: _p, sentAt: _s, runAt: _r, ...rest }: typeof a) => rest;
      assert.deepEqual(strip(b), strip(a));
      assert.equal(b.priority, 3);
      assert.equal(b.maxAttempts, 6);
      assert.deepEqual(b.headers, { a: 'b' });
      assert.equal(b.state, 'delayed');
      assert.deepEqual(b.payload, { i: 2 });
      // The columns the record does not show, as each path wrote them.
      const columns = await other.query(
        `SELECT id, priority, max_attempts, backoff, lease, timeout, headers, run_at - sent_at AS delay
           FROM ${s}.messages WHERE queue = 'sdk-lone' ORDER BY seq`,
      );
      for (const row of columns.rows) {
        assert.deepEqual(
          { ...row, id: undefined, backoff: JSON.parse(row.backoff), headers: JSON.parse(row.headers) },
          {
            id: undefined,
            priority: 3,
            max_attempts: 6,
            backoff: { type: 'fixed', delay: 2000, jitter: false, max: 3_600_000 },
            lease: 45_000,
            timeout: 120_000,
            headers: { a: 'b' },
            delay: '3600000',
          },
          `message ${row.id}`,
        );
      }
    } finally {
      await ferry.close();
    }
  });
});
