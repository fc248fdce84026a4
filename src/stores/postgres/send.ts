/**
 * Sending: every way in runs the `send` function (functions/send.sql), where dedupe, ordering keys and the
 * `sent` events are decided, except a lone message with no key or dedupe id: `send_one` inserts it, or the
 * statement `loneSendSql` where statements are prepared and the queue is known here. Single sends of one
 * turn share one statement and one commit, so 32 callers awaiting `send` at once cost one round trip, not
 * 32 transactions; a batch stays all-or-none with the sends it shares a statement with.
 */
import type pg from 'pg';
import { InvalidRequestError } from '../../core/errors.ts';
import type { FlowMessage, NewMessage, SendOutcome } from '../../store/store.ts';
import { type Database, unavailable } from './connection.ts';
import { type EventLog, hintPayload } from './events.ts';
import { backoffText, iso, messageColumns } from './rows.ts';
import { SameTick, settleEach } from './tick.ts';

interface SendCall {
  messages: NewMessage[];
  now: number;
  size: number;
  resolve: (out: SendOutcome[]) => void;
  reject: (error: unknown) => void;
}

interface SendRow {
  data: string | null;
  ids: string[] | null;
  deduplicated: boolean[] | null;
}

export class Sender {
  private readonly knownQueues = new Set<string>();
  private readonly sql: string;
  private readonly loneSql: string;
  private readonly oneSql: string;
  private readonly batches = new SameTick<SendCall>((calls) => void this.run(calls));

  constructor(
    private readonly db: Database,
    private readonly log: EventLog,
  ) {
    this.sql = `SELECT data, ids, deduplicated FROM ${db.s}.send(
      $1::text[], $2::text[], $3::int[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[],
      $10::text[], $11::int[], $12::int[], $13::int8, $14::text, $15::text[], $16::text, $17::boolean)`;
    this.loneSql = loneSendSql(db.s);
    this.oneSql = `SELECT ${db.s}.send_one($1::text, $2::text, $3::int, $4::int8, $5::text, $6::text, $7::int,
      $8::text, $9::int, $10::int, $11::int8, $12::text, $13::boolean, $14::text) AS data`;
  }

  send(messages: NewMessage[], now: number): Promise<SendOutcome[]> {
    return new Promise((resolve, reject) => {
      this.batches.add({ messages, now, size: messages.length, resolve, reject });
    });
  }

  private params(messages: NewMessage[], now: number): unknown[] {
    const queues = [...new Set(messages.map((m) => m.queue))].filter((q) => !this.knownQueues.has(q));
    return [...messageColumns(messages), now, iso(now), queues, this.log.origin, true];
  }

  /**
   * A lone message with no key or dedupe id (no arrays to bind and unnest): {@link loneSendSql} when this
   * connection prepares statements and the queue is known here; else `send_one`, which creates the queue if
   * need be, and which costs less to parse and plan, unprepared, than the statement's five parts (behind
   * PgBouncer in transaction mode): `npx tsx bench/pg-prepared.ts` had `send_one` at 0.67-0.99 ms a call
   * unprepared and the statement at 1.12-1.79.
   */
  private lone(m: NewMessage, now: number): Promise<{ data: string | null }> {
    const known = this.knownQueues.has(m.queue);
    const statement = known && this.db.prepares;
    const values: unknown[] = [m.id, m.queue, m.priority, m.runAt, m.payload, m.headers, m.maxAttempts, backoffText(m)];
    values.push(m.lease, m.timeout, now, iso(now));
    if (!statement) values.push(!known);
    values.push(this.log.origin);
    return this.db.call<{ data: string | null }>(statement ? this.loneSql : this.oneSql, values);
  }

  private async run(calls: SendCall[]): Promise<void> {
    const messages = calls.length === 1 ? (calls[0] as SendCall).messages : calls.flatMap((c) => c.messages);
    // The turn's sends share one `now`: the latest, so no message is stamped before its caller asked.
    const now = Math.max(...calls.map((c) => c.now));
    const lone = messages.length === 1 ? (messages[0] as NewMessage) : null;
    try {
      const row =
        lone !== null && lone.key === null && lone.dedupeId === null
          ? { ...(await this.lone(lone, now)), ids: null, deduplicated: null }
          : await this.db.call<SendRow>(this.sql, this.params(messages, now));
      for (const m of messages) this.knownQueues.add(m.queue);
      this.log.committed(row.data);
      settleEach(calls, outcomes(messages, row));
    } catch (error) {
      for (const call of calls) call.reject(error);
    }
  }

  /** A send inside the caller's transaction: its events are numbered once that transaction commits. */
  async sendIn(transaction: unknown, messages: NewMessage[], now: number): Promise<SendOutcome[]> {
    const client = transaction as pg.ClientBase;
    if (!client || typeof client !== 'object' || typeof client.query !== 'function') {
      throw new InvalidRequestError('transaction must be a pg client (pg.Client or a pg.PoolClient) inside BEGIN');
    }
    try {
      const row = await this.insertIn(client, messages, now, true);
      // The hint every commit sends (events.ts), delivered only if the caller commits; else the poll finds it.
      if (row.data !== null) {
        await client.query('SELECT pg_notify($1, $2)', [
          this.log.channel,
          hintPayload(
            true,
            0,
            '',
            messages.map((m) => m.queue),
          ),
        ]);
      }
      return outcomes(messages, row);
    } catch (error) {
      throw unavailable(error);
    }
  }

