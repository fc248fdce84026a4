/**
 * Ending a delivery: complete, fail (retry after a backoff, or dead), release, and the lease's extend and
 * progress. Every statement checks receipt, state and lease, so a stale receipt changes nothing. Here too
 * are the two ways any attempt ends that the sweep and admin share: {@link Settle.finish} and
 * {@link Settle.retryAt}.
 */
import type Database from 'better-sqlite3';
import type { QueueSettings } from '../../core/types.ts';
import { CANCELLED, COMPLETED, DEAD } from '../../store/constants.ts';
import type { Completion, DeliveryRefItem, Failure, PendingEvent, Settled, StoreContext } from '../../store/store.ts';
import type { Queues } from './admin.ts';
import type { Leases } from './claim.ts';
import { type Batch, preparer, type Stmt } from './connection.ts';
import type { DeadLetter } from './dead-letter.ts';
import { Flows } from './flows.ts';
import type { Keys } from './keys.ts';
import type { Row } from './rows.ts';

/** The row a receipt was issued for (receipts are `seq.attempt.nonce`); 0 for a malformed one, which matches nothing. */
function seqOf(receipt: string): number {
  const seq = Number(receipt.slice(0, receipt.indexOf('.')));
  return Number.isSafeInteger(seq) ? seq : 0;
}

export type TimedCompletion = Completion & { now: number };

export class Settle {
  /** Single acks queued in the same tick, settled as one operation by the group commit. */
  readonly completions: Batch<TimedCompletion, Settled> = { fn: (items, events) => this.complete(items, events) };
  private readonly completeKnown: Stmt<unknown>;
  private readonly completeRead: Stmt<{
    queue: string;
    key: string | null;
    state: number;
    attempts: number;
    parent_id: string | null;
  }>;
  private readonly leased: Stmt<Row>;
  private readonly requeue: Stmt<unknown>;
  private readonly putBack: Stmt<unknown>;
  private readonly end: Stmt<unknown>;
  private readonly extendLease: Stmt<{ lease_until: number }>;
  private readonly setProgress: Stmt<{ queue: string; attempts: number }>;
  /** What a message's end does to its flow parent. */
  readonly flows: Flows;

  constructor(
    db: Database.Database,
    private readonly queues: Queues,
    private readonly keys: Keys,
    private readonly leases: Leases,
    private readonly deadLetter: DeadLetter,
    private readonly retryDelay: StoreContext['retryDelay'],
  ) {
    const s = preparer(db);
    this.flows = new Flows(
      db,
      (row, state, error, now, events) => this.finish(row, state, error, now, events),
      (row, now, events) => this.deadLetter.copy(row, now, events),
    );
    // The common ack: this process claimed the message and no cancel is pending, so nothing needs to be read
    // back (about 1.7 against 3.8 µs per row with RETURNING; bench/sql-choices.ts). Else `completeRead`.
    this.completeKnown = s(
      `UPDATE messages SET state = 2, result = ?, finished_at = ?, receipt = NULL, lease_until = NULL
       WHERE seq = ? AND id = ? AND receipt = ? AND state = 1 AND lease_until > ? AND cancel_requested = 0`,
    );
    this.completeRead = s(
      `UPDATE messages
         SET state = CASE cancel_requested WHEN 1 THEN 4 ELSE 2 END, result = @result,
             finished_at = @now, receipt = NULL, lease_until = NULL
       WHERE seq = @seq AND id = @id AND receipt = @receipt AND state = 1 AND lease_until > @now
       RETURNING queue, key, state, attempts, parent_id`,
    );
    this.leased = s(
      'SELECT * FROM messages WHERE seq = ? AND id = ? AND receipt = ? AND state = 1 AND lease_until > ?',
    );
    this.requeue = s(
      'UPDATE messages SET state = 0, run_at = ?, error = ?, receipt = NULL, lease_until = NULL WHERE seq = ?',
    );
    this.putBack = s(
      `UPDATE messages SET state = 0, attempts = attempts - 1, run_at = ?, receipt = NULL, lease_until = NULL
       WHERE seq = ?`,
    );
    this.end = s(
      `UPDATE messages SET state = @state, error = coalesce(@error, error), finished_at = @now,
         receipt = NULL, lease_until = NULL, blocked = 0
       WHERE seq = @seq`,
    );
    // No lease outlives the attempt's deadline.
    this.extendLease = s(
      `UPDATE messages SET lease_until = min(@until, coalesce(deadline, @until))
       WHERE seq = @seq AND id = @id AND receipt = @receipt AND state = 1 AND lease_until > @now
         AND cancel_requested = 0
       RETURNING lease_until`,
    );
    this.setProgress = s(
      `UPDATE messages SET progress = @value
       WHERE seq = @seq AND id = @id AND receipt = @receipt AND state = 1 AND lease_until > @now
       RETURNING queue, attempts`,
    );
  }

