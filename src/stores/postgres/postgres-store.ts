/**
 * The PostgreSQL store: any number of processes on any number of machines share one schema. Every method is
 * one transaction of batched statements; events are written to the log in that same transaction.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { InvalidRequestError } from '../../core/errors.ts';
import type { FerryEvent, MessageState, QueueSettings, QueueStats } from '../../core/types.ts';
import type {
  Claimed,
  Completion,
  Failure,
  ListQuery,
  MessageRecord,
  NewMessage,
  PendingEvent,
  RecordPage,
  SendOutcome,
  SettingsPatch,
  Settled,
  Store,
  StoreContext,
} from '../../store/store.ts';
import { Admin } from './admin.ts';
import { query, transaction, unavailable } from './connection.ts';
import { EventLog } from './events.ts';
import { migrate, quoteIdent } from './migrate.ts';
import { mergeSettings, STATE_NAMES } from './rows.ts';
import { type Ctx, completeRows, ensureQueues, expire, failRows, insertMessages } from './write.ts';

export interface PostgresStoreOptions {
  pool: pg.Pool;
  /** Whether `close` ends the pool (it does when the store created it). */
  ownsPool: boolean;
  schema: string;
  listen: pg.ClientConfig;
  /** Fallback poll for other processes' events (ms). Default 250. */
  pollInterval?: number;
}

interface ClaimRow {
  seq: string;
  id: string;
  payload: string;
  attempts: number;
  receipt: string;
  priority: number;
  run_at: string;
  key: string | null;
  headers: string | null;
  sent_at: string;
  lease_until: string;
}

export class PostgresStore implements Store {
  readonly capabilities = { shared: true, transactionalSend: true } as const;
  private readonly pool: pg.Pool;
  private readonly ctx: Ctx;
  private readonly origin = randomUUID();
  private readonly knownQueues = new Set<string>();
  private context!: StoreContext;
  private log!: EventLog;
  private admin!: Admin;
  private closed = false;
  private acks: {
    items: (Completion & { now: number })[];
    resolve: (states: Settled[]) => void;
    reject: (error: unknown) => void;
  }[] = [];
  private acksScheduled = false;

  constructor(private readonly options: PostgresStoreOptions) {
    this.pool = options.pool;
    this.ctx = { s: quoteIdent(options.schema), schema: options.schema };
  }

