/**
 * Claiming: the queue's expired leases settled first, then pause, concurrency and rate limit, then the
 * deliverable rows in delivery order (ordering keys keep blocked rows out of the scan), leased in one
 * statement. A queue with a keyRateLimit takes a path of its own that skips the rows of keys whose window
 * is used up; other queues never read the key windows.
 */
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Claimed, PendingEvent } from '../../store/store.ts';
import type { Queues } from './admin.ts';
import { preparer, type Stmt } from './connection.ts';
import type { Sweep } from './sweep.ts';

/** The columns of a ClaimedRow, in its order: one list for both claim paths. */
const CLAIMED_COLUMNS = 'seq, id, payload, attempts, priority, key, headers, sent_at, lease, timeout, parent_id';

/** A claimable row, as an array (raw mode: no object per row on the hottest statement). */
type ClaimedRow = [
  seq: number,
  id: string,
  payload: string,
  attempts: number,
  priority: number,
  key: string | null,
  headers: string | null,
  sentAt: number,
  lease: number | null,
  timeout: number | null,
  parentId: string | null,
];

/**
 * What this process knows of the deliveries it made (by seq), so the common ack needs no read-back. Only a
 * hint: the ack statement still checks receipt, lease and state; a stale or missing entry takes the slow path.
 */
export interface LeaseHint {
  queue: string;
  key: string | null;
  attempt: number;
  /** The flow parent, whose count of unfinished children the ack brings down. */
  parentId: string | null;
}

export class Leases {
  private readonly bySeq = new Map<number, LeaseHint>();

  get(seq: number): LeaseHint | undefined {
    return this.bySeq.get(seq);
  }

  set(seq: number, hint: LeaseHint): void {
    if (this.bySeq.size >= 100_000) this.bySeq.clear(); // a hint, bounded: never a leak
    this.bySeq.set(seq, hint);
  }

  delete(seq: number): void {
    this.bySeq.delete(seq);
  }
}

export class Claim {
  private readonly activeCount: Stmt<{ n: number }>;
  private readonly rateRow: Stmt<{ rate_window: number; rate_count: number }>;
  private readonly setRate: Stmt<unknown>;
  private readonly topPriority: Stmt<{ p: number | null }>;
  private readonly nextPriority: Stmt<{ p: number | null }>;
  private readonly claimable: Stmt<ClaimedRow>;
  private readonly claimablePage: Stmt<ClaimedRow>;
  private readonly keyRate: Stmt<{ window_start: number; count: number }>;
  private readonly setKeyRate: Stmt<unknown>;
  private readonly lease: Stmt<unknown>;

  constructor(
    db: Database.Database,
    private readonly queues: Queues,
    private readonly sweep: Sweep,
    private readonly leases: Leases,
  ) {
    const s = preparer(db);
    this.activeCount = s('SELECT count(*) AS n FROM messages WHERE queue = ? AND state = 1');
    this.rateRow = s('SELECT rate_window, rate_count FROM queues WHERE name = ?');
    this.setRate = s('UPDATE queues SET rate_window = ?, rate_count = ? WHERE name = ?');
    // Claim is a SELECT in delivery order, then one UPDATE of those rows: a little cheaper than one
    // UPDATE … RETURNING (RETURNING goes through a temporary table; bench/sql-choices.ts), and the rows
    // arrive in delivery order. Both run in one write transaction: no other writer can take them between.
    // One priority level at a time, highest first: each is a range seek on (queue, priority, run_at), so
    // delayed rows are never walked. Filtering `run_at <= now` across levels instead read every delayed row
    // on each idle poll (7.8 ms with 200,000 delayed, against 5 µs this way).
    this.topPriority = s('SELECT max(priority) AS p FROM messages WHERE queue = ? AND state = 0 AND blocked = 0');
    this.nextPriority = s(
      'SELECT max(priority) AS p FROM messages WHERE queue = ? AND state = 0 AND blocked = 0 AND priority < ?',
    );
    this.claimable = s<ClaimedRow>(
      `SELECT ${CLAIMED_COLUMNS} FROM messages
       WHERE queue = ? AND state = 0 AND blocked = 0 AND priority = ? AND run_at <= ?
       ORDER BY run_at, seq LIMIT ?`,
    ).raw(true);
    // Rows cannot change under a claim (one writer at a time), so paging by offset is exact.
    this.claimablePage = s<ClaimedRow>(
      `SELECT ${CLAIMED_COLUMNS} FROM messages
       WHERE queue = ? AND state = 0 AND blocked = 0 AND priority = ? AND run_at <= ?
       ORDER BY run_at, seq LIMIT ? OFFSET ?`,
    ).raw(true);
    this.keyRate = s('SELECT window_start, count FROM key_rates WHERE queue = ? AND key = ?');
    this.setKeyRate = s('INSERT OR REPLACE INTO key_rates (queue, key, window_start, count) VALUES (?, ?, ?, ?)');
    // The receipt is `seq.attempt.nonce`: settling finds the row by primary key, and the nonce (one per
    // claim) makes it unguessable. The attempt's deadline (null without a timeout) caps the lease.
    this.lease = s(
      `UPDATE messages SET state = 1, attempts = attempts + 1, receipt = seq || '.' || (attempts + 1) || @nonce,
         started_at = @now, deadline = @now + coalesce(@timeout, timeout, @queueTimeout),
         lease_until = min(@now + coalesce(@lease, lease, @queueLease),
                           coalesce(@now + coalesce(@timeout, timeout, @queueTimeout), @now + coalesce(@lease, lease, @queueLease)))
       WHERE seq IN (SELECT value FROM json_each(@seqs))`,
    );
  }

