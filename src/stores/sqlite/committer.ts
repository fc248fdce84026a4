/**
 * Group commit. Operations that arrive in the same turn of the event loop run in one transaction and share
 * one fsync; each caller's promise resolves only after that commit. An operation that throws is rolled back
 * alone (a savepoint each), so one bad call never fails its neighbours.
 *
 * better-sqlite3 is synchronous: the transaction, fsync included, runs on the event loop. Measured on the
 * 2-core VM, one FULL commit costs ~0.1 ms, so batching everything queued in a tick is what makes
 * throughput (one fsync per batch, not per message) while a lone call still commits within the same tick.
 */
import type Database from 'better-sqlite3';
import type { FerryEvent } from '../../core/types.ts';
import type { PendingEvent } from '../../store/store.ts';

/** A batchable operation: `fn` runs a whole batch of items and answers one result per item, in order. */
export interface Batch<I, R> {
  fn: (items: I[], events: PendingEvent[]) => R[];
  open?: { items: I[]; resolvers: { resolve: (value: R) => void; reject: (error: unknown) => void }[] } | undefined;
}

type Op = {
  run: (events: PendingEvent[]) => unknown;
  /** False for changes a crash may lose harmlessly (a claim: the message is simply delivered again). */
  durable?: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
};

export class Committer {
  private pending: Op[] = [];
  private scheduled = false;
  private closed = false;
  private readonly begin: Database.Statement;
  private readonly commit: Database.Statement;
  private readonly rollback: Database.Statement;
  private readonly savepoint: Database.Statement;
  private readonly release: Database.Statement;
  private readonly rollbackTo: Database.Statement;
  private readonly lastBlock: Database.Statement<[], { seq: number; n: number }>;
  private readonly insertBlock: Database.Statement;

  private readonly relaxed: Database.Statement | undefined;
  private readonly strict: Database.Statement | undefined;
  private readonly blocksAfter: Database.Statement<[number], { seq: number; n: number; origin: string; data: string }>;
  /** The highest event seq this process has handed to `publish` (its own and other processes'). */
  private seen: number;

  constructor(
    private readonly db: Database.Database,
    private readonly origin: string,
    private readonly publish: (events: FerryEvent[]) => void,
    fullSync: boolean,
    /** Other processes may write to the file: their events are read back, in order, before ours. */
    private readonly shared: boolean,
  ) {
    // A transaction holding only claims (and extends, progress) commits without its own fsync: losing it in
    // a power cut only means delivering those messages again, which at-least-once allows; the next durable
    // commit fsyncs the log and everything before it. It saves one fsync between a send and its handler.
    if (fullSync) {
      this.relaxed = db.prepare('PRAGMA synchronous = NORMAL');
      this.strict = db.prepare('PRAGMA synchronous = FULL');
    }
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    this.savepoint = db.prepare('SAVEPOINT op');
    this.release = db.prepare('RELEASE op');
    this.rollbackTo = db.prepare('ROLLBACK TO op');
    this.lastBlock = db.prepare('SELECT seq, n FROM events ORDER BY seq DESC LIMIT 1');
    this.insertBlock = db.prepare('INSERT INTO events (seq, n, at, origin, data) VALUES (?, ?, ?, ?, ?)');
    this.blocksAfter = db.prepare('SELECT seq, n, origin, data FROM events WHERE seq > ? ORDER BY seq LIMIT 200');
    this.seen = this.lastSeq();
  }

  /**
   * Events other processes committed since the last look, oldest first. Within a write transaction none can
   * be added meanwhile, so reading them there, then appending ours, keeps every reader's view in seq order.
   */
  private foreign(): FerryEvent[] {
    const out: FerryEvent[] = [];
    for (;;) {
      const blocks = this.blocksAfter.all(this.seen);
      for (const block of blocks) {
        this.seen = block.seq + block.n - 1;
        if (block.origin !== this.origin) out.push(...(JSON.parse(block.data) as FerryEvent[]));
      }
      if (blocks.length < 200) return out;
    }
  }

  /** Hands over what other processes committed since the last look (called on a timer). */
  catchUp(): void {
    const events = this.foreign();
    if (events.length) this.publish(events);
  }

  /** The first seq of the newest event block, or null when the log is empty. */
  lastBlockSeq(): number | null {
    return this.lastBlock.get()?.seq ?? null;
  }

  /** The highest event seq committed (by any process sharing the file). */
  lastSeq(): number {
    const block = this.lastBlock.get();
    return block ? block.seq + block.n - 1 : 0;
  }