  complete(items: TimedCompletion[], events: PendingEvent[]): Settled[] {
    const out: Settled[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as TimedCompletion;
      const now = item.now;
      const seq = seqOf(item.receipt);
      const known = this.leases.get(seq);
      if (known && this.completeKnown.run(item.result, now, seq, item.id, item.receipt, now).changes === 1) {
        this.leases.delete(seq);
        this.keys.unblockNext(known.queue, known.key);
        completed(events, known.queue, item, known.attempt);
        if (known.parentId !== null) {
          this.flows.ended({ id: item.id, queue: known.queue, parent_id: known.parentId }, COMPLETED, now, events);
        }
        out[i] = 'completed';
        continue;
      }
      const row = this.completeRead.get({ seq, id: item.id, receipt: item.receipt, result: item.result, now });
      if (!row) {
        out[i] = null;
        continue;
      }
      this.leases.delete(seq);
      this.keys.unblockNext(row.queue, row.key);
      if (row.state === COMPLETED) {
        completed(events, row.queue, item, row.attempts);
        out[i] = 'completed';
      } else {
        events.push({ type: 'cancelled', queue: row.queue, id: item.id, at: now, attempt: row.attempts });
        out[i] = 'cancelled';
      }
      if (row.parent_id !== null)
        this.flows.ended({ id: item.id, queue: row.queue, parent_id: row.parent_id }, row.state, now, events);
    }
    return out;
  }

  fail(items: Failure[], now: number, events: PendingEvent[]): Settled[] {
    return items.map((item): Settled => {
      const row = this.take(item, item.error, now, events);
      if (row === null || row === 'cancelled') return row;
      if (!item.retry || row.attempts >= this.queues.maxAttempts(row)) {
        this.finish(row, DEAD, item.error, now, events);
        return 'dead';
      }
      this.retryAt(row, now + (item.delay ?? this.backoff(row)), item.error, now, events);
      return 'queued';
    });
  }

  /** The wait before the next attempt of `row`, whose attempt `row.attempts` failed, by its backoff. */
  backoff(row: Row): number {
    const backoff = row.backoff
      ? (JSON.parse(row.backoff) as QueueSettings['backoff'])
      : this.queues.settings(row.queue).backoff;
    return this.retryDelay(row.attempts, backoff);
  }

  release(items: DeliveryRefItem[], now: number, events: PendingEvent[]): Settled[] {
    return items.map((item): Settled => {
      const row = this.take(item, null, now, events);
      if (row === null || row === 'cancelled') return row;
      this.putBack.run(now, row.seq);
      events.push({ type: 'retrying', queue: row.queue, id: row.id, at: now, attempt: row.attempts - 1, runAt: now });
      return 'queued';
    });
  }

  /**
   * The row `item`'s receipt leases, taken out of the lease hints; null when the receipt is stale. A message
   * flagged for cancel ends cancelled here, whatever the attempt's outcome, keeping `error` when given.
   */
  private take(
    item: DeliveryRefItem,
    error: string | null,
    now: number,
    events: PendingEvent[],
  ): Row | 'cancelled' | null {
    const row = this.leased.get(seqOf(item.receipt), item.id, item.receipt, now);
    if (!row) return null;
    this.leases.delete(row.seq);
    if (row.cancel_requested !== 1) return row;
    this.finish(row, CANCELLED, error, now, events);
    return 'cancelled';
  }

  extend(id: string, receipt: string, lease: number, now: number): number | null {
    return this.extendLease.get({ seq: seqOf(receipt), id, receipt, now, until: now + lease })?.lease_until ?? null;
  }

  progress(id: string, receipt: string, value: string, now: number, events: PendingEvent[]): boolean {
    const row = this.setProgress.get({ seq: seqOf(receipt), id, receipt, now, value });
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
  }

  /**
   * Ends `row` dead or cancelled, keeping `error` (JSON text) when given, and lets the next of its key go.
   * Every path to dead comes here, so a dead message's copy to its queue's dead-letter queue is made here.
   */
  finish(
    row: Row,
    state: typeof DEAD | typeof CANCELLED,
    error: string | null,
    now: number,
    events: PendingEvent[],
  ): void {
    this.end.run({ state, error, now, seq: row.seq });
    this.keys.unblockNext(row.queue, row.key);
    const event: PendingEvent = {
      type: state === DEAD ? 'dead' : 'cancelled',
      queue: row.queue,
      id: row.id,
      at: now,
      attempt: row.attempts,
    };
    if (error !== null) event.error = JSON.parse(error);
    events.push(event);
    if (state === DEAD) this.deadLetter.copy(row, now, events);
    if (row.parent_id !== null) this.flows.ended(row, state, now, events);
  }

  /** Puts the failed attempt of `row` back in the queue, due at `runAt`, keeping `error` (JSON text). */
  retryAt(row: Row, runAt: number, error: string, now: number, events: PendingEvent[]): void {
    this.requeue.run(runAt, error, row.seq);
    events.push({
      type: 'retrying',
      queue: row.queue,
      id: row.id,
      at: now,
      attempt: row.attempts,
      error: JSON.parse(error),
      runAt,
    });
  }
}

function completed(events: PendingEvent[], queue: string, item: TimedCompletion, attempt: number): void {
  events.push({
    type: 'completed',
    queue,
    id: item.id,
    at: item.now,
    attempt,
    result: item.result === null ? null : JSON.parse(item.result),
  });
}
