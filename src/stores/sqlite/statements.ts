/** The SQLite store's SQL, prepared once per connection: one statement per operation. */
import type Database from 'better-sqlite3';

/** Stored state codes; `queued` is waiting or delayed depending on run_at. */
export const QUEUED = 0;
export const ACTIVE = 1;
export const COMPLETED = 2;
export const DEAD = 3;
export const CANCELLED = 4;

/** Rows per housekeeping statement (expiry, retention, purge). */
export const BATCH = 1000;

/** A messages row as SELECT * returns it. */
export interface Row {
  seq: number;
  id: string;
  queue: string;
  state: number;
  blocked: number;
  priority: number;
  run_at: number;
  payload: string;
  result: string | null;
  error: string | null;
  progress: string | null;
  headers: string | null;
  key: string | null;
  dedupe_id: string | null;
  attempts: number;
  max_attempts: number | null;
  backoff: string | null;
  lease: number | null;
  receipt: string | null;
  lease_until: number | null;
  cancel_requested: number;
  sent_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface ScheduleRow {
  name: string;
  cron: string;
  tz: string;
  queue: string;
  payload: string;
  options: string;
  next_at: number;
  last_at: number | null;
}

/** A claimable row, as an array (raw mode: no object per row on the hottest statement). */
export type ClaimedRow = [
  seq: number,
  id: string,
  payload: string,
  attempts: number,
  priority: number,
  key: string | null,
  headers: string | null,
  sentAt: number,
  lease: number | null,
];

/** A prepared statement answering rows of type R (a named type, so declarations can refer to it). */
export interface Stmt<R> extends Database.Statement<unknown[], R> {}

export function prepare(db: Database.Database) {
  const s = <R = unknown>(sql: string): Stmt<R> => db.prepare<unknown[], R>(sql);
  return {
    ensureQueue: s('INSERT OR IGNORE INTO queues (name) VALUES (?)'),
    queue: s<{ settings: string; paused: number; rate_window: number; rate_count: number }>(
      'SELECT settings, paused, rate_window, rate_count FROM queues WHERE name = ?',
    ),
    setSettings: s('UPDATE queues SET settings = ?, paused = ? WHERE name = ?'),
    setRate: s('UPDATE queues SET rate_window = ?, rate_count = ? WHERE name = ?'),
    queueNames: s<{ name: string }>('SELECT name FROM queues ORDER BY name'),

    dedupe: s<{ id: string }>('SELECT id FROM messages WHERE queue = ? AND dedupe_id = ?'),
    keyBusy: s<{ one: number }>('SELECT 1 AS one FROM messages WHERE queue = ? AND key = ? AND state <= 1 LIMIT 1'),
    insert: s(
      `INSERT INTO messages (id, queue, state, blocked, priority, run_at, payload, headers, key, dedupe_id,
         max_attempts, backoff, lease, sent_at)
       VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    subscribers: s<{ queue: string }>('SELECT queue FROM subscriptions WHERE topic = ? ORDER BY queue'),
    subscribe: s('INSERT OR IGNORE INTO subscriptions (topic, queue) VALUES (?, ?)'),
    unsubscribe: s('DELETE FROM subscriptions WHERE topic = ? AND queue = ?'),

    activeCount: s<{ n: number }>('SELECT count(*) AS n FROM messages WHERE queue = ? AND state = 1'),
    // Claim is a SELECT in delivery order, then one UPDATE of those rows: a little cheaper than one
    // UPDATE … RETURNING (RETURNING goes through a temporary table; bench/sql-choices.ts), and the rows
    // arrive in delivery order. Both run in one write transaction: no other writer can take them between.
    // One priority level at a time, highest first: each is a range seek on (queue, priority, run_at), so
    // delayed rows are never walked. Filtering `run_at <= now` across levels instead read every delayed row
    // on each idle poll (7.8 ms with 200,000 delayed, against 5 µs this way).
    topPriority: s<{ p: number | null }>(
      'SELECT max(priority) AS p FROM messages WHERE queue = ? AND state = 0 AND blocked = 0',
    ),
    nextPriority: s<{ p: number | null }>(
      'SELECT max(priority) AS p FROM messages WHERE queue = ? AND state = 0 AND blocked = 0 AND priority < ?',
    ),
    claimable: s<ClaimedRow>(
      `SELECT seq, id, payload, attempts, priority, key, headers, sent_at, lease FROM messages
       WHERE queue = ? AND state = 0 AND blocked = 0 AND priority = ? AND run_at <= ?
       ORDER BY run_at, seq LIMIT ?`,
    ).raw(true),
    // The receipt is `seq.attempt.nonce`: settling finds the row by primary key, and the nonce (one per
    // claim) makes it unguessable.
    lease: s(
      `UPDATE messages SET state = 1, attempts = attempts + 1, receipt = seq || '.' || (attempts + 1) || ?,
         started_at = ?, lease_until = ? + coalesce(?, lease, ?)
       WHERE seq IN (SELECT value FROM json_each(?))`,
    ),
    // Measured: `LIMIT ?` made this usually-empty probe ~30× slower than a literal limit (12 against 0.4 µs
    // per call with 30,000 rows; bench/sql-choices.ts), so batch sizes are literals throughout this file.
    expiredIn: s<Row>(`SELECT * FROM messages WHERE state = 1 AND lease_until <= ? AND queue = ? LIMIT ${BATCH}`),
    expired: s<Row>(`SELECT * FROM messages WHERE state = 1 AND lease_until <= ? LIMIT ${BATCH}`),

    // The common ack: this process claimed the message and no cancel is pending, so nothing needs to be read
    // back (about 1.7 against 3.8 µs per row with RETURNING; bench/sql-choices.ts). Else `complete` below.
    completeKnown: s(
      `UPDATE messages SET state = 2, result = ?, finished_at = ?, receipt = NULL, lease_until = NULL
       WHERE seq = ? AND id = ? AND receipt = ? AND state = 1 AND lease_until > ? AND cancel_requested = 0`,
    ),
    complete: s<{ queue: string; key: string | null; state: number; attempts: number }>(
      `UPDATE messages
         SET state = CASE cancel_requested WHEN 1 THEN 4 ELSE 2 END, result = @result, finished_at = @now,
             receipt = NULL, lease_until = NULL
       WHERE seq = @seq AND id = @id AND receipt = @receipt AND state = 1 AND lease_until > @now
       RETURNING queue, key, state, attempts`,
    ),
    leased: s<Row>('SELECT * FROM messages WHERE seq = ? AND id = ? AND receipt = ? AND state = 1 AND lease_until > ?'),
    requeue: s(
      'UPDATE messages SET state = 0, run_at = ?, error = ?, receipt = NULL, lease_until = NULL WHERE seq = ?',
    ),
    release: s(
      `UPDATE messages SET state = 0, attempts = attempts - 1, run_at = ?, receipt = NULL, lease_until = NULL
       WHERE seq = ?`,
    ),
    finish: s(
      `UPDATE messages SET state = @state, error = coalesce(@error, error), finished_at = @now,
         receipt = NULL, lease_until = NULL, blocked = 0
       WHERE seq = @seq`,
    ),
    unblockNext: s(
      `UPDATE messages SET blocked = 0
       WHERE seq = (SELECT seq FROM messages WHERE queue = @queue AND key = @key AND state <= 1 ORDER BY seq LIMIT 1)
         AND NOT EXISTS (SELECT 1 FROM messages WHERE queue = @queue AND key = @key AND state <= 1 AND blocked = 0)`,
    ),
    extend: s<{ lease_until: number }>(
      `UPDATE messages SET lease_until = @until
       WHERE seq = @seq AND id = @id AND receipt = @receipt AND state = 1 AND lease_until > @now
         AND cancel_requested = 0
       RETURNING lease_until`,
    ),
    progress: s<{ queue: string; attempts: number }>(
      `UPDATE messages SET progress = @value
       WHERE seq = @seq AND id = @id AND receipt = @receipt AND state = 1 AND lease_until > @now
       RETURNING queue, attempts`,
    ),

    byId: s<Row>('SELECT * FROM messages WHERE id = ?'),
    flagCancel: s('UPDATE messages SET cancel_requested = 1 WHERE seq = ?'),
    revive: s(
      `UPDATE messages SET state = 0, blocked = ?, attempts = 0, run_at = ?, result = NULL, finished_at = NULL,
         cancel_requested = 0, progress = NULL
       WHERE seq = ?`,
    ),
    dueNow: s('UPDATE messages SET run_at = ? WHERE seq = ?'),
    deadIn: s<Row>('SELECT * FROM messages WHERE queue = ? AND state = 3 ORDER BY seq LIMIT 1000'),

    // Listing: `where` is one of the state filters below; all page by seq through messages_queue (or a
    // partial index the planner prefers for dead and cancelled).
    ...listings(db),
    countAll: s<{ n: number }>('SELECT count(*) AS n FROM messages WHERE queue = ?'),
    countActive: s<{ n: number }>('SELECT count(*) AS n FROM messages WHERE queue = ? AND state = 1'),
    countDead: s<{ n: number }>('SELECT count(*) AS n FROM messages WHERE queue = ? AND state = 3'),
    countCancelled: s<{ n: number }>('SELECT count(*) AS n FROM messages WHERE queue = ? AND state = 4'),
    countReady: s<{ n: number; later: number }>(
      'SELECT count(*) AS n, coalesce(sum(run_at > ?), 0) AS later FROM messages WHERE queue = ? AND state = 0 AND blocked = 0',
    ),
    countBlocked: s<{ n: number; later: number }>(
      `SELECT count(*) AS n, coalesce(sum(run_at > ?), 0) AS later FROM messages
       WHERE queue = ? AND key IS NOT NULL AND state <= 1 AND blocked = 1`,
    ),
    scanRows: s<{ seq: number; key: string | null; state: number; run_at: number; finished_at: number | null }>(
      `SELECT seq, key, state, run_at, finished_at FROM messages WHERE queue = ? AND seq > ? ORDER BY seq LIMIT ${BATCH}`,
    ),
    deleteSeq: s('DELETE FROM messages WHERE seq = ?'),

    putSchedule: s(
      `INSERT OR REPLACE INTO schedules (name, cron, tz, queue, payload, options, next_at, last_at)
       VALUES (@name, @cron, @tz, @queue, @payload, @options, @nextAt, @lastAt)`,
    ),
    deleteSchedule: s('DELETE FROM schedules WHERE name = ?'),
    schedules: s<ScheduleRow>('SELECT * FROM schedules ORDER BY name'),
    dueSchedules: s<ScheduleRow>(`SELECT * FROM schedules WHERE next_at <= ? ORDER BY next_at LIMIT ${BATCH}`),
    scheduleFired: s('UPDATE schedules SET next_at = ?, last_at = ? WHERE name = ?'),

    // The oldest blocks with their times; retention deletes the leading run older than the cutoff.
    oldestEvents: s<{ seq: number; at: number }>(`SELECT seq, at FROM events ORDER BY seq LIMIT ${BATCH}`),
    deleteEventsBefore: s('DELETE FROM events WHERE seq < ?'),
    events: s<{ seq: number; data: string }>(
      `SELECT seq, data FROM events
       WHERE seq >= coalesce((SELECT max(seq) FROM events WHERE seq <= @after), 0)
       ORDER BY seq LIMIT 100`,
    ),
  };
}

/** One listing statement per state filter, each paging by seq. */
function listings(db: Database.Database) {
  const list = (where: string): Stmt<Row> =>
    db.prepare<unknown[], Row>(
      `SELECT * FROM messages WHERE queue = @queue AND seq > @after ${where} ORDER BY seq LIMIT @limit`,
    );
  return {
    listAll: list(''),
    listWaiting: list('AND state = 0 AND run_at <= @now'),
    listDelayed: list('AND state = 0 AND run_at > @now'),
    listActive: list('AND state = 1'),
    listCompleted: list('AND state = 2'),
    listDead: list('AND state = 3'),
    listCancelled: list('AND state = 4'),
  };
}

export type Statements = ReturnType<typeof prepare>;
