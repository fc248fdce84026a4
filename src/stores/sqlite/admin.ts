/**
 * Queue settings (read by every other module) and administration: get, cancel, retry, list, stats,
 * configure, redrive, purge, subscriptions.
 */
import type Database from 'better-sqlite3';
import type { MessageState, QueueSettings, QueueStats } from '../../core/types.ts';
import { DEFAULT_SETTINGS } from '../../core/validate.ts';
import { ACTIVE, CANCELLED, DEAD, PENDING, QUEUED, STATE_NAMES, SWEEP_BATCH } from '../../store/constants.ts';
import type { ListQuery, MessageRecord, PendingEvent, RecordPage, SettingsPatch } from '../../store/store.ts';
import { preparer, type Stmt } from './connection.ts';
import type { Keys } from './keys.ts';
import { type Row, toRecord } from './rows.ts';
import type { Settle } from './settle.ts';
import type { Sweep } from './sweep.ts';

/** The queues table: each queue's settings, parsed once per change of the stored text. */
export class Queues {
  private readonly cache = new Map<string, { raw: string; settings: QueueSettings }>();
  private readonly ensureRow: Stmt<unknown>;
  private readonly row: Stmt<{ settings: string; paused: number }>;
  private readonly store: Stmt<unknown>;
  private readonly allNames: Stmt<{ name: string }>;

  constructor(db: Database.Database) {
    const s = preparer(db);
    this.ensureRow = s('INSERT OR IGNORE INTO queues (name) VALUES (?)');
    this.row = s('SELECT settings, paused FROM queues WHERE name = ?');
    this.store = s('UPDATE queues SET settings = ?, paused = ? WHERE name = ?');
    this.allNames = s('SELECT name FROM queues ORDER BY name');
  }

  /**
   * Creates the queue's row if missing. Not cached in memory: a rolled-back transaction would leave such a
   * cache claiming a row that does not exist. The statement is a primary-key probe, run once per operation.
   */
  ensure(queue: string): void {
    this.ensureRow.run(queue);
  }

  names(): string[] {
    return this.allNames.all().map((r) => r.name);
  }

  /** The queue's settings; shared with the cache, so callers must not change the object. */
  settings(queue: string): QueueSettings {
    const row = this.row.get(queue);
    if (!row) return DEFAULT_SETTINGS; // no such queue yet: nothing to cache (names come from callers)
    const raw = row.settings;
    const paused = row.paused === 1;
    let cached = this.cache.get(queue);
    if (!cached || cached.raw !== raw) {
      cached = { raw, settings: { ...DEFAULT_SETTINGS, ...(JSON.parse(raw) as Partial<QueueSettings>) } };
      this.cache.set(queue, cached);
    }
    return cached.settings.paused === paused ? cached.settings : { ...cached.settings, paused };
  }

  /** A message's effective maxAttempts: its own, else its queue's. */
  maxAttempts(row: { queue: string; max_attempts: number | null }): number {
    return row.max_attempts ?? this.settings(row.queue).maxAttempts;
  }

  configure(queue: string, patch: SettingsPatch): QueueSettings {
    this.ensure(queue);
    const row = this.row.get(queue);
    const stored = { ...(JSON.parse(row?.settings ?? '{}') as Partial<QueueSettings>) };
    const { paused, ...rest } = patch;
    Object.assign(stored, rest);
    delete (stored as Partial<QueueSettings>).paused;
    this.store.run(JSON.stringify(stored), paused === undefined ? (row?.paused ?? 0) : paused ? 1 : 0, queue);
    return this.settings(queue);
  }
}

/** Whether a row in stored `state` (and due at `runAt`) is in one of the public `states` at `now`. */
function inStates(states: Set<MessageState>, state: number, runAt: number, now: number): boolean {
  if (state === QUEUED) return states.has(runAt > now ? 'delayed' : 'waiting');
  return states.has(STATE_NAMES[state] as MessageState);
}

