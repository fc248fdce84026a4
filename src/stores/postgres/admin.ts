/** Inspection and administration: single messages by id, listing, stats, settings, redrive, purge, topics. */
import type pg from 'pg';
import type { MessageState, QueueSettings, QueueStats } from '../../core/types.ts';
import type { ListQuery, MessageRecord, PendingEvent, RecordPage, SettingsPatch } from '../../store/store.ts';
import { query } from './connection.ts';
import { distinctKeys, lockKeys, unblockNext } from './keys.ts';
import { ACTIVE, CANCELLED, DEAD, effective, mergeSettings, QUEUED, type Row, STATE_NAMES, toRecord } from './rows.ts';
import type { Ctx } from './write.ts';

type Tx = <T>(fn: (client: pg.PoolClient, events: PendingEvent[]) => Promise<T>) => Promise<T>;

const BATCH = 1000;

export class Admin {
  private readonly select: string;

  constructor(
    private readonly pool: pg.Pool,
    private readonly ctx: Ctx,
    private readonly tx: Tx,
  ) {
    this.select = `SELECT ${effective(ctx.s).select} FROM ${ctx.s}.messages m`;
  }

  private async row(client: pg.ClientBase | pg.Pool, id: string): Promise<Row | null> {
    const r = await client.query<Row>(`${this.select} WHERE m.id = $1`, [id]);
    return r.rows[0] ?? null;
  }

  async get(id: string): Promise<MessageRecord | null> {
    const r = await query<Row>(this.pool, `${this.select} WHERE m.id = $1`, [id]);
    return r.rows[0] ? toRecord(r.rows[0]) : null;
  }

  cancel(id: string, now: number): Promise<MessageRecord | null> {
    const { s } = this.ctx;
    return this.tx(async (client, events) => {
      for (;;) {
        const row = await this.row(client, id);
        if (!row) return null;
        if (row.state === QUEUED) {
          // The key's lock comes before the row's, as everywhere a key's head may change.
          const keys = distinctKeys([row]);
          await lockKeys(client, this.ctx.s, keys);
          const r = await client.query<{ attempts: number }>(
            `UPDATE ${s}.messages m SET state = 4, finished_at = $2, purge_at = $2 + ${effective(s).retention},
                    receipt = NULL, lease_until = NULL, blocked = false
              WHERE m.id = $1 AND m.state = 0 RETURNING m.attempts`,
            [id, now],
          );
          if (!r.rows[0]) continue;
          await unblockNext(client, s, keys);
          events.push({ type: 'cancelled', queue: row.queue, id, at: now, attempt: r.rows[0].attempts });
        } else if (row.state === ACTIVE) {
          const r = await client.query(`UPDATE ${s}.messages SET cancel_requested = true WHERE id = $1 AND state = 1`, [
            id,
          ]);
          if (r.rowCount === 0) continue;
        } else return toRecord(row);
        return toRecord((await this.row(client, id)) as Row);
      }
    });
  }

  retry(id: string, now: number): Promise<MessageRecord | null> {
    const { s } = this.ctx;
    return this.tx(async (client, events) => {
      for (;;) {
        const row = await this.row(client, id);
        if (!row) return null;
        if (row.state === DEAD || row.state === CANCELLED) {
          const moved = await this.revive(client, [row], [DEAD, CANCELLED], now, events);
          if (moved === 0) continue;
        } else if (row.state === QUEUED && Number(row.run_at) > now) {
          await client.query(`UPDATE ${s}.messages SET run_at = $2 WHERE id = $1 AND state = 0`, [id, now]);
        } else return toRecord(row);
        return toRecord((await this.row(client, id)) as Row);
      }
    });
  }