  /**
   * The `send` function on `client`, inside a transaction someone else commits; its queues are created as
   * needed. `callers`: the transaction is the caller's own, so its block is staged (never numbered inline:
   * it may stay open long) with no origin (this process never sees it commit, so woke no waiter for it).
   * Otherwise this process passes the answer's `data` to the log after the commit.
   */
  async insertIn(client: pg.ClientBase, messages: NewMessage[], now: number, callers = false): Promise<SendRow> {
    const queues = [...new Set(messages.map((m) => m.queue))];
    const origin = callers ? '' : this.log.origin;
    const r = await client.query<SendRow>(this.sql, [
      ...messageColumns(messages),
      now,
      iso(now),
      queues,
      origin,
      !callers,
    ]);
    return r.rows[0] as SendRow;
  }

  /**
   * A flow in one statement (`send_flow`): its nodes level by level, so a deduplicated node's subtree is left
   * out. Answers null for a node left out.
   */
  async sendFlow(nodes: FlowMessage[], now: number): Promise<(SendOutcome | null)[]> {
    const levels: number[] = [];
    for (const node of nodes) levels.push(node.parent === null ? 1 : (levels[node.parent] as number) + 1);
    const row = await this.db.call<SendRow & { skipped: boolean[] }>(
      `SELECT data, ids, deduplicated, skipped FROM ${this.db.s}.send_flow(
         $1::text[], $2::text[], $3::int[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[],
         $10::text[], $11::int[], $12::int[], $13::int[], $14::int[], $15::boolean[], $16::int[], $17::int8, $18::text,
         $19::text)`,
      [
        ...messageColumns(nodes),
        nodes.map((n) => (n.parent === null ? null : n.parent + 1)),
        nodes.map((n) => n.children),
        nodes.map((n) => n.ignoreFailures),
        levels,
        now,
        iso(now),
        this.log.origin,
      ],
    );
    this.log.committed(row.data);
    for (const node of nodes) this.knownQueues.add(node.queue);
    return nodes.map((_, i) =>
      row.skipped[i]
        ? null
        : { id: row.ids?.[i] ?? (nodes[i] as FlowMessage).id, deduplicated: row.deduplicated?.[i] === true },
    );
  }

  /** One copy per subscribed queue, in one statement (subscriptions read just before). */
  async publish(
    topic: string,
    message: Omit<NewMessage, 'id' | 'queue'>,
    newId: () => string,
    now: number,
  ): Promise<{ queue: string; id: string }[]> {
    const subs = await this.db.query<{ queue: string }>(
      `SELECT queue FROM ${this.db.s}.subscriptions WHERE topic = $1 ORDER BY queue`,
      [topic],
    );
    if (subs.rows.length === 0) return [];
    const messages = subs.rows.map((r) => ({ ...message, id: newId(), queue: r.queue }));
    const out = await this.send(messages, now);
    return out.map((o, i) => ({ queue: (messages[i] as NewMessage).queue, id: o.id }));
  }
}

/**
 * A lone send of a message with no key, dedupe id or parent, to a queue this process has seen (else
 * `send_one` creates the queue): what `send_one` does for it, as one statement. The message is inserted and
 * its `sent` event numbered at once when `may_number` lets it (nothing staged, the numbering lock free),
 * else staged, as `stage_events` does (functions/events.sql); the answer has stage_events' form. `n`
 * updates `event_seq` only when `g` took the lock; it reads the row as last committed (READ COMMITTED
 * follows a row updated since the statement's snapshot), and the lock's previous holder has committed by
 * the time the lock is free.
 * One statement rather than a PL/pgSQL call: a single awaited send is one call per transaction, and
 * PL/pgSQL sets each of its expressions up again in every transaction and runs each statement through an
 * executor of its own. The gain is a few percent: alternated in one process against the commit before
 * (scratch scripts, 2026-12-01), the database's processes spent 413 against 440 us of CPU per send
 * (medians of eight rounds), and sequential sends ran 0.94-1.14 times as fast (five runs, median 1.03);
 * `npx tsx bench/pg-prepared.ts` has the two within each other's noise on this machine.
 */
export function loneSendSql(s: string): string {
  return `WITH m AS (
      INSERT INTO ${s}.messages (id, seq, queue, state, priority, run_at, payload, headers, max_attempts,
        backoff, lease, timeout, sent_at)
      VALUES ($1::text, nextval('${s}.messages_seq'), $2::text, 0, $3::int, $4::int8, $5::text, $6::text, $7::int,
        $8::text, $9::int, $10::int, $11::int8)
      RETURNING '[' || ${s}.event('sent', queue, id, $12::text, NULL, ',"runAt":' || run_at) || ']' AS events),
    g AS MATERIALIZED (SELECT ${s}.may_number() AS inline),
    n AS (UPDATE ${s}.event_seq SET last = last + 1 WHERE (SELECT g.inline FROM g) RETURNING last),
    e AS (INSERT INTO ${s}.events (seq, n, at, origin, data)
          SELECT n.last, 1, $11::int8, $13::text, m.events FROM n, m RETURNING seq),
    i AS (INSERT INTO ${s}.event_inbox (at, n, origin, data)
          SELECT $11::int8, 1, $13::text, m.events FROM m WHERE NOT (SELECT g.inline FROM g))
    SELECT CASE WHEN (SELECT g.inline FROM g) THEN '{"seq":' || (SELECT e.seq FROM e) || ',"events":' || m.events || '}'
                ELSE m.events END AS data
      FROM m`;
}

function outcomes(messages: NewMessage[], row: SendRow): SendOutcome[] {
  if (row.ids === null) return messages.map((m) => ({ id: m.id, deduplicated: false }));
  const dedup = row.deduplicated as boolean[];
  return row.ids.map((id, i) => ({ id, deduplicated: dedup[i] === true }));
}
