/**
 * The PostgreSQL store: any number of processes on any number of machines share one schema. The rules are
 * SQL functions (functions/*.sql); each method here calls one, through the module named for its concern
 * (send, claim, settle, sweep, admin, schedules, events), and hands the events it staged to the log.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { FerryEvent, MessageState, QueueSettings, QueueStats } from '../../core/types.ts';
import type {
  Claimed,
  Completion,
  DeliveryRefItem,
  Failure,
  FlowMessage,
  ListQuery,
  MessageRecord,
  NewMessage,
  RecordPage,
  ScheduleRecord,
  SendOutcome,
  SettingsPatch,
  Settled,
  Store,
  StoreContext,
  WebhookAttemptRecord,
  WebhookRecord,
} from '../../store/store.ts';
import { Admin } from './admin.ts';
import { Stepper } from './claim.ts';
import { DatabaseClock } from './clock.ts';
import { Database, unavailable } from './connection.ts';
import { EventLog } from './events.ts';
import { migrate, quoteIdent } from './migrate.ts';
import * as schedules from './schedules.ts';
import { Sender } from './send.ts';
import { Settler } from './settle.ts';
import { expire, sweep } from './sweep.ts';
import { Vacuumer, type VacuumOptions } from './vacuum.ts';
import * as webhooks from './webhooks.ts';

export interface PostgresStoreOptions {
  pool: pg.Pool;
  /** Whether `close` ends the pool (it does when the store created it). */
  ownsPool: boolean;
  schema: string;
  /** The dedicated LISTEN connection's settings (a direct connection, not through a pooler); null: poll only. */
  listen: pg.ClientConfig | null;
  /** Fallback poll for other processes' events (ms). Default 250. */
  pollInterval?: number;
  /** Null: leave vacuuming to autovacuum. */
  vacuum?: VacuumOptions | null;
}

export class PostgresStore implements Store {
  readonly capabilities = { shared: true, transactionalSend: true } as const;
  private readonly db: Database;
  private readonly origin = randomUUID();
  private context!: StoreContext;
  private log!: EventLog;
  private sender!: Sender;
  private stepper!: Stepper;
  private settler!: Settler;
  private admin!: Admin;
  private vacuumer: Vacuumer | null = null;
  private closed = false;

  constructor(private readonly options: PostgresStoreOptions) {
    this.db = new Database(options.pool, quoteIdent(options.schema));
  }

  /** A clock on the database's time, for the engine (see `DatabaseClock`). */
  databaseClock(): Promise<DatabaseClock> {
    return DatabaseClock.create(this.options.pool, () => !this.closed);
  }

  async init(context: StoreContext): Promise<void> {
    this.context = context;
    let client: pg.PoolClient;
    try {
      client = await this.options.pool.connect();
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
    this.log = new EventLog(this.db, this.options.schema, this.origin, context, {
      pollInterval: this.options.pollInterval ?? 250,
      listen: this.options.listen,
    });
    this.sender = new Sender(this.db, this.log);
    this.stepper = new Stepper(this.db, this.log);
    this.settler = new Settler(this.db, this.log, () => this.context);
    this.admin = new Admin(this.db, this.log);
    if (this.options.vacuum) {
      this.vacuumer = new Vacuumer(this.options.pool, this.db.s, this.options.schema, this.options.vacuum);
    }
    await this.log.start();
  }

  send(messages: NewMessage[], now: number, transaction?: unknown): Promise<SendOutcome[]> {
    if (messages.length === 0) return Promise.resolve([]);
    if (transaction !== undefined) return this.sender.sendIn(transaction, messages, now);
    return this.sender.send(messages, now);
  }

  sendFlow(messages: FlowMessage[], now: number): Promise<(SendOutcome | null)[]> {
    return this.sender.sendFlow(messages, now);
  }

  children(id: string): Promise<MessageRecord[] | null> {
    return this.admin.children(id);
  }

  publish(
    topic: string,
    message: Omit<NewMessage, 'id' | 'queue'>,
    newId: () => string,
    now: number,
  ): Promise<{ queue: string; id: string }[]> {
    return this.sender.publish(topic, message, newId, now);
  }

  claim(
    queue: string,
    max: number,
    lease: number | null,
    now: number,
    timeout: number | null = null,
  ): Promise<Claimed[]> {
    return this.stepper.claim(queue, max, lease, timeout, now);
  }

  expire(queue: string, now: number): Promise<number> {
    return expire(this.db, this.log, queue, now);
  }

  complete(items: Completion[], now: number): Promise<Settled[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.stepper.complete(items, now);
  }

  fail(items: Failure[], now: number): Promise<Settled[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.settler.fail(items, now);
  }

  release(items: DeliveryRefItem[], now: number): Promise<Settled[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.settler.release(items, now);
  }

  extend(id: string, receipt: string, lease: number, now: number): Promise<number | null> {
    return this.settler.extend(id, receipt, lease, now);
  }

  progress(id: string, receipt: string, value: string, now: number): Promise<boolean> {
    return this.settler.progress(id, receipt, value, now);
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
  touched(queues: readonly string[]): void {
    this.log.touched(queues);
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
    return schedules.putSchedule(this.db, schedule);
  }
  deleteSchedule(name: string): Promise<boolean> {
    return schedules.deleteSchedule(this.db, name);
  }
  listSchedules(): Promise<ScheduleRecord[]> {
    return schedules.listSchedules(this.db);
  }
  fireSchedules(
    now: number,
    next: (schedule: ScheduleRecord, after: number) => number,
    message: (schedule: ScheduleRecord, tick: number) => NewMessage,
  ): Promise<number> {
    return schedules.fireSchedules(this.db, this.log, this.sender, now, next, message);
  }

  putWebhook(webhook: WebhookRecord): Promise<WebhookRecord> {
    return webhooks.putWebhook(this.db, webhook);
  }
  deleteWebhook(name: string): Promise<boolean> {
    return webhooks.deleteWebhook(this.db, name);
  }
  listWebhooks(): Promise<WebhookRecord[]> {
    return webhooks.listWebhooks(this.db);
  }
  webhookCursor(): Promise<number> {
    return webhooks.webhookCursor(this.db);
  }
  advanceWebhooks(from: number, to: number, deliveries: NewMessage[], now: number): Promise<boolean> {
    return webhooks.advanceWebhooks(this.db, this.log, from, to, deliveries, now);
  }
  recordWebhookAttempts(attempts: WebhookAttemptRecord[], keep: number): Promise<void> {
    return webhooks.recordWebhookAttempts(this.db, attempts, keep);
  }
  webhookAttempts(name: string, limit: number): Promise<WebhookAttemptRecord[]> {
    return webhooks.webhookAttempts(this.db, name, limit);
  }

  async sweep(now: number, eventRetention: number): Promise<{ expired: number; removed: number }> {
    const done = await sweep(this.db, this.log, now, eventRetention);
    this.vacuumer?.maybe();
    return done;
  }

  readEvents(after: number, limit: number): Promise<FerryEvent[]> {
    return this.log.read(after, limit);
  }

  lastSeq(): Promise<number> {
    return this.log.lastSeq();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.log?.close();
    this.db.close();
    await this.vacuumer?.idle();
    if (this.options.ownsPool) await this.options.pool.end();
  }
}
