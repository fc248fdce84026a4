/**
 * Inspection and administration. Reads (get, list, stats, settings) are queries here; changes of state
 * (cancel, retry, redrive, purge) are functions of functions/admin.sql, so their rules sit beside the hot
 * path's and take locks in the same order.
 */
import type { MessageState, QueueSettings, QueueStats } from '../../core/types.ts';
import { DEFAULT_SETTINGS } from '../../core/validate.ts';
import { QUEUED, STATE_NAMES } from '../../store/constants.ts';
import type { ListQuery, MessageRecord, RecordPage, SettingsPatch } from '../../store/store.ts';
import type { Database } from './connection.ts';
import type { EventLog } from './events.ts';
import { iso, mergeSettings, type Row, selectRow, toRecord } from './rows.ts';

export class Admin {
  private readonly select: string;

  constructor(
    private readonly db: Database,
    private readonly log: EventLog,
  ) {
    this.select = selectRow(db.s);
  }

  async get(id: string): Promise<MessageRecord | null> {
    const r = await this.db.query<Row>(`${this.select} WHERE m.id = $1`, [id]);
    return r.rows[0] ? toRecord(r.rows[0]) : null;
  }

  /** Runs an admin function of one message that stages events, then reads the message as it now is. */
  private async change(fn: string, id: string, now: number): Promise<MessageRecord | null> {
    const row = await this.db.call<{ data: string | null }>(`SELECT data FROM ${this.db.s}.${fn}($1, $2, $3, $4, $5)`, [
      id,
      now,
      iso(now),
      DEFAULT_SETTINGS.maxAttempts,
      this.log.origin,
    ]);
    this.log.committed(row.data);
    return this.get(id);
  }

  cancel(id: string, now: number): Promise<MessageRecord | null> {
    return this.change('cancel_message', id, now);
  }

  retry(id: string, now: number): Promise<MessageRecord | null> {
    return this.change('retry_message', id, now);
  }

  async redrive(queue: string, now: number): Promise<number> {
    const row = await this.db.call<{ moved: number; data: string | null }>(
      `SELECT moved, data FROM ${this.db.s}.redrive_queue($1, $2, $3, $4)`,
      [queue, now, iso(now), this.log.origin],
    );
    this.log.committed(row.data);
    return row.moved;
  }

  async purge(queue: string, states: MessageState[], now: number): Promise<number> {
    const codes = states.filter((st) => st !== 'waiting' && st !== 'delayed').map((st) => STATE_NAMES.indexOf(st));
    const row = await this.db.call<{ purged: number; data: string | null }>(
      `SELECT purged, data FROM ${this.db.s}.purge_queue($1, $2::int[], $3, $4, $5, $6, $7)`,
      [queue, codes, states.includes('waiting'), states.includes('delayed'), now, iso(now), this.log.origin],
    );
    this.log.committed(row.data);
    return row.purged;
  }

  /** The children of `id` in send order (through messages_parent); null when no message `id` exists. */
  async children(id: string): Promise<MessageRecord[] | null> {
    const r = await this.db.query<Row>(`${this.select} WHERE m.parent_id = $1 ORDER BY m.seq`, [id]);
    if (r.rows.length === 0) {
      const exists = await this.db.query(`SELECT 1 FROM ${this.db.s}.messages WHERE id = $1`, [id]);
      if (exists.rows.length === 0) return null;
    }
    return r.rows.map(toRecord);
  }

  async list(queue: string, q: ListQuery, now: number): Promise<RecordPage> {
    const { text, values } = listQuery(this.db.s, queue, q, now);
    const r = await this.db.query<Row>(text, values);
    const last = r.rows[r.rows.length - 1];
    return {
      records: r.rows.map(toRecord),
      cursor: r.rows.length === q.limit && last ? String(last.seq) : null,
    };
  }

