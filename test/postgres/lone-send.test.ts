/**
 * A lone send's statement (send.ts, `loneSendSql`) keeps the event log's rule that `stage_events` keeps for
 * every other writer: its block is numbered at once only when nothing is staged and the numbering lock is
 * free; otherwise it is staged for the sequencer, and the sender never waits for the lock. Run on a schema
 * with no Ferry process attached, so no sequencer numbers anything behind the test's back.
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

  async function send(): Promise<{ id: string; data: string }> {
    const id = `lone-${++n}`;
    const now = Date.now();
    const r = await c.query<{ data: string }>({
      name: 'lone',
      text: loneSendSql(s),
      values: [
        id,
        'lone',
        0,
        now,
        `{"n":${n}}`,
        null,
        null,
        null,
        null,
        null,
        now,
        new Date(now).toISOString(),
        'test',
      ],
    });
    return { id, data: r.rows[0]?.data as string };
  }

  const counts = async () => {
    const r = await other.query<{ last: string; events: string; inbox: string }>(
      `SELECT (SELECT last FROM ${s}.event_seq) AS last, (SELECT count(*) FROM ${s}.events) AS events,
              (SELECT count(*) FROM ${s}.event_inbox) AS inbox`,
    );
    const row = r.rows[0] as { last: string; events: string; inbox: string };
    return { last: Number(row.last), events: Number(row.events), inbox: Number(row.inbox) };
  };

  it('numbers its block when nothing is staged and the lock is free', async () => {
    const before = await counts();
    const { id, data } = await send();
    const answer = JSON.parse(data) as { seq: number; events: { type: string; id: string; queue: string }[] };
    assert.equal(answer.seq, before.last + 1);
    assert.deepEqual(
      answer.events.map((e) => [e.type, e.queue, e.id]),
      [['sent', 'lone', id]],
    );
    assert.deepEqual(await counts(), { last: before.last + 1, events: before.events + 1, inbox: 0 });
    const row = await other.query(`SELECT state, queue, payload FROM ${s}.messages WHERE id = $1`, [id]);
    assert.deepEqual(row.rows[0], { state: 0, queue: 'lone', payload: `{"n":${n}}` });
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

  it('stages its block without waiting while another transaction holds the numbering lock', async () => {
    await other.query('BEGIN');
    await other.query("SELECT pg_advisory_xact_lock(hashtext('ferry.sequence'), hashtext($1))", [s]);
    try {
      const { data } = await send();
      assert.ok(Array.isArray(JSON.parse(data)), 'answered as a staged block');
    } finally {
      await other.query('COMMIT');
    }
    assert.equal((await counts()).inbox, 1);
    await other.query(`DELETE FROM ${s}.event_inbox`);
    // With the lock free again, the next lone send numbers its own block.
    const { data } = await send();
    assert.equal(typeof (JSON.parse(data) as { seq: number }).seq, 'number');
  });
});