export class Admin {
  private readonly byId: Stmt<Row>;
  private readonly flagCancel: Stmt<unknown>;
  private readonly revive: Stmt<unknown>;
  private readonly dueNow: Stmt<unknown>;
  private readonly deadIn: Stmt<Row>;
  private readonly rowsAfter: Stmt<{
    seq: number;
    id: string;
    key: string | null;
    state: number;
    run_at: number;
    parent_id: string | null;
  }>;
  private readonly remove: Stmt<unknown>;
  private readonly listings: Record<MessageState | 'all', Stmt<Row>>;
  private readonly counts: {
    all: Stmt<{ n: number }>;
    active: Stmt<{ n: number }>;
    dead: Stmt<{ n: number }>;
    cancelled: Stmt<{ n: number }>;
    pending: Stmt<{ n: number }>;
    ready: Stmt<{ n: number; later: number }>;
    blocked: Stmt<{ n: number; later: number }>;
  };
  private readonly subscribeRow: Stmt<unknown>;
  private readonly unsubscribeRow: Stmt<unknown>;

  constructor(
    db: Database.Database,
    private readonly queues: Queues,
    private readonly keys: Keys,
    private readonly settle: Settle,
    private readonly sweep: Sweep,
  ) {
    const s = preparer(db);
    this.byId = s('SELECT * FROM messages WHERE id = ?');
    this.flagCancel = s('UPDATE messages SET cancel_requested = 1 WHERE seq = ?');
    this.revive = s(
      `UPDATE messages SET state = 0, blocked = ?, attempts = 0, run_at = ?, result = NULL, finished_at = NULL,
         cancel_requested = 0, progress = NULL
       WHERE seq = ?`,
    );
    this.dueNow = s('UPDATE messages SET run_at = ? WHERE seq = ?');
    this.deadIn = s(`SELECT * FROM messages WHERE queue = ? AND state = 3 ORDER BY seq LIMIT ${SWEEP_BATCH}`);
    this.rowsAfter = s(
      `SELECT seq, id, key, state, run_at, parent_id FROM messages WHERE queue = ? AND seq > ? ORDER BY seq
       LIMIT ${SWEEP_BATCH}`,
    );
    this.remove = s('DELETE FROM messages WHERE seq = ?');
    // One statement per state filter, each paging by seq through messages_queue (or a partial index the
    // planner prefers for dead and cancelled).
    const list = (where: string): Stmt<Row> =>
      s<Row>(`SELECT * FROM messages WHERE queue = @queue AND seq > @after ${where} ORDER BY seq LIMIT @limit`);
    this.listings = {
      all: list(''),
      waiting: list('AND state = 0 AND run_at <= @now'),
      delayed: list('AND state = 0 AND run_at > @now'),
      active: list('AND state = 1'),
      completed: list('AND state = 2'),
      dead: list('AND state = 3'),
      cancelled: list('AND state = 4'),
      pending: list(`AND state = ${PENDING}`),
    };
    this.counts = {
      all: s('SELECT count(*) AS n FROM messages WHERE queue = ?'),
      active: s('SELECT count(*) AS n FROM messages WHERE queue = ? AND state = 1'),
      dead: s('SELECT count(*) AS n FROM messages WHERE queue = ? AND state = 3'),
      cancelled: s('SELECT count(*) AS n FROM messages WHERE queue = ? AND state = 4'),
      pending: s(`SELECT count(*) AS n FROM messages WHERE queue = ? AND state = ${PENDING}`),
      ready: s(
        'SELECT count(*) AS n, coalesce(sum(run_at > ?), 0) AS later FROM messages WHERE queue = ? AND state = 0 AND blocked = 0',
      ),
      blocked: s(
        `SELECT count(*) AS n, coalesce(sum(run_at > ?), 0) AS later FROM messages
         WHERE queue = ? AND key IS NOT NULL AND state <= 1 AND blocked = 1`,
      ),
    };
    this.subscribeRow = s('INSERT OR IGNORE INTO subscriptions (topic, queue) VALUES (?, ?)');
    this.unsubscribeRow = s('DELETE FROM subscriptions WHERE topic = ? AND queue = ?');
  }

  get(id: string): MessageRecord | null {
    const row = this.byId.get(id);
    return row ? this.record(row) : null;
  }

  cancel(id: string, now: number, events: PendingEvent[]): MessageRecord | null {
    const row = this.current(id, now, events);
    if (!row) return null;
    if (row.state === QUEUED || row.state === PENDING) this.settle.finish(row, CANCELLED, null, now, events);
    else if (row.state === ACTIVE) this.flagCancel.run(row.seq);
    else return this.record(row);
    this.settle.flows.cancelBelow(row.id, now, events);
    return this.record(this.byId.get(id) as Row);
  }

