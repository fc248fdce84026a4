/**
 * The embedded store: one SQLite file (or SQLite's in-memory database for `memory:`, through the same code).
 * WAL mode, synchronous=FULL by default; every write goes through the group commit (connection.ts). This
 * class is wiring only: each method hands its work to the module that owns the rule.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { FerryEvent, MessageState, QueueSettings, QueueStats } from '../../core/types.ts';
import { copySettings } from '../../core/validate.ts';
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
import { Admin, Queues } from './admin.ts';
import { Claim, Leases } from './claim.ts';
import { GroupCommit, openDatabase, read } from './connection.ts';
import { DeadLetter } from './dead-letter.ts';
import { EventLog } from './events.ts';
import { Keys } from './keys.ts';
import { Schedules } from './schedules.ts';
import { Send } from './send.ts';
import { Settle } from './settle.ts';
import { Sweep } from './sweep.ts';
import { Webhooks } from './webhooks.ts';

export interface SqliteOptions {
  /** `full` (default) fsyncs every commit: a power loss loses nothing answered. `normal` may lose the last commits on power loss, never on a crash. */
  synchronous?: 'full' | 'normal';
  /** How often to look for events written by other processes sharing the file (ms). Default 100. */
  tailInterval?: number;
}

/** The modules, created once the database is open. */
interface Parts {
  db: Database.Database;
  commit: GroupCommit;
  log: EventLog;
  queues: Queues;
  keys: Keys;
  send: Send;
  claim: Claim;
  settle: Settle;
  sweep: Sweep;
  admin: Admin;
  schedules: Schedules;
  webhooks: Webhooks;
  stopTail: (() => void) | undefined;
}

export class SqliteStore implements Store {
  readonly capabilities: Store['capabilities'];
  private p!: Parts;

  constructor(
    private readonly path: string,
    private readonly options: SqliteOptions = {},
  ) {
    this.capabilities = { shared: path !== ':memory:', transactionalSend: false };
  }

  async init(context: StoreContext): Promise<void> {
    const synchronous = this.options.synchronous ?? 'full';
    const db = openDatabase(this.path, synchronous);
    const shared = this.capabilities.shared;
    const log = new EventLog(db, randomUUID(), (events) => context.onEvents(events), shared);
    const commit = new GroupCommit(db, log, synchronous === 'full' && this.path !== ':memory:');
    const queues = new Queues(db);
    const keys = new Keys(db, queues);
    const leases = new Leases();
    const send = new Send(db, queues, keys);
    const deadLetter = new DeadLetter(queues, send);
    const settle = new Settle(db, queues, keys, leases, deadLetter, context.retryDelay);
    const sweep = new Sweep(db, queues, settle, leases, log);
    this.p = {
      db,
      commit,
      log,
      queues,
      keys,
      send,
      claim: new Claim(db, queues, sweep, leases),
      settle,
      sweep,
      admin: new Admin(db, queues, keys, settle, sweep),
      schedules: new Schedules(db, queues, send),
      webhooks: new Webhooks(db, queues, send, log),
      // Other processes sharing the file: their events, looked for on a timer (and before each commit of ours).
      stopTail: shared ? log.tail(this.options.tailInterval ?? 100) : undefined,
    };
  }

  send(messages: NewMessage[], now: number): Promise<SendOutcome[]> {
    return this.p.commit.run((events) => this.p.send.send(messages, now, events));
  }

  publish(
    topic: string,
    message: Omit<NewMessage, 'id' | 'queue'>,
    newId: () => string,
    now: number,
  ): Promise<{ queue: string; id: string }[]> {
    return this.p.commit.run((events) => this.p.send.publish(topic, message, newId, now, events));
  }

  claim(
    queue: string,
    max: number,
    lease: number | null,
    now: number,
    timeout: number | null = null,
  ): Promise<Claimed[]> {
    return this.p.commit.run((events) => this.p.claim.claim(queue, max, lease, timeout, now, events), false);
  }

  expire(queue: string, now: number): Promise<number> {
    return this.p.commit.run((events) => this.p.sweep.expire(now, events, queue));
  }

  complete(items: Completion[], now: number): Promise<Settled[]> {
    const { commit, settle } = this.p;
    if (items.length === 1) {
      return commit.runBatched(settle.completions, { ...(items[0] as Completion), now }).then((r) => [r]);
    }
    return commit.run((events) =>
      settle.complete(
        items.map((item) => ({ ...item, now })),
        events,
      ),
    );
  }

  fail(items: Failure[], now: number): Promise<Settled[]> {
    return this.p.commit.run((events) => this.p.settle.fail(items, now, events));
  }

  release(items: DeliveryRefItem[], now: number): Promise<Settled[]> {
    return this.p.commit.run((events) => this.p.settle.release(items, now, events));
  }

  extend(id: string, receipt: string, lease: number, now: number): Promise<number | null> {
    return this.p.commit.run(() => this.p.settle.extend(id, receipt, lease, now), false);
  }