  claim(
    queue: string,
    max: number,
    lease: number | null,
    timeout: number | null,
    now: number,
    events: PendingEvent[],
  ): Claimed[] {
    this.sweep.expire(now, events, queue);
    const settings = this.queues.settings(queue);
    if (settings.paused) return [];
    let limit = max;
    if (settings.concurrency !== null) {
      limit = Math.min(limit, settings.concurrency - (this.activeCount.get(queue) as { n: number }).n);
    }
    let rate: { window: number; count: number } | undefined;
    if (settings.rateLimit !== null) {
      const row = this.rateRow.get(queue);
      rate = { window: row?.rate_window ?? 0, count: row?.rate_count ?? 0 };
      if (now >= rate.window + settings.rateLimit.per) rate = { window: now, count: 0 };
      limit = Math.min(limit, settings.rateLimit.max - rate.count);
    }
    if (limit <= 0) return [];
    let rows: ClaimedRow[] = [];
    if (settings.keyRateLimit !== null) rows = this.pickWithKeyRate(queue, limit, now, settings.keyRateLimit);
    else {
      for (let p = this.topPriority.get(queue)?.p ?? null; p !== null; ) {
        const level = this.claimable.all(queue, p, now, limit - rows.length);
        rows = rows.length === 0 ? level : rows.concat(level);
        if (rows.length >= limit) break;
        p = this.nextPriority.get(queue, p)?.p ?? null;
      }
    }
    if (rows.length === 0) return [];
    const nonce = `.${randomBytes(9).toString('base64url')}`;
    const seqs = new Array<number>(rows.length);
    for (let i = 0; i < rows.length; i++) seqs[i] = (rows[i] as ClaimedRow)[0];
    this.lease.run({
      nonce,
      now,
      lease,
      queueLease: settings.lease,
      timeout,
      queueTimeout: settings.timeout,
      seqs: JSON.stringify(seqs),
    });
    if (rate) this.setRate.run(rate.window, rate.count + rows.length, queue);
    const out: Claimed[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [seq, id, payload, attempts, priority, key, headers, sentAt, ownLease, ownTimeout, parentId] = rows[
        i
      ] as ClaimedRow;
      const attempt = attempts + 1;
      const length = lease ?? ownLease ?? settings.lease;
      const limit = timeout ?? ownTimeout ?? settings.timeout;
      const deadline = limit === null ? null : now + limit;
      out[i] = {
        id,
        queue,
        payload: JSON.parse(payload),
        attempt,
        receipt: `${seq}.${attempt}${nonce}`,
        priority,
        key,
        headers: headers === null ? null : JSON.parse(headers),
        sentAt,
        leaseUntil: deadline === null ? now + length : Math.min(now + length, deadline),
        lease: length,
        deadline,
      };
      this.leases.set(seq, { queue, key, attempt, parentId });
      events.push({ type: 'active', queue, id, at: now, attempt });
    }
    return out;
  }

  /**
   * Up to `limit` deliverable rows in delivery order, skipping those whose key has had `rate.max` deliveries
   * in its current window (a window opens at a key's first delivery after the last one closed), so a held
   * key never holds back the others; the windows of the keys taken are written back.
   */
  private pickWithKeyRate(queue: string, limit: number, now: number, rate: { max: number; per: number }): ClaimedRow[] {
    const rows: ClaimedRow[] = [];
    const windows = new Map<string, { start: number; count: number; taken: boolean }>();
    const page = Math.max(64, limit * 2);
    levels: for (let p = this.topPriority.get(queue)?.p ?? null; p !== null; ) {
      for (let offset = 0; ; offset += page) {
        const batch = this.claimablePage.all(queue, p, now, page, offset);
        for (const row of batch) {
          const key = row[5];
          if (key !== null) {
            let window = windows.get(key);
            if (!window) {
              const stored = this.keyRate.get(queue, key);
              window =
                stored && now < stored.window_start + rate.per
                  ? { start: stored.window_start, count: stored.count, taken: false }
                  : { start: now, count: 0, taken: false };
              windows.set(key, window);
            }
            if (window.count >= rate.max) continue;
            window.count++;
            window.taken = true;
          }
          rows.push(row);
          if (rows.length >= limit) break levels;
        }
        if (batch.length < page) break;
      }
      p = this.nextPriority.get(queue, p)?.p ?? null;
    }
    for (const [key, window] of windows) {
      if (window.taken) this.setKeyRate.run(queue, key, window.start, window.count);
    }
    return rows;
  }
}