  async stats(queue: string | null, now: number): Promise<QueueStats[]> {
    const { s } = this.db;
    const names =
      queue === null
        ? (await this.db.query<{ name: string }>(`SELECT name FROM ${s}.queues ORDER BY name`)).rows.map((r) => r.name)
        : [queue];
    if (names.length === 0) return [];
    const r = await this.db.query<{
      name: string;
      paused: boolean | null;
      state: number;
      n: string;
      later: string;
    }>(statsSql(s), [names, now]);
    const byName = new Map<string, QueueStats>();
    for (const name of names) {
      byName.set(name, {
        name,
        pending: 0,
        waiting: 0,
        delayed: 0,
        active: 0,
        completed: 0,
        dead: 0,
        cancelled: 0,
        paused: false,
      });
    }
    for (const row of r.rows) {
      const st = byName.get(row.name) as QueueStats;
      st.paused = row.paused ?? false;
      const n = Number(row.n);
      if (row.state === QUEUED) {
        st.delayed = Number(row.later);
        st.waiting = n - st.delayed;
      } else st[STATE_NAMES[row.state] as 'active' | 'completed' | 'dead' | 'cancelled' | 'pending'] = n;
    }
    return names.map((name) => byName.get(name) as QueueStats);
  }

  async settings(queue: string): Promise<QueueSettings> {
    const r = await this.db.query<{ settings: Partial<QueueSettings>; paused: boolean }>(
      `SELECT settings, paused FROM ${this.db.s}.queues WHERE name = $1`,
      [queue],
    );
    const row = r.rows[0];
    return mergeSettings(row?.settings ?? null, row?.paused ?? false);
  }

  async configure(queue: string, patch: SettingsPatch): Promise<QueueSettings> {
    const { paused, ...rest } = patch;
    const row = await this.db.call<{ settings: Partial<QueueSettings>; paused: boolean }>(
      `SELECT settings, paused FROM ${this.db.s}.configure_queue($1, $2::jsonb, $3)`,
      [queue, JSON.stringify(rest), paused === undefined ? null : paused],
    );
    return mergeSettings(row.settings, row.paused);
  }

  async subscribe(topic: string, queue: string): Promise<void> {
    await this.db.call(
      `WITH q AS (INSERT INTO ${this.db.s}.queues (name) VALUES ($2) ON CONFLICT (name) DO NOTHING)
       INSERT INTO ${this.db.s}.subscriptions (topic, queue) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
      [topic, queue],
    );
  }

  async unsubscribe(topic: string, queue: string): Promise<void> {
    await this.db.query(`DELETE FROM ${this.db.s}.subscriptions WHERE topic = $1 AND queue = $2`, [topic, queue]);
  }

  async subscriptions(topic: string): Promise<string[]> {
    const r = await this.db.query<{ queue: string }>(
      `SELECT queue FROM ${this.db.s}.subscriptions WHERE topic = $1 ORDER BY queue`,
      [topic],
    );
    return r.rows.map((row) => row.queue);
  }
}

/**
 * A page of one queue's messages in send order, after the cursor's seq. No index holds every state (each
 * state's rows are in the partial index of that state, see migration 012), so the state is written into the
 * text, where the planner can match it to its index, and a page of every state merges a page of each.
 */
export function listQuery(s: string, queue: string, q: ListQuery, now: number): { text: string; values: unknown[] } {
  const values: unknown[] = [queue, q.cursor === null ? 0 : Number(q.cursor), q.limit];
  const page = (where: string) =>
    `${selectRow(s)} WHERE m.queue = $1 AND m.seq > $2 AND ${where} ORDER BY m.seq LIMIT $3`;
  const { state } = q;
  if (state === 'waiting' || state === 'delayed') {
    values.push(now);
    return { text: page(`m.state = 0 AND m.run_at ${state === 'waiting' ? '<=' : '>'} $4`), values };
  }
  if (state === 'active') return { text: page('m.state = 1'), values };
  if (state !== null) return { text: page(`m.state >= 2 AND m.state = ${STATE_NAMES.indexOf(state)}`), values };
  const text = `SELECT * FROM ((${page('m.state = 0')}) UNION ALL (${page('m.state = 1')})
    UNION ALL (${page('m.state >= 2')})) p ORDER BY p.seq LIMIT $3`;
  return { text, values };
}

/** Each queue's count of messages by state (`$1` the queues' names, `$2` now), and whether it is paused. */
export function statsSql(s: string): string {
  return `SELECT c.name, q.paused, c.state, c.n, c.later
    FROM ${s}.queue_counts($1::text[], $2::int8) c LEFT JOIN ${s}.queues q ON q.name = c.name`;
}