  progress(id: string, receipt: string, value: string, now: number): Promise<boolean> {
    return this.p.commit.run((events) => this.p.settle.progress(id, receipt, value, now, events));
  }

  async get(id: string): Promise<MessageRecord | null> {
    return read(() => this.p.admin.get(id));
  }

  cancel(id: string, now: number): Promise<MessageRecord | null> {
    return this.p.commit.run((events) => this.p.admin.cancel(id, now, events));
  }

  retry(id: string, now: number): Promise<MessageRecord | null> {
    return this.p.commit.run((events) => this.p.admin.retry(id, now, events));
  }

  redrive(queue: string, now: number): Promise<number> {
    return this.p.commit.run((events) => this.p.admin.redrive(queue, now, events));
  }

  purge(queue: string, states: MessageState[], now: number): Promise<number> {
    return this.p.commit.run((events) => this.p.admin.purge(queue, states, now, events));
  }

  sendFlow(messages: FlowMessage[], now: number): Promise<(SendOutcome | null)[]> {
    return this.p.commit.run((events) => this.p.settle.flows.insert(this.p.send, messages, now, events));
  }

  async children(id: string): Promise<MessageRecord[] | null> {
    return read(() => this.p.admin.children(id));
  }

  async list(queue: string, query: ListQuery, now: number): Promise<RecordPage> {
    return read(() => this.p.admin.list(queue, query, now));
  }

  async stats(queue: string | null, now: number): Promise<QueueStats[]> {
    return read(() => this.p.admin.stats(queue, now));
  }

  async settings(queue: string): Promise<QueueSettings> {
    // The cache's object is shared: the caller gets its own copy.
    return read(() => copySettings(this.p.queues.settings(queue)));
  }

  configure(queue: string, patch: SettingsPatch): Promise<QueueSettings> {
    const { queues, keys } = this.p;
    return this.p.commit.run(() => {
      const before = queues.settings(queue).keyConcurrency;
      const settings = queues.configure(queue, patch);
      if (settings.keyConcurrency !== before) keys.rebalance(queue, settings.keyConcurrency);
      return copySettings(settings);
    });
  }

  subscribe(topic: string, queue: string): Promise<void> {
    return this.p.commit.run(() => this.p.admin.subscribe(topic, queue));
  }

  unsubscribe(topic: string, queue: string): Promise<void> {
    return this.p.commit.run(() => this.p.admin.unsubscribe(topic, queue));
  }

  async subscriptions(topic: string): Promise<string[]> {
    return read(() => this.p.send.subscriptions(topic));
  }

  putSchedule(schedule: ScheduleRecord): Promise<void> {
    return this.p.commit.run(() => this.p.schedules.putSchedule(schedule));
  }

  deleteSchedule(name: string): Promise<boolean> {
    return this.p.commit.run(() => this.p.schedules.deleteSchedule(name));
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return read(() => this.p.schedules.list());
  }

  fireSchedules(
    now: number,
    next: (schedule: ScheduleRecord, after: number) => number,
    message: (schedule: ScheduleRecord, tick: number) => NewMessage,
  ): Promise<number> {
    return this.p.commit.run((events) => this.p.schedules.fire(now, next, message, events));
  }

  putWebhook(webhook: WebhookRecord): Promise<WebhookRecord> {
    return this.p.commit.run(() => this.p.webhooks.put(webhook));
  }

  deleteWebhook(name: string): Promise<boolean> {
    return this.p.commit.run(() => this.p.webhooks.delete(name));
  }

  async listWebhooks(): Promise<WebhookRecord[]> {
    return read(() => this.p.webhooks.list());
  }

  async webhookCursor(): Promise<number> {
    return read(() => this.p.webhooks.position());
  }

  advanceWebhooks(from: number, to: number, deliveries: NewMessage[], now: number): Promise<boolean> {
    return this.p.commit.run((events) => this.p.webhooks.advance(from, to, deliveries, now, events));
  }

  recordWebhookAttempts(attempts: WebhookAttemptRecord[], keep: number): Promise<void> {
    return this.p.commit.run(() => this.p.webhooks.record(attempts, keep), false);
  }

  async webhookAttempts(name: string, limit: number): Promise<WebhookAttemptRecord[]> {
    return read(() => this.p.webhooks.recent(name, limit));
  }

  sweep(now: number, eventRetention: number): Promise<{ expired: number; removed: number }> {
    return this.p.commit.run((events) => this.p.sweep.run(now, eventRetention, events));
  }

  async readEvents(after: number, limit: number): Promise<FerryEvent[]> {
    return this.p.log.read(after, limit);
  }

  async lastSeq(): Promise<number> {
    return read(() => this.p.log.lastSeq());
  }

  async close(): Promise<void> {
    this.p.stopTail?.();
    this.p.commit.close();
    this.p.db.close();
  }
}
