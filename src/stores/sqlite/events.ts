/**
 * The event log: one row per committed transaction holding its events as a JSON array (seqs `seq` to
 * `seq + n - 1`). Appending happens inside the group commit's transaction; this process's own events are
 * delivered at once after the commit, other processes' (sharing the file) when this one next looks.
 */
import type Database from 'better-sqlite3';
import { reportListenerError } from '../../core/report.ts';
import type { FerryEvent } from '../../core/types.ts';
import type { PendingEvent } from '../../store/store.ts';
import { preparer, read, type Stmt } from './connection.ts';

/** Blocks read per look at other processes' events. */
const FOREIGN_BLOCKS = 200;

export class EventLog {
  private readonly lastBlock: Stmt<{ seq: number; n: number }>;
  private readonly insertBlock: Stmt<unknown>;
  private readonly blocksAfter: Stmt<{ seq: number; n: number; origin: string; data: string }>;
  private readonly blocksFrom: Stmt<{ seq: number; data: string }>;
  /** The highest event seq this process has handed to `onEvents` (its own and other processes'). */
  private seen: number;

  constructor(
    db: Database.Database,
    private readonly origin: string,
    private readonly onEvents: (events: FerryEvent[]) => void,
    /** Other processes may write to the file: their events are read back, in order, before ours. */
    private readonly shared: boolean,
  ) {
    const s = preparer(db);
    this.lastBlock = s('SELECT seq, n FROM events ORDER BY seq DESC LIMIT 1');
    this.insertBlock = s('INSERT INTO events (seq, n, at, origin, data) VALUES (?, ?, ?, ?, ?)');
    this.blocksAfter = s(`SELECT seq, n, origin, data FROM events WHERE seq > ? ORDER BY seq LIMIT ${FOREIGN_BLOCKS}`);
    // From the block holding `after` (a block's first seq may be lower), so no event is skipped.
    this.blocksFrom = s(
      `SELECT seq, data FROM events
       WHERE seq >= coalesce((SELECT max(seq) FROM events WHERE seq <= @after), 0)
       ORDER BY seq LIMIT 100`,
    );
    this.seen = this.lastSeq();
  }

  /** The highest event seq committed (by any process sharing the file). */
  lastSeq(): number {
    const block = this.lastBlock.get();
    return block ? block.seq + block.n - 1 : 0;
  }

  /** The first seq of the newest event block, or null when the log is empty. */
  lastBlockSeq(): number | null {
    return this.lastBlock.get()?.seq ?? null;
  }

  /** Where delivery stands, to go back to with {@link reset} when the transaction that read on is rolled back. */
  mark(): number {
    return this.seen;
  }

  reset(mark: number): void {
    this.seen = mark;
  }

  /**
   * Appends `pending` as one block, inside the caller's write transaction; answers what to deliver once it
   * commits: other processes' newer events first, then these. Within a write transaction no other process
   * can append meanwhile, so every reader sees seqs in order.
   */
  append(pending: PendingEvent[]): FerryEvent[] {
    const before = this.shared ? this.foreign() : [];
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
    this.seen = seq - 1;
    return before.length ? [...before, ...out] : out;
  }

  /**
   * Hands committed events to `onEvents`. The listener's failure is reported, never thrown: this runs after
   * the commit (from setImmediate), where a throw would crash the process and the callers were answered.
   */
  deliver(events: FerryEvent[]): void {
    try {
      this.onEvents(events);
    } catch (error) {
      reportListenerError(error);
    }
  }

  /** Delivers what other processes committed since the last look (called on a timer). */
  catchUp(): void {
    const events = this.foreign();
    if (events.length) this.deliver(events);
  }

  /** Looks for other processes' events every `interval` ms; answers the function that stops it. */
  tail(interval: number): () => void {
    const timer = setInterval(() => {
      try {
        this.catchUp();
      } catch {
        // Busy or closing: the next tick tries again.
      }
    }, interval);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Events with seq greater than `after`, oldest first, at most `limit`. */
  read(after: number, limit: number): FerryEvent[] {
    return read(() => {
      const out: FerryEvent[] = [];
      let cursor = after;
      while (out.length < limit) {
        const blocks = this.blocksFrom.all({ after: cursor });
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
    });
  }

  /** Events other processes committed since the last look, oldest first. */
  private foreign(): FerryEvent[] {
    const out: FerryEvent[] = [];
    // Advanced only once all is read: a read that fails half-way leaves nothing skipped.
    let cursor = this.seen;
    for (;;) {
      const blocks = this.blocksAfter.all(cursor);
      for (const block of blocks) {
        cursor = block.seq + block.n - 1;
        if (block.origin !== this.origin) out.push(...(JSON.parse(block.data) as FerryEvent[]));
      }
      if (blocks.length < FOREIGN_BLOCKS) break;
    }
    this.seen = cursor;
    return out;
  }
}
