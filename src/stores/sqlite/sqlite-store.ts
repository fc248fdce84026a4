/**
 * The embedded store: one SQLite file (or SQLite's in-memory database for `memory:`, through the same code).
 * WAL mode, synchronous=FULL by default; every write goes through the {@link Committer} (group commit).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { FerryEvent, MessageState, QueueSettings, QueueStats } from '../../core/types.ts';
import { DEFAULT_SETTINGS } from '../../core/validate.ts';
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
  StoredState,
} from '../../store/store.ts';
import { type Batch, Committer } from './committer.ts';
import { migrate } from './migrate.ts';
import {
  ACTIVE,
  BATCH,
  CANCELLED,
  type ClaimedRow,
  COMPLETED,
  DEAD,
  prepare,
  QUEUED,
  type Row,
  type ScheduleRow,
  type Statements,
} from './statements.ts';

const STATE_NAMES: StoredState[] = ['queued', 'active', 'completed', 'dead', 'cancelled'];

/** The row a receipt was issued for (receipts are `seq.random`); 0 for a malformed receipt, which matches nothing. */
function seqOf(receipt: string): number {
  const seq = Number(receipt.slice(0, receipt.indexOf('.')));
  return Number.isSafeInteger(seq) ? seq : 0;
}

/** Whether a row in stored `state` (and due at `runAt`) is in one of the public `states` at `now`. */
function inStates(states: Set<MessageState>, state: number, runAt: number, now: number): boolean {
  if (state === QUEUED) return states.has(runAt > now ? 'delayed' : 'waiting');
  return states.has(STATE_NAMES[state] as MessageState);
}
const LEASE_EXPIRED = JSON.stringify({ message: 'lease expired', name: 'LeaseExpired' });
const SWEEP_BATCH = BATCH;

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
  private readonly settingsCache = new Map<string, { raw: string; settings: QueueSettings }>();
  private tailTimer: ReturnType<typeof setInterval> | undefined;
  private readonly retentionCursor = new Map<string, number>();
  /**
   * What this process knows of the deliveries it made (by seq), so the common ack needs no read-back. Only a
   * hint: the ack statement still checks receipt, lease and state; a stale or missing entry takes the slow path.
   */
  private readonly leased = new Map<number, { queue: string; key: string | null; attempt: number }>();

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
    const fullSync = this.options.synchronous !== 'normal' && this.path !== ':memory:';
    this.committer = new Committer(
      db,
      this.origin,
      (events) => context.onEvents(events),
      fullSync,
      this.capabilities.shared,
    );
    if (this.capabilities.shared) {
      // Other processes sharing the file: their events, looked for on a timer (and before each commit of ours).
      this.tailTimer = setInterval(() => {
        try {
          this.committer.catchUp();
        } catch {
          // Busy or closing: the next tick tries again.
        }
      }, this.options.tailInterval ?? 100);
      this.tailTimer.unref();
    }
  }

  private queueSettings(queue: string): QueueSettings {
    const row = this.sql.queue.get(queue);
    if (!row) return DEFAULT_SETTINGS; // no such queue yet: nothing to cache (names come from callers)
    const raw = row.settings;
    const paused = row.paused === 1;
    let cached = this.settingsCache.get(queue);
    if (!cached || cached.raw !== raw) {
      cached = { raw, settings: { ...DEFAULT_SETTINGS, ...(JSON.parse(raw) as Partial<QueueSettings>) } };
      this.settingsCache.set(queue, cached);
    }
    return cached.settings.paused === paused ? cached.settings : { ...cached.settings, paused };
  }

  /**
   * Creates the queue's row if missing. Not cached in memory: a rolled-back transaction would leave such a
   * cache claiming a row that does not exist. The statement is a primary-key probe, run once per operation.
   */
  private ensureQueue(queue: string): void {
    this.sql.ensureQueue.run(queue);
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
      let queue: string | undefined;
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i] as NewMessage;
        if (m.queue !== queue) {
          queue = m.queue;
          this.ensureQueue(queue);
        }
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
      let rows: ClaimedRow[] = [];
      for (let p = this.sql.topPriority.get(queue)?.p ?? null; p !== null; ) {
        const level = this.sql.claimable.all(queue, p, now, limit - rows.length);
        rows = rows.length === 0 ? level : rows.concat(level);
        if (rows.length >= limit) break;
        p = this.sql.nextPriority.get(queue, p)?.p ?? null;
      }
      if (rows.length === 0) return [];
      const nonce = `.${randomBytes(9).toString('base64url')}`;
      const seqs = new Array<number>(rows.length);
      for (let i = 0; i < rows.length; i++) seqs[i] = (rows[i] as ClaimedRow)[0];
      this.sql.lease.run(nonce, now, now, lease, settings.lease, JSON.stringify(seqs));
      if (rate) this.sql.setRate.run(rate.window, rate.count + rows.length, queue);
      const out: Claimed[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const [seq, id, payload, attempts, priority, key, headers, sentAt, ownLease] = rows[i] as ClaimedRow;
        const attempt = attempts + 1;
        const length = lease ?? ownLease ?? settings.lease;
        out[i] = {
          id,
          queue,
          payload,
          attempt,
          receipt: `${seq}.${attempt}${nonce}`,
          priority,
          key,
          headers,
          sentAt,
          leaseUntil: now + length,
          lease: length,
        };
        if (this.leased.size >= 100_000) this.leased.clear(); // a hint, bounded: never a leak
        this.leased.set(seq, { queue, key, attempt });
        events.push({ type: 'active', queue, id, at: now, attempt });
      }
      return out;
    }, false);
  }

  /** Settles leases that ran out: a failed attempt, redelivered at once, or dead when attempts are used up. */
  private expire(now: number, events: PendingEvent[], queue?: string): number {
    const rows = queue ? this.sql.expiredIn.all(now, queue) : this.sql.expired.all(now);
    for (const row of rows) {
      this.leased.delete(row.seq);
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
    this.sql.finish.run({ state, error, now, seq: row.seq });
    if (row.key !== null) this.sql.unblockNext.run({ queue: row.queue, key: row.key });
    const event: PendingEvent = { type, queue: row.queue, id: row.id, at: now, attempt: row.attempts };
    if (errorValue !== undefined) event.error = errorValue;
    events.push(event);
  }

  complete(items: Completion[], now: number): Promise<Settled[]> {
    if (items.length === 1) {
      return this.committer.runBatched(this.completions, { ...(items[0] as Completion), now }).then((r) => [r]);
    }
    return this.committer.run((events) =>
      this.completeAll(
        items.map((item) => ({ ...item, now })),
        events,
      ),
    );
  }

  private readonly completions: Batch<Completion & { now: number }, Settled> = {
    fn: (items, events) => this.completeAll(items, events),
  };

  private completeAll(items: (Completion & { now: number })[], events: PendingEvent[]): Settled[] {
    const out: Settled[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Completion & { now: number };
      const now = item.now;
      const seq = seqOf(item.receipt);
      const known = this.leased.get(seq);
      if (known && this.sql.completeKnown.run(item.result, now, seq, item.id, item.receipt, now).changes === 1) {
        this.leased.delete(seq);
        if (known.key !== null) this.sql.unblockNext.run({ queue: known.queue, key: known.key });
        const event: PendingEvent = {
          type: 'completed',
          queue: known.queue,
          id: item.id,
          at: now,
          attempt: known.attempt,
        };
        event.result = item.result === null ? null : JSON.parse(item.result);
        events.push(event);
        out[i] = 'completed';
        continue;
      }
      const row = this.sql.complete.get({
        seq,
        id: item.id,
        receipt: item.receipt,
        result: item.result,
        now,
      });
      if (!row) {
        out[i] = null;
        continue;
      }
      this.leased.delete(seq);
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
  }

  fail(items: Failure[], now: number): Promise<Settled[]> {
    return this.committer.run((events) => {
      return items.map((item): Settled => {
        const row = this.sql.leased.get(seqOf(item.receipt), item.id, item.receipt, now);
        if (!row) return null;
        this.leased.delete(row.seq);
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

  release(items: DeliveryRefItem[], now: number): Promise<Settled[]> {
    return this.committer.run((events) =>
      items.map((item): Settled => {
        const row = this.sql.leased.get(seqOf(item.receipt), item.id, item.receipt, now);
        if (!row) return null;
        this.leased.delete(row.seq);
        if (row.cancel_requested === 1) {
          this.finish(row, CANCELLED, null, now, events, 'cancelled');
          return 'cancelled';
        }
        this.sql.release.run(now, row.seq);
        events.push({ type: 'retrying', queue: row.queue, id: row.id, at: now, attempt: row.attempts - 1, runAt: now });
        return 'queued';
      }),
    );
  }

  extend(id: string, receipt: string, lease: number, now: number): Promise<number | null> {
    return this.committer.run(
      () => this.sql.extend.get({ seq: seqOf(receipt), id, receipt, now, until: now + lease })?.lease_until ?? null,
      false,
    );
  }

  progress(id: string, receipt: string, value: string, now: number): Promise<boolean> {
    return this.committer.run((events) => {
      const row = this.sql.progress.get({ seq: seqOf(receipt), id, receipt, now, value });
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

  /** The row of `id`, with its lease settled first if it ran out, so cancel and retry act on the truth. */
  private current(id: string, now: number, events: PendingEvent[]): Row | undefined {
    const row = this.sql.byId.get(id);
    if (row?.state !== ACTIVE || (row.lease_until as number) > now) return row;
    this.expire(now, events, row.queue);
    return this.sql.byId.get(id);
  }

  cancel(id: string, now: number): Promise<MessageRecord | null> {
    return this.committer.run((events) => {
      const row = this.current(id, now, events);
      if (!row) return null;
      if (row.state === QUEUED) this.finish(row, CANCELLED, null, now, events, 'cancelled');
      else if (row.state === ACTIVE) this.sql.flagCancel.run(row.seq);
      else return this.record(row);
      return this.record(this.sql.byId.get(id) as Row);
    });
  }

  retry(id: string, now: number): Promise<MessageRecord | null> {
    return this.committer.run((events) => {
      const row = this.current(id, now, events);
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
    const wanted = new Set(states);
    return this.committer.run(() => {
      const keys = new Set<string>();
      let purged = 0;
      for (let after = 0; ; ) {
        const rows = this.sql.scanRows.all(queue, after);
        for (const row of rows) {
          if (!inStates(wanted, row.state, row.run_at, now)) continue;
          this.sql.deleteSeq.run(row.seq);
          if (row.key !== null) keys.add(row.key);
          purged++;
        }
        if (rows.length < 1000) break;
        after = (rows[rows.length - 1] as { seq: number }).seq;
      }
      for (const key of keys) this.sql.unblockNext.run({ queue, key });
      return purged;
    });
  }

  async list(queue: string, query: ListQuery, now: number): Promise<RecordPage> {
    const sql = this.sql;
    const statement = {
      all: sql.listAll,
      waiting: sql.listWaiting,
      delayed: sql.listDelayed,
      active: sql.listActive,
      completed: sql.listCompleted,
      dead: sql.listDead,
      cancelled: sql.listCancelled,
    }[query.state ?? 'all'];
    const rows = statement.all({
      queue,
      after: query.cursor === null ? 0 : Number(query.cursor),
      limit: query.limit,
      now,
    });
    const last = rows[rows.length - 1];
    return {
      records: rows.map((row) => this.record(row)),
      cursor: rows.length === query.limit && last ? String(last.seq) : null,
    };
  }

  async stats(queue: string | null, now: number): Promise<QueueStats[]> {
    const names = queue === null ? this.sql.queueNames.all().map((r) => r.name) : [queue];
    const sql = this.sql;
    return names.map((name) => {
      const ready = sql.countReady.get(now, name) as { n: number; later: number };
      const blocked = sql.countBlocked.get(now, name) as { n: number; later: number };
      const active = (sql.countActive.get(name) as { n: number }).n;
      const dead = (sql.countDead.get(name) as { n: number }).n;
      const cancelled = (sql.countCancelled.get(name) as { n: number }).n;
      const all = (sql.countAll.get(name) as { n: number }).n;
      const delayed = ready.later + blocked.later;
      const waiting = ready.n + blocked.n - delayed;
      return {
        name,
        waiting,
        delayed,
        active,
        completed: all - waiting - delayed - active - dead - cancelled,
        dead,
        cancelled,
        paused: this.queueSettings(name).paused,
      };
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

  async subscriptions(topic: string): Promise<string[]> {
    return this.sql.subscribers.all(topic).map((row) => row.queue);
  }

  putSchedule(schedule: ScheduleRecord): Promise<void> {
    return this.committer.run(() => {
      this.sql.putSchedule.run(schedule);
    });
  }

  deleteSchedule(name: string): Promise<boolean> {
    return this.committer.run(() => this.sql.deleteSchedule.run(name).changes > 0);
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return this.sql.schedules.all().map(scheduleRecord);
  }

  fireSchedules(
    now: number,
    next: (schedule: ScheduleRecord, after: number) => number,
    message: (schedule: ScheduleRecord, tick: number) => NewMessage,
  ): Promise<number> {
    return this.committer.run((events) => {
      const due = this.sql.dueSchedules.all(now).map(scheduleRecord);
      for (const schedule of due) {
        const m = message(schedule, schedule.nextAt);
        this.ensureQueue(m.queue);
        this.insert(m, now, events);
        this.sql.scheduleFired.run(next(schedule, now), schedule.nextAt, schedule.name);
      }
      return due.length;
    });
  }

  sweep(now: number, eventRetention: number): Promise<{ expired: number; removed: number }> {
    return this.committer.run((events) => {
      const expired = this.expire(now, events);
      let removed = 0;
      for (const { name } of this.sql.queueNames.all()) removed += this.retain(name, now);
      this.dropOldEvents(now - eventRetention);
      return { expired, removed };
    });
  }

  private dropOldEvents(cutoff: number): void {
    let keepFrom: number | undefined;
    for (const block of this.sql.oldestEvents.all()) {
      if (block.at >= cutoff) break;
      keepFrom = block.seq + 1;
    }
    // The newest block always stays: it carries the seq high-water mark, so seqs never restart.
    const newest = this.committer.lastBlockSeq();
    if (keepFrom !== undefined && newest !== null) this.sql.deleteEventsBefore.run(Math.min(keepFrom, newest));
  }

  /**
   * Removes finished messages of `queue` past its retention, walking the queue oldest first from where the
   * last sweep stopped; a pass that reaches the end starts over. Messages finish in about send order, so
   * the walk finds them without an index written at every completion.
   */
  private retain(queue: string, now: number): number {
    const cutoff = now - this.queueSettings(queue).retention;
    const after = this.retentionCursor.get(queue) ?? 0;
    const rows = this.sql.scanRows.all(queue, after);
    let removed = 0;
    for (const row of rows) {
      if (row.state >= COMPLETED && row.finished_at !== null && row.finished_at <= cutoff) {
        this.sql.deleteSeq.run(row.seq);
        removed++;
      }
    }
    const last = rows[rows.length - 1];
    // At the end of the queue, the next sweep starts again from its oldest message.
    this.retentionCursor.set(queue, rows.length === SWEEP_BATCH && last ? last.seq : 0);
    return removed;
  }

  async readEvents(after: number, limit: number): Promise<FerryEvent[]> {
    const out: FerryEvent[] = [];
    let cursor = after;
    while (out.length < limit) {
      const blocks = this.sql.events.all({ after: cursor });
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

function scheduleRecord(row: ScheduleRow): ScheduleRecord {
  return {
    name: row.name,
    cron: row.cron,
    tz: row.tz,
    queue: row.queue,
    payload: row.payload,
    options: row.options,
    nextAt: row.next_at,
    lastAt: row.last_at,
  };
}
