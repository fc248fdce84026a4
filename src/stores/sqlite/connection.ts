/**
 * The SQLite connection: opening the file, the group commit every write goes through, and the mapping of
 * "SQLite cannot do this now" errors to {@link UnavailableError}.
 *
 * Group commit. Operations that arrive in the same turn of the event loop run in one transaction and share
 * one fsync; each caller's promise resolves only after that commit. An operation that throws is rolled back
 * alone (a savepoint each), so one bad call never fails its neighbours.
 *
 * better-sqlite3 is synchronous: the transaction, fsync included, runs on the event loop. Measured on the
 * 2-core VM, one FULL commit costs ~0.1 ms, so batching everything queued in a tick is what makes
 * throughput (one fsync per batch, not per message) while a lone call still commits within the same tick.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { UnavailableError } from '../../core/errors.ts';
import type { PendingEvent } from '../../store/store.ts';
import type { EventLog } from './events.ts';
import { migrate } from './migrate.ts';

/** A prepared statement answering rows of type R (a named type, so declarations can refer to it). */
export interface Stmt<R> extends Database.Statement<unknown[], R> {}

/** Prepares statements on `db`; each module prepares its own, once, when the store opens. */
export function preparer(db: Database.Database): <R = unknown>(sql: string) => Stmt<R> {
  return <R = unknown>(sql: string): Stmt<R> => db.prepare<unknown[], R>(sql);
}

/**
 * Result codes that say the database cannot be written (or read) right now, not that the statement is
 * wrong: a full disk, another process holding the lock past busy_timeout, an I/O error, a read-only or
 * vanished file. Extended codes (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT, …) share the prefix.
 */
const UNAVAILABLE_CODES = /^SQLITE_(FULL|BUSY|IOERR|READONLY|CANTOPEN)/;

/** better-sqlite3's error for a statement run on a closed connection. */
const NOT_OPEN = /database connection is not open/i;

/**
 * `error` as the caller should see it: an {@link UnavailableError} (retry later) when SQLite cannot work
 * now or the store is closed, else unchanged. Every write is one transaction that either committed or was
 * rolled back, so the message can say the operation was not applied.
 */
export function unavailable(error: unknown): unknown {
  if (error instanceof UnavailableError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) {
    return new UnavailableError(
      `SQLite cannot complete the operation now (${code}: ${(error as Error).message}); it was not applied: retry later`,
      { cause: error },
    );
  }
  if (error instanceof TypeError && NOT_OPEN.test(error.message)) {
    return new UnavailableError('the store is closed', { cause: error });
  }
  return error;
}

/** Runs a read outside the group commit, with SQLite's errors mapped as for writes. */
export function read<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw unavailable(error);
  }
}

/** Opens (creating the folder if needed) and migrates the database at `path`, or `:memory:`. */
export function openDatabase(path: string, synchronous: 'full' | 'normal'): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    db.pragma('busy_timeout = 10000');
    if (path !== ':memory:') db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    migrate(db);
    return db;
  } catch (error) {
    db?.close();
    throw unavailable(error);
  }
}

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

export class GroupCommit {
  private pending: Op[] = [];
  private scheduled = false;
  private closed = false;
  private readonly begin: Stmt<unknown>;
  private readonly commit: Stmt<unknown>;
  private readonly rollback: Stmt<unknown>;
  private readonly savepoint: Stmt<unknown>;
  private readonly release: Stmt<unknown>;
  private readonly rollbackTo: Stmt<unknown>;
  private readonly relaxed: Stmt<unknown> | undefined;
  private readonly strict: Stmt<unknown> | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly log: EventLog,
    fullSync: boolean,
  ) {
    const s = preparer(db);
    // A transaction holding only claims (and extends, progress) commits without its own fsync: losing it in
    // a power cut only means delivering those messages again, which at-least-once allows; the next durable
    // commit fsyncs the log and everything before it. It saves one fsync between a send and its handler.
    if (fullSync) {
      this.relaxed = s('PRAGMA synchronous = NORMAL');
      this.strict = s('PRAGMA synchronous = FULL');
    }
    this.begin = s('BEGIN IMMEDIATE');
    this.commit = s('COMMIT');
    this.rollback = s('ROLLBACK');
    this.savepoint = s('SAVEPOINT op');
    this.release = s('RELEASE op');
    this.rollbackTo = s('ROLLBACK TO op');
  }

  /** Runs `fn` inside the next group transaction; resolves with its value once committed. */
  run<T>(fn: (events: PendingEvent[]) => T, durable = true): Promise<T> {
    if (this.closed) return Promise.reject(new UnavailableError('the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run: fn, resolve: resolve as (value: unknown) => void, reject, durable });
      this.schedule();
    });
  }

  /**
   * Like `run` for one item of a batchable operation: items of the same `batch` queued in the same turn run
   * as one operation (one call of `fn` with all of them, one savepoint), and each caller gets its own result.
   * Acks from many handlers cost one statement loop instead of one operation each.
   */
  runBatched<I, R>(batch: Batch<I, R>, item: I): Promise<R> {
    if (this.closed) return Promise.reject(new UnavailableError('the store is closed'));
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
        this.schedule();
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

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const ops = this.pending;
    if (ops.length === 0) return;
    this.pending = [];
    const results: unknown[] = new Array(ops.length);
    const failed: (unknown | undefined)[] = new Array(ops.length);
    const events: PendingEvent[] = [];
    let published: ReturnType<EventLog['append']> = [];
    const mark = this.log.mark();
    const relax = this.relaxed !== undefined && ops.every((op) => op.durable === false);
    try {
      if (relax) this.relaxed?.run();
      this.begin.run();
      try {
        const single = ops.length === 1;
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i] as Op;
          const eventsBefore = events.length;
          if (single) {
            results[i] = op.run(events);
            continue;
          }
          this.savepoint.run();
          try {
            results[i] = op.run(events);
            this.release.run();
          } catch (error) {
            // SQLite may roll back the whole transaction on a full disk or an I/O error: then nothing of the
            // group stands, and every operation fails with that error.
            if (!this.db.inTransaction) throw error;
            this.rollbackTo.run();
            this.release.run();
            events.length = eventsBefore;
            failed[i] = unavailable(error ?? new Error('operation failed'));
          }
        }
        if (events.length) published = this.log.append(events);
        this.commit.run();
      } catch (error) {
        if (this.db.inTransaction) this.rollback.run();
        throw error;
      }
    } catch (error) {
      // Nothing was committed: other processes' events read meanwhile must be read (and published) again.
      this.log.reset(mark);
      const mapped = unavailable(error);
      for (const op of ops) op.reject(mapped);
      return;
    } finally {
      if (relax) {
        try {
          this.strict?.run();
        } catch {
          // The connection is gone (closed, or the file vanished): the next operation reports it.
        }
      }
    }
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as Op;
      if (failed[i] !== undefined) op.reject(failed[i]);
      else op.resolve(results[i]);
    }
    if (published.length) this.log.deliver(published);
  }
}
