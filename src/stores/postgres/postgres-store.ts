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
  DeliveryRefItem,
  Failure,
  ListQuery,
  MessageRecord,
  NewMessage,
  PendingEvent,
  RecordPage,
  ScheduleRecord,
  SendOutcome,
  SettingsPatch,
  Settled,
  Store,
  StoreContext,
} from '../../store/store.ts';
import { Admin } from './admin.ts';
import { DatabaseClock } from './clock.ts';
import { query, transaction, unavailable } from './connection.ts';
import { EventLog } from './events.ts';
import { HotPath } from './hot.ts';
import { migrate, quoteIdent } from './migrate.ts';
import { STATE_NAMES } from './rows.ts';
import * as schedules from './schedules.ts';
import { TickGroup } from './tick.ts';
import { Vacuumer, type VacuumOptions } from './vacuum.ts';
import { type Ctx, ensureQueues, expire, failRows, insertMessages, releaseRows } from './write.ts';

export interface PostgresStoreOptions {
  pool: pg.Pool;
  /** Whether `close` ends the pool (it does when the store created it). */
  ownsPool: boolean;
  schema: string;
  listen: pg.ClientConfig;
  /** Fallback poll for other processes' events (ms). Default 250. */
  pollInterval?: number;
  /** Null: leave vacuuming to autovacuum. */
  vacuum?: VacuumOptions | null;
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
  private hot!: HotPath;
  private vacuumer: Vacuumer | null = null;
  private readonly fails = new TickGroup<Failure & { now: number }, Settled>(async (items) => {
    const states = await this.tx((client, events) => failRows(client, this.ctx, this.context, items, events));
    return states.map((st) => (st === null ? null : (STATE_NAMES[st] ?? null)));
  });

  constructor(private readonly options: PostgresStoreOptions) {
    this.pool = options.pool;
    this.ctx = { s: quoteIdent(options.schema), schema: options.schema };
  }

  /** A clock on the database's time, for the engine (see `DatabaseClock`). */
  databaseClock(): Promise<DatabaseClock> {
    return DatabaseClock.create(this.pool, () => !this.closed);
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
    if (this.options.vacuum) {
      this.vacuumer = new Vacuumer(this.pool, this.ctx.s, this.options.schema, this.options.vacuum);
    }
    this.hot = new HotPath({
      pool: this.pool,
      s: this.ctx.s,
      origin: this.origin,
      channel: this.log.channel,
      deliver: (events) => this.log.deliverOwn(events),
    });
    await this.log.start();
  }

  /** One transaction whose events are committed with it and delivered after. */
  private open(): void {
    if (this.closed) throw unavailable(Object.assign(new Error('store is closed'), { code: '08003' }));
  }

  private async tx<T>(fn: (client: pg.PoolClient, events: PendingEvent[]) => Promise<T>): Promise<T> {
    this.open();
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

  async send(messages: NewMessage[], now: number, transaction?: unknown): Promise<SendOutcome[]> {
    if (messages.length === 0) return [];
    const queues = [...new Set(messages.map((m) => m.queue))];
    if (transaction !== undefined) return this.sendIn(transaction, messages, queues, now);
    this.open();
    const out = await this.hot.send(
      messages,
      now,
      queues.filter((q) => !this.knownQueues.has(q)),
    );
    for (const q of queues) this.knownQueues.add(q);
    return out;
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
    this.open();
    return this.hot.claim(queue, max, lease, now);
  }

  complete(items: Completion[], now: number): Promise<Settled[]> {
    if (items.length === 0) return Promise.resolve([]);
    this.open();
    return this.hot.complete(items, now);
  }

  /** Fails that arrive in one turn share one transaction. */
  fail(items: Failure[], now: number): Promise<Settled[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.fails.add(items.map((i) => ({ ...i, now })));
  }

  async release(items: DeliveryRefItem[], now: number): Promise<Settled[]> {
    if (items.length === 0) return [];
    const states = await this.tx((client, events) => releaseRows(client, this.ctx, items, now, events));
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
  subscriptions(topic: string): Promise<string[]> {
    return this.admin.subscriptions(topic);
  }

  putSchedule(schedule: ScheduleRecord): Promise<void> {
    this.open();
    return schedules.putSchedule(this.pool, this.ctx, schedule);
  }
  deleteSchedule(name: string): Promise<boolean> {
    this.open();
    return schedules.deleteSchedule(this.pool, this.ctx, name);
  }
  listSchedules(): Promise<ScheduleRecord[]> {
    this.open();
    return schedules.listSchedules(this.pool, this.ctx);
  }
  fireSchedules(
    now: number,
    next: (schedule: ScheduleRecord, after: number) => number,
    message: (schedule: ScheduleRecord, tick: number) => NewMessage,
  ): Promise<number> {
    return this.tx((client, events) => schedules.fireSchedules(client, this.ctx, now, next, message, events));
  }

  async sweep(now: number, eventRetention: number): Promise<{ expired: number; removed: number }> {
    const done = await this.tx(async (client, events) => {
      const expired = await expire(client, this.ctx, now, events, null);
      const removed = await this.admin.removeExpired(client, now, eventRetention);
      return { expired, removed };
    });
    this.vacuumer?.maybe();
    return done;
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
    await this.vacuumer?.idle();
    if (this.options.ownsPool) await this.pool.end();
  }
}
