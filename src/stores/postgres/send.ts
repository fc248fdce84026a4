/**
 * Sending: every way in runs the `send` function (functions/send.sql), where dedupe, ordering keys and the
 * `sent` events are decided. Single sends of one turn share one statement and one commit, so 32 callers
 * awaiting `send` at once cost one round trip, not 32 transactions; a batch stays all-or-none with the
 * sends it shares a statement with.
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
  private readonly oneSql: string;
  private readonly batches = new SameTick<SendCall>((calls) => void this.run(calls));

  constructor(
    private readonly db: Database,
    private readonly log: EventLog,
  ) {
    this.sql = `SELECT data, ids, deduplicated FROM ${db.s}.send(
      $1::text[], $2::text[], $3::int[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[],
      $10::text[], $11::int[], $12::int[], $13::int8, $14::text, $15::text[], $16::text, $17::boolean)`;
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

  /** A lone message with no key or dedupe id, as `send_one` takes it (no arrays to bind and unnest). */
  private oneParams(m: NewMessage, now: number): unknown[] {
    const newQueue = !this.knownQueues.has(m.queue);
    return [
      m.id,
      m.queue,
      m.priority,
      m.runAt,
      m.payload,
      m.headers,
      m.maxAttempts,
      backoffText(m),
      m.lease,
      m.timeout,
      now,
      iso(now),
      newQueue,
      this.log.origin,
    ];
  }

  private async run(calls: SendCall[]): Promise<void> {
    const messages = calls.length === 1 ? (calls[0] as SendCall).messages : calls.flatMap((c) => c.messages);
    // The turn's sends share one `now`: the latest, so no message is stamped before its caller asked.
    const now = Math.max(...calls.map((c) => c.now));
    const lone = messages.length === 1 ? (messages[0] as NewMessage) : null;
    try {
      const row =
        lone !== null && lone.key === null && lone.dedupeId === null
          ? {
              ...(await this.db.call<{ data: string | null }>(this.oneSql, this.oneParams(lone, now))),
              ids: null,
              deduplicated: null,
            }
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

function outcomes(messages: NewMessage[], row: SendRow): SendOutcome[] {
  if (row.ids === null) return messages.map((m) => ({ id: m.id, deduplicated: false }));
  const dedup = row.deduplicated as boolean[];
  return row.ids.map((id, i) => ({ id, deduplicated: dedup[i] === true }));
}