  retry(id: string, now: number, events: PendingEvent[]): MessageRecord | null {
    const row = this.current(id, now, events);
    if (!row) return null;
    if (row.state === DEAD || row.state === CANCELLED) this.reviveRow(row, now, events);
    else if (row.state === QUEUED && row.run_at > now) this.dueNow.run(now, row.seq);
    else return this.record(row);
    return this.record(this.byId.get(id) as Row);
  }

  redrive(queue: string, now: number, events: PendingEvent[]): number {
    let moved = 0;
    for (;;) {
      const rows = this.deadIn.all(queue);
      for (const row of rows) this.reviveRow(row, now, events);
      moved += rows.length;
      if (rows.length < SWEEP_BATCH) return moved;
    }
  }

  purge(queue: string, states: MessageState[], now: number, events: PendingEvent[]): number {
    const wanted = new Set(states);
    const keys = new Set<string>();
    let purged = 0;
    for (let after = 0; ; ) {
      const rows = this.rowsAfter.all(queue, after);
      for (const row of rows) {
        if (!inStates(wanted, row.state, row.run_at, now)) continue;
        this.remove.run(row.seq);
        if (row.key !== null) keys.add(row.key);
        // An unfinished child removed: its pending parent takes it as cancelled.
        if (row.parent_id !== null && (row.state === QUEUED || row.state === ACTIVE || row.state === PENDING)) {
          this.settle.flows.ended({ id: row.id, queue, parent_id: row.parent_id }, CANCELLED, now, events);
        }
        purged++;
      }
      if (rows.length < SWEEP_BATCH) break;
      after = (rows[rows.length - 1] as { seq: number }).seq;
    }
    for (const key of keys) this.keys.unblockNext(queue, key);
    return purged;
  }

  list(queue: string, query: ListQuery, now: number): RecordPage {
    const rows = this.listings[query.state ?? 'all'].all({
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

  stats(queue: string | null, now: number): QueueStats[] {
    const names = queue === null ? this.queues.names() : [queue];
    const c = this.counts;
    return names.map((name) => {
      const ready = c.ready.get(now, name) as { n: number; later: number };
      const blocked = c.blocked.get(now, name) as { n: number; later: number };
      const active = (c.active.get(name) as { n: number }).n;
      const dead = (c.dead.get(name) as { n: number }).n;
      const cancelled = (c.cancelled.get(name) as { n: number }).n;
      const pending = (c.pending.get(name) as { n: number }).n;
      const all = (c.all.get(name) as { n: number }).n;
      const delayed = ready.later + blocked.later;
      const waiting = ready.n + blocked.n - delayed;
      return {
        name,
        pending,
        waiting,
        delayed,
        active,
        completed: all - pending - waiting - delayed - active - dead - cancelled,
        dead,
        cancelled,
        paused: this.queues.settings(name).paused,
      };
    });
  }

  subscribe(topic: string, queue: string): void {
    this.queues.ensure(queue);
    this.subscribeRow.run(topic, queue);
  }

  unsubscribe(topic: string, queue: string): void {
    this.unsubscribeRow.run(topic, queue);
  }

  /** The children of `id` in send order; null when no message `id` exists. */
  children(id: string): MessageRecord[] | null {
    return this.settle.flows.children(id, (row) => this.record(row));
  }

  private record(row: Row): MessageRecord {
    return toRecord(row, this.queues.maxAttempts(row));
  }

  /** The row of `id`, with its lease settled first if it ran out, so cancel and retry act on the truth. */
  private current(id: string, now: number, events: PendingEvent[]): Row | undefined {
    const row = this.byId.get(id);
    if (row?.state !== ACTIVE || (row.lease_until as number) > now) return row;
    this.sweep.expire(now, events, row.queue);
    return this.byId.get(id);
  }

  private reviveRow(row: Row, now: number, events: PendingEvent[]): void {
    this.revive.run(this.keys.blockedValue(row.queue, row.key), now, row.seq);
    this.settle.flows.revived(row);
    events.push({ type: 'retrying', queue: row.queue, id: row.id, at: now, attempt: 0, runAt: now });
  }
}
