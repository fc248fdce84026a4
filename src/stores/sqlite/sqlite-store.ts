/**
 * The embedded store: one SQLite file (or SQLite's in-memory database for `memory:`, through the same code).
 * WAL mode, synchronous=FULL by default; every write goes through the {@link Committer} (group commit).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { FerryEvent, MessageState, QueueSettings, QueueStats } from '../../core/types.ts';
import { DEFAULT_SETTINGS } from '../../core/validate.ts';
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
  StoredState,
} from '../../store/store.ts';
import { Committer } from './committer.ts';
import { migrate } from './migrate.ts';
import { ACTIVE, CANCELLED, COMPLETED, DEAD, prepare, QUEUED, type Row, type Statements } from './statements.ts';

const STATE_NAMES: StoredState[] = ['queued', 'active', 'completed', 'dead', 'cancelled'];
const LEASE_EXPIRED = JSON.stringify({ message: 'lease expired', name: 'LeaseExpired' });
const SWEEP_BATCH = 1000;

export interface SqliteOptions {
  /** `full` (default) fsyncs every commit: a power loss loses nothing answered. `normal` may lose the last commits on power loss, never on a crash. */
  synchronous?: 'full' | 'normal';
  /** How often to look for events written by other processes sharing the file (ms). Default 100. */
  tailInterval?: number;
}

export class SqliteStore implements Store {
  readonly capabilities: Store['capabilities'];
  private db!: Database.Database;
  private sql!: Statements;
  private committer!: Committer;
  private context!: StoreContext;
  private readonly origin = randomUUID();
  private readonly knownQueues = new Set<string>();
  private readonly settingsCache = new Map<string, { raw: string; settings: QueueSettings }>();
  private tailTimer: ReturnType<typeof setInterval> | undefined;
  private tailSeq = 0;

  constructor(
    private readonly path: string,
    private readonly options: SqliteOptions = {},
  ) {
    this.capabilities = { shared: path !== ':memory:', transactionalSend: false };
  }