  /** Makes finished rows queued again with fresh attempts; a keyed one waits behind its key's unfinished ones. */
  private async revive(
    client: pg.ClientBase,
    rows: { id: string; queue: string; key: string | null }[],
    from: number[],
    now: number,
    events: PendingEvent[],
  ): Promise<number> {
    const { s } = this.ctx;
    const keys = distinctKeys(rows);
    await lockKeys(client, this.ctx.s, keys);
    const r = await client.query<{ id: string; queue: string }>(
      `UPDATE ${s}.messages SET state = 0, blocked = key IS NOT NULL, attempts = 0, run_at = $2, result = NULL,
              finished_at = NULL, purge_at = NULL, cancel_requested = false, progress = NULL
        WHERE id = ANY($1::text[]) AND state = ANY($3::int[])
       RETURNING id, queue, seq`,
      [rows.map((row) => row.id), now, from],
    );
    await unblockNext(client, s, keys);
    const sorted = r.rows.sort((a, b) => Number((a as { seq?: string }).seq) - Number((b as { seq?: string }).seq));
    for (const row of sorted)
      events.push({ type: 'retrying', queue: row.queue, id: row.id, at: now, attempt: 0, runAt: now });
    return r.rows.length;
  }

  redrive(queue: string, now: number): Promise<number> {
    const { s } = this.ctx;
    return this.tx(async (client, events) => {
      let moved = 0;
      for (;;) {
        const r = await client.query<{ id: string; queue: string; key: string | null }>(
          `SELECT id, queue, key FROM ${s}.messages WHERE queue = $1 AND state = 3 ORDER BY seq LIMIT ${BATCH}`,
          [queue],
        );
        if (r.rows.length === 0) return moved;
        moved += await this.revive(client, r.rows, [DEAD], now, events);
        if (r.rows.length < BATCH) return moved;
      }
    });
  }

  purge(queue: string, states: MessageState[], now: number): Promise<number> {
    const { s } = this.ctx;
    return this.tx(async (client) => {
      let purged = 0;
      for (const state of states) {
        const code = state === 'waiting' || state === 'delayed' ? QUEUED : STATE_NAMES.indexOf(state);
        const due = state === 'waiting' ? 'AND run_at <= $3' : state === 'delayed' ? 'AND run_at > $3' : '';
        const params = due ? [queue, code, now] : [queue, code];
        // Removing a key's deliverable message lets the next one through: lock those keys first.
        const heads = await client.query<{ queue: string; key: string }>(
          `SELECT DISTINCT queue, key FROM ${s}.messages
            WHERE queue = $1 AND state = $2 ${due} AND key IS NOT NULL AND NOT blocked`,
          params,
        );
        await lockKeys(client, this.ctx.s, heads.rows);
        const r = await client.query<{ queue: string; key: string | null; blocked: boolean }>(
          `DELETE FROM ${s}.messages WHERE queue = $1 AND state = $2 ${due} RETURNING queue, key, blocked`,
          params,
        );
        purged += r.rowCount ?? 0;
        const keys = distinctKeys([...heads.rows, ...r.rows.filter((row) => !row.blocked)]);
        await lockKeys(client, this.ctx.s, keys);
        await unblockNext(client, s, keys);
      }
      return purged;
    });
  }

  async list(queue: string, q: ListQuery, now: number): Promise<RecordPage> {
    const after = q.cursor === null ? 0 : Number(q.cursor);
    let where = 'm.queue = $1 AND m.seq > $2';
    const params: unknown[] = [queue, after, q.limit];
    if (q.state === 'waiting') {
      where += ' AND m.state = 0 AND m.run_at <= $4';
      params.push(now);
    } else if (q.state === 'delayed') {
      where += ' AND m.state = 0 AND m.run_at > $4';
      params.push(now);
    } else if (q.state !== null) {
      where += ' AND m.state = $4';
      params.push(STATE_NAMES.indexOf(q.state));
    }
    const r = await query<Row>(this.pool, `${this.select} WHERE ${where} ORDER BY m.seq LIMIT $3`, params);
    const last = r.rows[r.rows.length - 1];
    return {
      records: r.rows.map(toRecord),
      cursor: r.rows.length === q.limit && last ? String(last.seq) : null,
    };
  }