  /** Runs `fn` inside the next group transaction; resolves with its value once committed. */
  run<T>(fn: (events: PendingEvent[]) => T, durable = true): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run: fn, resolve: resolve as (value: unknown) => void, reject, durable });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Like `run` for one item of a batchable operation: items of the same `batch` queued in the same turn run
   * as one operation (one call of `fn` with all of them, one savepoint), and each caller gets its own result.
   * Acks from many handlers cost one statement loop instead of one operation each.
   */
  runBatched<I, R>(batch: Batch<I, R>, item: I): Promise<R> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return new Promise<R>((resolve, reject) => {
      if (batch.open === undefined) {
        const open = {
          items: [] as I[],
          resolvers: [] as { resolve: (value: R) => void; reject: (error: unknown) => void }[],
        };
        batch.open = open;
        this.pending.push({
          run: (events) => {
            batch.open = undefined;
            return batch.fn(open.items, events);
          },
          resolve: (results) => {
            for (let i = 0; i < open.resolvers.length; i++) open.resolvers[i]?.resolve((results as R[])[i] as R);
          },
          reject: (error) => {
            // The group failed before (or while) running this batch: later items must start a new one.
            if (batch.open === open) batch.open = undefined;
            for (const r of open.resolvers) r.reject(error);
          },
        });
        if (!this.scheduled) {
          this.scheduled = true;
          setImmediate(() => this.flush());
        }
      }
      batch.open.items.push(item);
      batch.open.resolvers.push({ resolve, reject });
    });
  }

  /** Commits what is pending now, then refuses new work. */
  close(): void {
    if (this.pending.length) this.flush();
    this.closed = true;
  }

  private flush(): void {
    this.scheduled = false;
    const ops = this.pending;
    if (ops.length === 0) return;
    this.pending = [];
    const results: unknown[] = new Array(ops.length);
    const failed: (unknown | undefined)[] = new Array(ops.length);
    const events: PendingEvent[] = [];
    let published: FerryEvent[] = [];
    const relax = this.relaxed !== undefined && ops.every((op) => op.durable === false);
    if (relax) this.relaxed?.run();
    try {
      this.begin.run();
      try {
        const single = ops.length === 1;
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i] as Op;
          const mark = events.length;
          if (single) {
            results[i] = op.run(events);
            continue;
          }
          this.savepoint.run();
          try {
            results[i] = op.run(events);
            this.release.run();
          } catch (error) {
            this.rollbackTo.run();
            this.release.run();
            events.length = mark;
            failed[i] = error ?? new Error('operation failed');
          }
        }
        if (events.length) {
          // Seqs must reach readers in order: other processes' newer blocks first, then ours.
          const before = this.shared ? this.foreign() : [];
          published = this.writeEvents(events);
          if (before.length) published = [...before, ...published];
          this.seen = (published[published.length - 1] as FerryEvent).seq;
        }
        this.commit.run();
      } catch (error) {
        if (this.db.inTransaction) this.rollback.run();
        throw error;
      }
    } catch (error) {
      for (const op of ops) op.reject(error);
      return;
    } finally {
      if (relax) this.strict?.run();
    }
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as Op;
      if (failed[i] !== undefined) op.reject(failed[i]);
      else op.resolve(results[i]);
    }
    if (published.length) this.publish(published);
  }

  private writeEvents(pending: PendingEvent[]): FerryEvent[] {
    let seq = this.lastSeq() + 1;
    const first = seq;
    const out: FerryEvent[] = new Array(pending.length);
    let lastAt = -1;
    let iso = '';
    for (let i = 0; i < pending.length; i++) {
      const e = pending[i] as PendingEvent;
      const at = e.at;
      if (at !== lastAt) {
        lastAt = at;
        iso = new Date(at).toISOString();
      }
      const event: FerryEvent = { seq: seq++, type: e.type, queue: e.queue, id: e.id, at: iso };
      if (e.attempt !== undefined) event.attempt = e.attempt;
      if (e.result !== undefined) event.result = e.result;
      if (e.error !== undefined) event.error = e.error as FerryEvent['error'];
      if (e.progress !== undefined) event.progress = e.progress;
      if (e.runAt !== undefined) (event as FerryEvent & { runAt?: number }).runAt = e.runAt;
      out[i] = event;
    }
    this.insertBlock.run(first, out.length, (pending[0] as PendingEvent).at, this.origin, JSON.stringify(out));
    return out;
  }
}