  async init(context: StoreContext): Promise<void> {
    this.context = context;
    if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true });
    const db = new Database(this.path);
    this.db = db;
    db.pragma('busy_timeout = 10000');
    if (this.path !== ':memory:') db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${this.options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    migrate(db);
    this.sql = prepare(db);
    this.committer = new Committer(db, this.origin, (events) => {
      this.tailSeq = Math.max(this.tailSeq, (events[events.length - 1] as FerryEvent).seq);
      context.onEvents(events);
    });
    this.tailSeq = this.committer.lastSeq();
    if (this.capabilities.shared) {
      this.tailTimer = setInterval(() => this.tail(), this.options.tailInterval ?? 100);
      this.tailTimer.unref();
    }
  }

  /** Hands over events committed by other processes sharing the file. */
  private tail(): void {
    try {
      for (const block of this.sql.foreignEvents.all(this.tailSeq)) {
        this.tailSeq = block.seq + block.n - 1;
        if (block.origin !== this.origin) this.context.onEvents(JSON.parse(block.data) as FerryEvent[]);
      }
    } catch {
      // Busy or closing: the next tick tries again.
    }
  }

  private queueSettings(queue: string): QueueSettings {
    const row = this.sql.queue.get(queue);
    const raw = row ? row.settings : '{}';
    const paused = row ? row.paused === 1 : false;
    let cached = this.settingsCache.get(queue);
    if (!cached || cached.raw !== raw) {
      cached = { raw, settings: { ...DEFAULT_SETTINGS, ...(JSON.parse(raw) as Partial<QueueSettings>) } };
      this.settingsCache.set(queue, cached);
    }
    return cached.settings.paused === paused ? cached.settings : { ...cached.settings, paused };
  }

  private ensureQueue(queue: string): void {
    if (this.knownQueues.has(queue)) return;
    this.sql.ensureQueue.run(queue);
    this.knownQueues.add(queue);
  }

  private insert(m: NewMessage, now: number, events: PendingEvent[]): SendOutcome {
    const sql = this.sql;
    if (m.dedupeId !== null) {
      const existing = sql.dedupe.get(m.queue, m.dedupeId);
      if (existing) return { id: existing.id, deduplicated: true };
    }
    const blocked = m.key !== null && sql.keyBusy.get(m.queue, m.key) ? 1 : 0;
    sql.insert.run(
      m.id,
      m.queue,
      blocked,
      m.priority,
      m.runAt,
      m.payload,
      m.headers,
      m.key,
      m.dedupeId,
      m.maxAttempts,
      m.backoff === null ? null : JSON.stringify(m.backoff),
      m.lease,
      now,
    );
    events.push({ type: 'sent', queue: m.queue, id: m.id, at: now, runAt: m.runAt });
    return { id: m.id, deduplicated: false };
  }

  send(messages: NewMessage[], now: number): Promise<SendOutcome[]> {
    return this.committer.run((events) => {
      const out: SendOutcome[] = new Array(messages.length);
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i] as NewMessage;
        this.ensureQueue(m.queue);
        out[i] = this.insert(m, now, events);
      }
      return out;
    });
  }

  publish(
    topic: string,
    message: Omit<NewMessage, 'id' | 'queue'>,
    newId: () => string,
    now: number,
  ): Promise<{ queue: string; id: string }[]> {
    return this.committer.run((events) => {
      const out: { queue: string; id: string }[] = [];
      for (const { queue } of this.sql.subscribers.all(topic)) {
        this.ensureQueue(queue);
        const sent = this.insert({ ...message, id: newId(), queue }, now, events);
        out.push({ queue, id: sent.id });
      }
      return out;
    });
  }

  claim(queue: string, max: number, lease: number | null, now: number): Promise<Claimed[]> {
    return this.committer.run((events) => {
      this.expire(now, events, queue);
      const settings = this.queueSettings(queue);
      if (settings.paused) return [];
      let limit = max;
      if (settings.concurrency !== null) {
        limit = Math.min(limit, settings.concurrency - (this.sql.activeCount.get(queue) as { n: number }).n);
      }
      let rate: { window: number; count: number } | undefined;
      if (settings.rateLimit !== null) {
        const row = this.sql.queue.get(queue);
        rate = { window: row?.rate_window ?? 0, count: row?.rate_count ?? 0 };
        if (now >= rate.window + settings.rateLimit.per) rate = { window: now, count: 0 };
        limit = Math.min(limit, settings.rateLimit.max - rate.count);
      }
      if (limit <= 0) return [];
      const rows = this.sql.claim.all({ queue, now, lease, queueLease: settings.lease, max: limit });
      if (rows.length === 0) return [];
      if (rate) this.sql.setRate.run(rate.window, rate.count + rows.length, queue);
      rows.sort((a, b) => b.priority - a.priority || a.run_at - b.run_at || a.seq - b.seq);
      const out: Claimed[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i] as (typeof rows)[number];
        out[i] = {
          id: r.id,
          queue,
          payload: r.payload,
          attempt: r.attempts,
          receipt: r.receipt,
          priority: r.priority,
          key: r.key,
          headers: r.headers,
          sentAt: r.sent_at,
          leaseUntil: r.lease_until,
          lease: r.lease_ms,
        };
        events.push({ type: 'active', queue, id: r.id, at: now, attempt: r.attempts });
      }
      return out;
    });
  }

  /** Settles leases that ran out: a failed attempt, redelivered at once, or dead when attempts are used up. */
  private expire(now: number, events: PendingEvent[], queue?: string): number {
    const rows = queue ? this.sql.expiredIn.all(now, queue, SWEEP_BATCH) : this.sql.expired.all(now, SWEEP_BATCH);
    for (const row of rows) {
      const error = JSON.parse(LEASE_EXPIRED) as unknown;
      if (row.cancel_requested === 1) {
        this.finish(row, CANCELLED, LEASE_EXPIRED, now, events, 'cancelled', error);
      } else if (row.attempts >= this.maxAttempts(row)) {
        this.finish(row, DEAD, LEASE_EXPIRED, now, events, 'dead', error);
      } else {
        this.sql.requeue.run(now, LEASE_EXPIRED, row.seq);
        events.push({
          type: 'retrying',
          queue: row.queue,
          id: row.id,
          at: now,
          attempt: row.attempts,
          error,
          runAt: now,
        });
      }
    }
    return rows.length;
  }

  private maxAttempts(row: Row): number {
    return row.max_attempts ?? this.queueSettings(row.queue).maxAttempts;
  }

  private finish(
    row: Row,
    state: number,
    error: string | null,
    now: number,
    events: PendingEvent[],
    type: 'dead' | 'cancelled',
    errorValue?: unknown,
  ): void {
    this.sql.finish.run({ state, error, now, seq: row.seq, defaultRetention: DEFAULT_SETTINGS.retention });
    if (row.key !== null) this.sql.unblockNext.run({ queue: row.queue, key: row.key });
    const event: PendingEvent = { type, queue: row.queue, id: row.id, at: now, attempt: row.attempts };
    if (errorValue !== undefined) event.error = errorValue;
    events.push(event);
  }

  complete(items: Completion[], now: number): Promise<Settled[]> {
    return this.committer.run((events) => {
      const out: Settled[] = new Array(items.length);
      const defaultRetention = DEFAULT_SETTINGS.retention;
      for (let i = 0; i < items.length; i++) {
        const item = items[i] as Completion;
        const row = this.sql.complete.get({
          id: item.id,
          receipt: item.receipt,
          result: item.result,
          now,
          defaultRetention,
        });
        if (!row) {
          out[i] = null;
          continue;
        }
        if (row.key !== null) this.sql.unblockNext.run({ queue: row.queue, key: row.key });
        if (row.state === COMPLETED) {
          const event: PendingEvent = {
            type: 'completed',
            queue: row.queue,
            id: item.id,
            at: now,
            attempt: row.attempts,
          };
          event.result = item.result === null ? null : JSON.parse(item.result);
          events.push(event);
          out[i] = 'completed';
        } else {
          events.push({ type: 'cancelled', queue: row.queue, id: item.id, at: now, attempt: row.attempts });
          out[i] = 'cancelled';
        }
      }
      return out;
    });
  }

  fail(items: Failure[], now: number): Promise<Settled[]> {
    return this.committer.run((events) => {
      return items.map((item): Settled => {
        const row = this.sql.leased.get(item.id, item.receipt, now);
        if (!row) return null;
        const error = JSON.parse(item.error) as unknown;
        if (row.cancel_requested === 1) {
          this.finish(row, CANCELLED, item.error, now, events, 'cancelled', error);
          return 'cancelled';
        }
        if (!item.retry || row.attempts >= this.maxAttempts(row)) {
          this.finish(row, DEAD, item.error, now, events, 'dead', error);
          return 'dead';
        }
        const backoff = row.backoff
          ? (JSON.parse(row.backoff) as QueueSettings['backoff'])
          : this.queueSettings(row.queue).backoff;
        const runAt = now + (item.delay ?? this.context.retryDelay(row.attempts, backoff));
        this.sql.requeue.run(runAt, item.error, row.seq);
        events.push({ type: 'retrying', queue: row.queue, id: row.id, at: now, attempt: row.attempts, error, runAt });
        return 'queued';
      });
    });
  }

  extend(id: string, receipt: string, lease: number, now: number): Promise<number | null> {
    return this.committer.run(() => this.sql.extend.get({ id, receipt, now, until: now + lease })?.lease_until ?? null);
  }

  progress(id: string, receipt: string, value: string, now: number): Promise<boolean> {
    return this.committer.run((events) => {
      const row = this.sql.progress.get({ id, receipt, now, value });
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

  async get(id: string): Promise<MessageRecord | null> {
    const row = this.sql.byId.get(id);
    return row ? this.record(row) : null;
  }

  private record(row: Row): MessageRecord {
    return {
      id: row.id,
      queue: row.queue,
      state: STATE_NAMES[row.state] as StoredState,
      payload: row.payload,
      result: row.result,
      error: row.error,
      attempts: row.attempts,
      maxAttempts: this.maxAttempts(row),
      priority: row.priority,
      key: row.key,
      dedupeId: row.dedupe_id,
      progress: row.progress,
      headers: row.headers,
      sentAt: row.sent_at,
      runAt: row.run_at,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
      leaseUntil: row.lease_until,
      cancelRequested: row.cancel_requested === 1,
    };
  }

  cancel(id: string, now: number): Promise<MessageRecord | null> {
    return this.committer.run((events) => {
      const row = this.sql.byId.get(id);
      if (!row) return null;
      if (row.state === QUEUED) this.finish(row, CANCELLED, null, now, events, 'cancelled');
      else if (row.state === ACTIVE) this.sql.flagCancel.run(row.seq);
      else return this.record(row);
      return this.record(this.sql.byId.get(id) as Row);
    });
  }

  retry(id: string, now: number): Promise<MessageRecord | null> {
    return this.committer.run((events) => {
      const row = this.sql.byId.get(id);
      if (!row) return null;
      if (row.state === DEAD || row.state === CANCELLED) this.revive(row, now, events);
      else if (row.state === QUEUED && row.run_at > now) this.sql.dueNow.run(now, row.seq);
      else return this.record(row);
      return this.record(this.sql.byId.get(id) as Row);
    });
  }

  private revive(row: Row, now: number, events: PendingEvent[]): void {
    const blocked = row.key !== null && this.sql.keyBusy.get(row.queue, row.key) ? 1 : 0;
    this.sql.revive.run(blocked, now, row.seq);
    events.push({ type: 'retrying', queue: row.queue, id: row.id, at: now, attempt: 0, runAt: now });
  }

  redrive(queue: string, now: number): Promise<number> {
    return this.committer.run((events) => {
      let moved = 0;
      for (;;) {
        const rows = this.sql.deadIn.all(queue);
        for (const row of rows) this.revive(row, now, events);
        moved += rows.length;
        if (rows.length < 1000) return moved;
      }
    });
  }

  purge(queue: string, states: MessageState[], now: number): Promise<number> {
    return this.committer.run(() => {
      const keys = new Set<string>();
      let purged = 0;
      for (const state of states) {
        const code = state === 'waiting' || state === 'delayed' ? QUEUED : STATE_NAMES.indexOf(state as StoredState);
        for (const { key } of this.sql.purgeKeys.all(queue, code)) keys.add(key);
        if (state === 'waiting') purged += this.sql.purgeWaiting.run(queue, now).changes;
        else if (state === 'delayed') purged += this.sql.purgeDelayed.run(queue, now).changes;
        else purged += this.sql.purgeState.run(queue, code).changes;
      }
      for (const key of keys) this.sql.unblockNext.run({ queue, key });
      return purged;
    });
  }

  async list(queue: string, query: ListQuery, now: number): Promise<RecordPage> {
    const after = query.cursor === null ? 0 : Number(query.cursor);
    const sql = this.sql;
    let rows: Row[];
    if (query.state === null) rows = sql.listAll.all(queue, after, query.limit);
    else if (query.state === 'waiting') rows = sql.listWaiting.all(queue, now, after, query.limit);
    else if (query.state === 'delayed') rows = sql.listDelayed.all(queue, now, after, query.limit);
    else rows = sql.listState.all(queue, STATE_NAMES.indexOf(query.state), after, query.limit);
    const last = rows[rows.length - 1];
    return {
      records: rows.map((row) => this.record(row)),
      cursor: rows.length === query.limit && last ? String(last.seq) : null,
    };
  }

  async stats(queue: string | null, now: number): Promise<QueueStats[]> {
    const names = queue === null ? this.sql.queueNames.all().map((r) => r.name) : [queue];
    return names.map((name) => {
      const stats: QueueStats = {
        name,
        waiting: 0,
        delayed: 0,
        active: 0,
        completed: 0,
        dead: 0,
        cancelled: 0,
        paused: this.queueSettings(name).paused,
      };
      for (const { state, n, later } of this.sql.counts.all(now, name)) {
        if (state === QUEUED) {
          stats.delayed = later;
          stats.waiting = n - later;
        } else stats[STATE_NAMES[state] as 'active' | 'completed' | 'dead' | 'cancelled'] = n;
      }
      return stats;
    });
  }

  async settings(queue: string): Promise<QueueSettings> {
    return this.queueSettings(queue);
  }

  configure(queue: string, patch: SettingsPatch): Promise<QueueSettings> {
    return this.committer.run(() => {
      this.ensureQueue(queue);
      const row = this.sql.queue.get(queue);
      const stored = { ...(JSON.parse(row?.settings ?? '{}') as Partial<QueueSettings>) };
      const { paused, ...rest } = patch;
      Object.assign(stored, rest);
      delete (stored as Partial<QueueSettings>).paused;
      this.sql.setSettings.run(
        JSON.stringify(stored),
        paused === undefined ? (row?.paused ?? 0) : paused ? 1 : 0,
        queue,
      );
      return this.queueSettings(queue);
    });
  }

  subscribe(topic: string, queue: string): Promise<void> {
    return this.committer.run(() => {
      this.ensureQueue(queue);
      this.sql.subscribe.run(topic, queue);
    });
  }

  unsubscribe(topic: string, queue: string): Promise<void> {
    return this.committer.run(() => {
      this.sql.unsubscribe.run(topic, queue);
    });
  }

  sweep(now: number, eventRetention: number): Promise<{ expired: number; removed: number }> {
    return this.committer.run((events) => {
      const expired = this.expire(now, events);
      const removed = this.sql.retention.run(now, SWEEP_BATCH).changes;
      this.sql.eventRetention.run(now - eventRetention, SWEEP_BATCH);
      return { expired, removed };
    });
  }

  async readEvents(after: number, limit: number): Promise<FerryEvent[]> {
    const out: FerryEvent[] = [];
    let cursor = after;
    while (out.length < limit) {
      const blocks = this.sql.events.all({ after: cursor, limit: 100 });
      let progressed = false;
      for (const block of blocks) {
        for (const event of JSON.parse(block.data) as FerryEvent[]) {
          if (event.seq > cursor && out.length < limit) {
            out.push(event);
            cursor = event.seq;
            progressed = true;
          }
        }
      }
      if (!progressed) break;
    }
    return out;
  }

  async lastSeq(): Promise<number> {
    return this.committer.lastSeq();
  }

  async close(): Promise<void> {
    if (this.tailTimer) clearInterval(this.tailTimer);
    this.committer.close();
    this.db.close();
  }
}
