/**
 * Housekeeping: leases that ran out (settled here for the sweep, for claim and for cancel/retry), removal of
 * finished messages past their queue's current retention, trimming of the event log, and key rate windows
 * that have closed.
 */
import type Database from 'better-sqlite3';
import {
  ACTIVE,
  CANCELLED,
  COMPLETED,
  DEAD,
  EXPIRE_BATCH,
  LEASE_EXPIRED,
  SWEEP_BATCH,
  timeoutError,
} from '../../store/constants.ts';
import type { PendingEvent } from '../../store/store.ts';
import type { Queues } from './admin.ts';
import type { Leases } from './claim.ts';
import { preparer, type Stmt } from './connection.ts';
import type { EventLog } from './events.ts';
import type { Row } from './rows.ts';
import type { Settle } from './settle.ts';

export class Sweep {
  private readonly expiredIn: Stmt<Row>;
  private readonly expiredAll: Stmt<Row>;
  private readonly finishedAfter: Stmt<{ seq: number; state: number; finished_at: number | null }>;
  private readonly remove: Stmt<unknown>;
  private readonly bySeq: Stmt<Row>;
  private readonly oldestEvents: Stmt<{ seq: number; at: number }>;
  private readonly deleteEventsBefore: Stmt<unknown>;
  private readonly closedKeyWindows: Stmt<unknown>;
  private readonly webhookFloor: Stmt<{ seq: number | null }>;
  /** Per queue, the seq the last retention pass stopped at. */
  private readonly retentionCursor = new Map<string, number>();

  constructor(
    db: Database.Database,
    private readonly queues: Queues,
    private readonly settle: Settle,
    private readonly leases: Leases,
    private readonly log: EventLog,
  ) {
    const s = preparer(db);
    // Measured: `LIMIT ?` made this usually-empty probe ~30× slower than a literal limit (12 against 0.4 µs
    // per call with 30,000 rows; bench/sql-choices.ts), so batch sizes are literals in the SQL text.
    this.expiredIn = s(
      `SELECT * FROM messages WHERE state = 1 AND lease_until <= ? AND queue = ? LIMIT ${EXPIRE_BATCH}`,
    );
    this.expiredAll = s(`SELECT * FROM messages WHERE state = 1 AND lease_until <= ? LIMIT ${EXPIRE_BATCH}`);
    this.finishedAfter = s(
      `SELECT seq, state, finished_at FROM messages WHERE queue = ? AND seq > ? ORDER BY seq LIMIT ${SWEEP_BATCH}`,
    );
    this.remove = s('DELETE FROM messages WHERE seq = ?');
    this.bySeq = s('SELECT * FROM messages WHERE seq = ?');
    // The oldest blocks with their times; trimming deletes the leading run older than the cutoff.
    this.oldestEvents = s(`SELECT seq, at FROM events ORDER BY seq LIMIT ${SWEEP_BATCH}`);
    this.deleteEventsBefore = s('DELETE FROM events WHERE seq < ?');
    // Among the oldest windows, those closed by their queue's current keyRateLimit (every one, when the queue
    // has none now). A window is never longer than a day, so older rows always go.
    this.closedKeyWindows = s(
      `DELETE FROM key_rates WHERE (queue, key) IN (
         SELECT k.queue, k.key FROM (SELECT queue, key, window_start FROM key_rates ORDER BY window_start
                                      LIMIT ${SWEEP_BATCH}) k
           LEFT JOIN queues q ON q.name = k.queue
          WHERE k.window_start + coalesce(json_extract(q.settings, '$.keyRateLimit.per'), 0) <= ?)`,
    );
    // While a webhook exists, the block holding the first event not yet fanned out stays (webhooks.ts).
    this.webhookFloor = s(
      `SELECT coalesce((SELECT max(e.seq) FROM events e WHERE e.seq <= c.seq + 1), c.seq + 1) AS seq
         FROM webhook_cursor c WHERE EXISTS (SELECT 1 FROM webhooks)`,
    );
  }

  /** One bounded pass of housekeeping; answers how much it did, so the caller can repeat. */
  run(now: number, eventRetention: number, events: PendingEvent[]): { expired: number; removed: number } {
    const expired = this.expire(now, events);
    let removed = 0;
    for (const name of this.queues.names()) removed += this.retain(name, now);
    this.trimEvents(now - eventRetention);
    this.closedKeyWindows.run(now);
    return { expired, removed };
  }

  /**
   * Settles leases that ran out (of `queue`, or of all): a failed attempt, or dead when attempts are used up.
   * A lease that reached its attempt's deadline (leases are capped there) is a timeout: a TimeoutError,
   * retried by the backoff; any other lapsed lease is delivered again at once.
   */
  expire(now: number, events: PendingEvent[], queue?: string): number {
    const rows = queue === undefined ? this.expiredAll.all(now) : this.expiredIn.all(now, queue);
    for (const read of rows) {
      // A flow child may have been flagged or cancelled by an earlier row's end in this loop (its parent
      // died of it): act on the row as it is now.
      const row = read.parent_id === null ? read : this.bySeq.get(read.seq);
      if (row?.state !== ACTIVE) continue;
      this.leases.delete(row.seq);
      const timedOut = row.deadline !== null && (row.lease_until as number) >= row.deadline;
      const error = timedOut ? timeoutError((row.deadline as number) - (row.started_at as number)) : LEASE_EXPIRED;
      if (row.cancel_requested === 1) this.settle.finish(row, CANCELLED, error, now, events);
      else if (row.attempts >= this.queues.maxAttempts(row)) this.settle.finish(row, DEAD, error, now, events);
      else this.settle.retryAt(row, timedOut ? now + this.settle.backoff(row) : now, error, now, events);
    }
    return rows.length;
  }

  /**
   * Removes finished messages of `queue` past its current retention, walking the queue oldest first from
   * where the last sweep stopped; a pass that reaches the end starts over. Messages finish in about send
   * order, so the walk finds them without an index written at every completion. The cutoff is read at sweep
   * time, so changing a queue's retention acts on messages already finished.
   */
  private retain(queue: string, now: number): number {
    const cutoff = now - this.queues.settings(queue).retention;
    const rows = this.finishedAfter.all(queue, this.retentionCursor.get(queue) ?? 0);
    let removed = 0;
    for (const row of rows) {
      if (row.state >= COMPLETED && row.finished_at !== null && row.finished_at <= cutoff) {
        this.remove.run(row.seq);
        removed++;
      }
    }
    const last = rows[rows.length - 1];
    // At the end of the queue, the next sweep starts again from its oldest message.
    this.retentionCursor.set(queue, rows.length === SWEEP_BATCH && last ? last.seq : 0);
    return removed;
  }

  private trimEvents(cutoff: number): void {
    let keepFrom: number | undefined;
    for (const block of this.oldestEvents.all()) {
      if (block.at >= cutoff) break;
      keepFrom = block.seq + 1;
    }
    // The newest block always stays: it carries the seq high-water mark, so seqs never restart.
    const newest = this.log.lastBlockSeq();
    const floor = this.webhookFloor.get()?.seq ?? null;
    if (keepFrom !== undefined && newest !== null) {
      this.deleteEventsBefore.run(Math.min(keepFrom, newest, floor ?? Number.POSITIVE_INFINITY));
    }
  }
}