  async stats(queue: string | null, now: number): Promise<QueueStats[]> {
    const { s } = this.ctx;
    const names =
      queue === null
        ? (await query<{ name: string }>(this.pool, `SELECT name FROM ${s}.queues ORDER BY name`)).rows.map(
            (r) => r.name,
          )
        : [queue];
    if (names.length === 0) return [];
    const r = await query<{ name: string; paused: boolean | null; state: number | null; n: string; later: string }>(
      this.pool,
      `SELECT n.name, q.paused, c.state, coalesce(c.n, 0) AS n, coalesce(c.later, 0) AS later
         FROM unnest($1::text[]) AS n(name)
         LEFT JOIN ${s}.queues q ON q.name = n.name
         LEFT JOIN LATERAL (SELECT m.state, count(*) AS n, count(*) FILTER (WHERE m.run_at > $2) AS later
                              FROM ${s}.messages m WHERE m.queue = n.name GROUP BY m.state) c ON true`,
      [names, now],
    );
    const byName = new Map<string, QueueStats>();
    for (const name of names) {
      byName.set(name, { name, waiting: 0, delayed: 0, active: 0, completed: 0, dead: 0, cancelled: 0, paused: false });
    }
    for (const row of r.rows) {
      const st = byName.get(row.name) as QueueStats;
      st.paused = row.paused ?? false;
      if (row.state === null) continue;
      const n = Number(row.n);
      if (row.state === QUEUED) {
        st.delayed = Number(row.later);
        st.waiting = n - st.delayed;
      } else st[STATE_NAMES[row.state] as 'active' | 'completed' | 'dead' | 'cancelled'] = n;
    }
    return names.map((name) => byName.get(name) as QueueStats);
  }

  async settings(queue: string): Promise<QueueSettings> {
    const r = await query<{ settings: Partial<QueueSettings>; paused: boolean }>(
      this.pool,
      `SELECT settings, paused FROM ${this.ctx.s}.queues WHERE name = $1`,
      [queue],
    );
    const row = r.rows[0];
    return mergeSettings(row?.settings ?? null, row?.paused ?? false);
  }

  configure(queue: string, patch: SettingsPatch): Promise<QueueSettings> {
    const { s } = this.ctx;
    return this.tx(async (client) => {
      const { paused, ...rest } = patch;
      const r = await client.query<{ settings: Partial<QueueSettings>; paused: boolean }>(
        `INSERT INTO ${s}.queues AS q (name, settings, paused) VALUES ($1, $2::jsonb, coalesce($3, false))
         ON CONFLICT (name) DO UPDATE SET settings = q.settings || excluded.settings,
                                          paused = coalesce($3, q.paused)
         RETURNING settings, paused`,
        [queue, JSON.stringify(rest), paused === undefined ? null : paused],
      );
      const row = r.rows[0] as { settings: Partial<QueueSettings>; paused: boolean };
      return mergeSettings(row.settings, row.paused);
    });
  }

  subscribe(topic: string, queue: string): Promise<void> {
    const { s } = this.ctx;
    return this.tx(async (client) => {
      await client.query(`INSERT INTO ${s}.queues (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, [queue]);
      await client.query(`INSERT INTO ${s}.subscriptions (topic, queue) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
        topic,
        queue,
      ]);
    });
  }

  async unsubscribe(topic: string, queue: string): Promise<void> {
    await query(this.pool, `DELETE FROM ${this.ctx.s}.subscriptions WHERE topic = $1 AND queue = $2`, [topic, queue]);
  }

  async subscriptions(topic: string): Promise<string[]> {
    const sql = `SELECT queue FROM ${this.ctx.s}.subscriptions WHERE topic = $1 ORDER BY queue`;
    const r = await query<{ queue: string }>(this.pool, sql, [topic]);
    return r.rows.map((row) => row.queue);
  }

  /** Finished messages past retention and events past `eventRetention`, a bounded batch of each. */
  async removeExpired(client: pg.ClientBase, now: number, eventRetention: number): Promise<number> {
    const { s } = this.ctx;
    const r = await client.query(
      `DELETE FROM ${s}.messages WHERE id IN (
         SELECT id FROM ${s}.messages WHERE purge_at IS NOT NULL AND purge_at <= $1 LIMIT ${BATCH})`,
      [now],
    );
    // Only the oldest blocks are looked at: `at` grows with seq, so this never scans the whole log.
    await client.query(
      `DELETE FROM ${s}.events WHERE seq IN (
         SELECT o.seq FROM (SELECT seq, at FROM ${s}.events ORDER BY seq LIMIT ${BATCH}) o WHERE o.at < $1)`,
      [now - eventRetention],
    );
    return r.rowCount ?? 0;
  }
}