  async init(context: StoreContext): Promise<void> {
    this.context = context;
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw unavailable(error);
    }
    try {
      await migrate(client, this.options.schema);
    } catch (error) {
      throw unavailable(error);
    } finally {
      client.release();
    }
    this.log = new EventLog(this.pool, this.ctx.s, this.options.schema, this.origin, context.onEvents, {
      pollInterval: this.options.pollInterval ?? 250,
      listen: this.options.listen,
    });
    this.admin = new Admin(this.pool, this.ctx, (fn) => this.tx(fn));
    await this.log.start();
  }

  /** One transaction whose events are committed with it and delivered after. */
  private async tx<T>(fn: (client: pg.PoolClient, events: PendingEvent[]) => Promise<T>): Promise<T> {
    if (this.closed) throw unavailable(Object.assign(new Error('store is closed'), { code: '08003' }));
    let committed: FerryEvent[] = [];
    const value = await transaction(this.pool, async (client) => {
      const events: PendingEvent[] = [];
      const v = await fn(client, events);
      committed = await this.log.commit(client, events);
      return v;
    });
    this.log.deliverOwn(committed);
    return value;
  }

  private async ensure(client: pg.ClientBase, queues: string[], remember: boolean): Promise<void> {
    const unknown = queues.filter((q) => !this.knownQueues.has(q));
    if (unknown.length === 0) return;
    await ensureQueues(client, this.ctx, unknown);
    if (remember) for (const q of unknown) this.knownQueues.add(q);
  }

  async send(messages: NewMessage[], now: number, transaction?: unknown): Promise<SendOutcome[]> {
    if (messages.length === 0) return [];
    const queues = [...new Set(messages.map((m) => m.queue))];
    if (transaction !== undefined) return this.sendIn(transaction, messages, queues, now);
    return this.tx(async (client, events) => {
      await this.ensure(client, queues, false);
      const out = await insertMessages(client, this.ctx, messages, now, events);
      return out;
    }).then((out) => {
      for (const q of queues) this.knownQueues.add(q);
      return out;
    });
  }

  /** A send inside the caller's transaction: its events go to the inbox, moved into the log once it commits. */
  private async sendIn(
    transaction: unknown,
    messages: NewMessage[],
    queues: string[],
    now: number,
  ): Promise<SendOutcome[]> {
    const client = transaction as pg.ClientBase;
    if (!client || typeof client !== 'object' || typeof client.query !== 'function') {
      throw new InvalidRequestError('transaction must be a pg client (pg.Client or a pg.PoolClient) inside BEGIN');
    }
    try {
      await ensureQueues(client, this.ctx, queues);
      const events: PendingEvent[] = [];
      const out = await insertMessages(client, this.ctx, messages, now, events);
      if (events.length) {
        await client.query(`INSERT INTO ${this.ctx.s}.event_inbox (at, data) VALUES ($1, $2)`, [
          now,
          JSON.stringify(events.map((e) => ({ ...e, at: new Date(e.at).toISOString() }))),
        ]);
        await client.query(`SELECT pg_notify('${this.log.channel}', 'inbox')`);
      }
      return out;
    } catch (error) {
      throw unavailable(error);
    }
  }

  publish(
    topic: string,
    message: Omit<NewMessage, 'id' | 'queue'>,
    newId: () => string,
    now: number,
  ): Promise<{ queue: string; id: string }[]> {
    return this.tx(async (client, events) => {
      const subs = await client.query<{ queue: string }>(
        `SELECT queue FROM ${this.ctx.s}.subscriptions WHERE topic = $1 ORDER BY queue`,
        [topic],
      );
      if (subs.rows.length === 0) return [];
      const messages = subs.rows.map((r) => ({ ...message, id: newId(), queue: r.queue }));
      await ensureQueues(client, this.ctx, [...new Set(messages.map((m) => m.queue))]);
      const out = await insertMessages(client, this.ctx, messages, now, events);
      return out.map((o, i) => ({ queue: (messages[i] as NewMessage).queue, id: o.id }));
    });
  }

  claim(queue: string, max: number, lease: number | null, now: number): Promise<Claimed[]> {
    const { s } = this.ctx;
    return this.tx(async (client, events) => {
      const head = await client.query<{
        settings: Partial<QueueSettings> | null;
        paused: boolean | null;
        expired: boolean;
      }>(
        `SELECT q.settings, q.paused,
                EXISTS (SELECT 1 FROM ${s}.messages m WHERE m.state = 1 AND m.lease_until <= $2 AND m.queue = $1) AS expired
           FROM (SELECT 1) one LEFT JOIN ${s}.queues q ON q.name = $1`,
        [queue, now],
      );
      const h = head.rows[0] as { settings: Partial<QueueSettings> | null; paused: boolean | null; expired: boolean };
      if (h.expired) await expire(client, this.ctx, now, events, queue);
      const settings = mergeSettings(h.settings, h.paused ?? false);
      if (settings.paused) return [];
      let limit = max;
      let rate: { window: number; count: number } | undefined;
      if (settings.concurrency !== null || settings.rateLimit !== null) {
        // Limits hold across processes: claimers of a limited queue serialize on its row.
        const locked = await client.query<{ rate_window: string; rate_count: number; active: string }>(
          `SELECT rate_window, rate_count,
                  (SELECT count(*) FROM ${s}.messages m WHERE m.queue = $1 AND m.state = 1) AS active
             FROM ${s}.queues WHERE name = $1 FOR UPDATE`,
          [queue],
        );
        const row = locked.rows[0];
        if (settings.concurrency !== null) limit = Math.min(limit, settings.concurrency - Number(row?.active ?? 0));
        if (settings.rateLimit !== null) {
          rate = { window: Number(row?.rate_window ?? 0), count: row?.rate_count ?? 0 };
          if (now >= rate.window + settings.rateLimit.per) rate = { window: now, count: 0 };
          limit = Math.min(limit, settings.rateLimit.max - rate.count);
        }
      }
      if (limit <= 0) return [];
      const r = await client.query<ClaimRow>(
        `WITH picked AS (
           SELECT id FROM ${s}.messages
            WHERE queue = $1 AND state = 0 AND NOT blocked AND run_at <= $2
            ORDER BY priority DESC, run_at, seq
            LIMIT $3 FOR UPDATE SKIP LOCKED)
         UPDATE ${s}.messages m
            SET state = 1, attempts = m.attempts + 1, receipt = md5(random()::text || clock_timestamp()::text),
                started_at = $2, lease_until = $2 + coalesce($4::int, m.lease, $5::int)
           FROM picked WHERE m.id = picked.id
         RETURNING m.seq, m.id, m.payload, m.attempts, m.receipt, m.priority, m.run_at, m.key, m.headers,
                   m.sent_at, m.lease_until`,
        [queue, now, limit, lease, settings.lease],
      );
      if (r.rows.length === 0) return [];
      if (rate) {
        await client.query(`UPDATE ${s}.queues SET rate_window = $2, rate_count = $3 WHERE name = $1`, [
          queue,
          rate.window,
          rate.count + r.rows.length,
        ]);
      }
      const rows = r.rows.sort(
        (a, b) => b.priority - a.priority || Number(a.run_at) - Number(b.run_at) || Number(a.seq) - Number(b.seq),
      );
      return rows.map((row): Claimed => {
        events.push({ type: 'active', queue, id: row.id, at: now, attempt: row.attempts });
        const leaseUntil = Number(row.lease_until);
        return {
          id: row.id,
          queue,
          payload: row.payload,
          attempt: row.attempts,
          receipt: row.receipt,
          priority: row.priority,
          key: row.key,
          headers: row.headers,
          sentAt: Number(row.sent_at),
          leaseUntil,
          lease: leaseUntil - now,
        };
      });
    });
  }

  /**
   * Acks arrive one per handler; those that arrive in the same turn of the event loop share one statement and
   * one commit (the same message twice waits for the next turn, so each settles as if alone).
   */
  complete(items: Completion[], now: number): Promise<Settled[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise<Settled[]>((resolve, reject) => {
      this.acks.push({ items: items.map((i) => ({ ...i, now })), resolve, reject });
      if (!this.acksScheduled) {
        this.acksScheduled = true;
        setImmediate(() => void this.flushAcks());
      }
    });
  }

  private async flushAcks(): Promise<void> {
    this.acksScheduled = false;
    const ids = new Set<string>();
    const calls: typeof this.acks = [];
    while (this.acks.length) {
      const call = this.acks[0] as (typeof this.acks)[number];
      if (call.items.some((i) => ids.has(i.id))) break;
      for (const i of call.items) ids.add(i.id);
      calls.push(call);
      this.acks.shift();
    }
    if (this.acks.length) {
      this.acksScheduled = true;
      setImmediate(() => void this.flushAcks());
    }
    const items = calls.flatMap((c) => c.items);
    try {
      const rows = await this.tx((client, events) => completeRows(client, this.ctx, items, events));
      const states: Settled[] = new Array(items.length).fill(null);
      for (const row of rows) states[Number(row.ord) - 1] = STATE_NAMES[row.state] ?? null;
      let at = 0;
      for (const call of calls) {
        call.resolve(states.slice(at, at + call.items.length));
        at += call.items.length;
      }
    } catch (error) {
      for (const call of calls) call.reject(error);
    }
  }

  async fail(items: Failure[], now: number): Promise<Settled[]> {
    if (items.length === 0) return [];
    const states = await this.tx((client, events) => failRows(client, this.ctx, this.context, items, now, events));
    return states.map((st) => (st === null ? null : (STATE_NAMES[st] ?? null)));
  }

  async extend(id: string, receipt: string, lease: number, now: number): Promise<number | null> {
    const r = await query<{ lease_until: string }>(
      this.pool,
      `UPDATE ${this.ctx.s}.messages SET lease_until = $4
        WHERE id = $1 AND receipt = $2 AND state = 1 AND lease_until > $3 AND NOT cancel_requested
       RETURNING lease_until`,
      [id, receipt, now, now + lease],
    );
    return r.rows[0] ? Number(r.rows[0].lease_until) : null;
  }

  progress(id: string, receipt: string, value: string, now: number): Promise<boolean> {
    return this.tx(async (client, events) => {
      const r = await client.query<{ queue: string; attempts: number }>(
        `UPDATE ${this.ctx.s}.messages SET progress = $4
          WHERE id = $1 AND receipt = $2 AND state = 1 AND lease_until > $3
         RETURNING queue, attempts`,
        [id, receipt, now, value],
      );
      const row = r.rows[0];
      if (!row) return false;
      events.push({
        type: 'progress',
        queue: row.queue,
        id,
        at: now,
        attempt: row.attempts,
        progress: JSON.parse(value),
      });
      return true;
    });
  }

  get(id: string): Promise<MessageRecord | null> {
    return this.admin.get(id);
  }
  cancel(id: string, now: number): Promise<MessageRecord | null> {
    return this.admin.cancel(id, now);
  }
  retry(id: string, now: number): Promise<MessageRecord | null> {
    return this.admin.retry(id, now);
  }
  list(queue: string, q: ListQuery, now: number): Promise<RecordPage> {
    return this.admin.list(queue, q, now);
  }
  stats(queue: string | null, now: number): Promise<QueueStats[]> {
    return this.admin.stats(queue, now);
  }
  settings(queue: string): Promise<QueueSettings> {
    return this.admin.settings(queue);
  }
  configure(queue: string, patch: SettingsPatch): Promise<QueueSettings> {
    return this.admin.configure(queue, patch);
  }
  redrive(queue: string, now: number): Promise<number> {
    return this.admin.redrive(queue, now);
  }
  purge(queue: string, states: MessageState[], now: number): Promise<number> {
    return this.admin.purge(queue, states, now);
  }
  subscribe(topic: string, queue: string): Promise<void> {
    return this.admin.subscribe(topic, queue);
  }
  unsubscribe(topic: string, queue: string): Promise<void> {
    return this.admin.unsubscribe(topic, queue);
  }

  sweep(now: number, eventRetention: number): Promise<{ expired: number; removed: number }> {
    return this.tx(async (client, events) => {
      const expired = await expire(client, this.ctx, now, events, null);
      const removed = await this.admin.removeExpired(client, now, eventRetention);
      return { expired, removed };
    });
  }

  readEvents(after: number, limit: number): Promise<FerryEvent[]> {
    return this.log.read(after, limit).catch((error: unknown) => {
      throw unavailable(error);
    });
  }

  lastSeq(): Promise<number> {
    return this.log.lastSeq().catch((error: unknown) => {
      throw unavailable(error);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.log?.close();
    if (this.options.ownsPool) await this.pool.end();
  }
}
