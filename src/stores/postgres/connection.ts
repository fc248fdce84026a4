/**
 * The connection to PostgreSQL: statements and transactions on the pool, with the one retry loop of this
 * store (deadlocks and serialization failures run again) and the mapping of connection failures (a server
 * restarting, a network cut) to {@link UnavailableError}. Nothing here keeps session state on a pooled
 * connection (no SET, no session advisory lock), so a pooler in transaction mode (PgBouncer) can sit in
 * between. The one exception, named prepared statements for the hot path's calls, stops at the first sign
 * of such a pooler (see `call`).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { UnavailableError } from '../../core/errors.ts';

const RETRYABLE = new Set(['40P01', '40001']);
const ATTEMPTS = 5;

/** SQLSTATE classes and driver errors that mean the connection, not the statement, failed. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | null;
  if (!e) return false;
  const code = e.code ?? '';
  if (code.startsWith('08') || code.startsWith('57P') || code === '53300') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true;
  const message = e.message ?? '';
  return /Connection terminated|connection timeout|timeout expired|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|query_wait_timeout/i.test(
    message,
  );
}

/** Failures to open a connection: nothing reached the database, so nothing was applied. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', '53300', '57P03']);
/**
 * The same, told by their message: connecting ran out of time (`connect_timeout`), a pool's wait for a
 * connection did (an application's own pool), or a pooler refused the connection or gave up waiting for a
 * server connection before any statement ran (PgBouncer answers these with SQLSTATE 08P01).
 */
const NOT_CONNECTED_MESSAGE =
  /^(timeout expired|timeout exceeded when trying to connect|Connection terminated due to connection timeout|no such database|no such user|password authentication failed|pgbouncer cannot connect to server|query_wait_timeout)/i;

export function unavailable(error: unknown): unknown {
  if (error instanceof UnavailableError || !isConnectionError(error)) return error;
  const why = (error as Error).message || String(error);
  const notConnected = NOT_CONNECTED.has((error as { code?: string }).code ?? '') || NOT_CONNECTED_MESSAGE.test(why);
  const outcome = notConnected
    ? 'nothing was applied: retry when it is back'
    : 'the operation may or may not have been applied: retry it (with a dedupeId, a send creates no duplicate)';
  return new UnavailableError(`PostgreSQL is unavailable (${why}); ${outcome}`, { cause: error });
}

const retryable = (error: unknown) => RETRYABLE.has((error as { code?: string }).code ?? '');

/**
 * A named statement the server does not have (26000), or has already under that name (42P05): its
 * connection was not the one that prepared it, as behind a pooler in transaction mode. Or its cached plan
 * no longer fits (0A000, "cached plan must not change result type": another process's migration changed a
 * function's result). Nothing ran.
 */
function unprepared(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return e.code === '26000' || e.code === '42P05' || (e.code === '0A000' && /cached plan/.test(e.message ?? ''));
}

export class Database {
  private closed = false;

  constructor(
    readonly pool: pg.Pool,
    /** The quoted schema. */
    readonly s: string,
  ) {}

  /** Refuses new work once the store is closed. */
  close(): void {
    this.closed = true;
  }

  private open(): void {
    if (this.closed) throw unavailable(Object.assign(new Error('store is closed'), { code: '08003' }));
  }

  /**
   * Whether `call` names its statements, so that each connection parses and plans one once (PostgreSQL
   * otherwise does both for every call). Off for good once a statement turns out unprepared.
   */
  private named = true;
  private readonly names = new Map<string, string>();

  /** Whether `call` still names its statements (no pooler in transaction mode has turned up). */
  get prepares(): boolean {
    return this.named;
  }

  private nameOf(text: string): string {
    let name = this.names.get(text);
    if (name === undefined) {
      name = `ferry_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
      this.names.set(text, name);
    }
    return name;
  }

  /**
   * One statement, its own transaction, run again on a deadlock or serialization failure; its first row.
   * A fixed `text` (the hot path's function calls) runs as a named prepared statement, until a statement
   * turns out unprepared on its connection: then it runs again unnamed, as every later one does.
   */
  async call<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R> {
    this.open();
    for (let attempt = 1; ; attempt++) {
      const named = this.named;
      try {
        const r = await this.pool.query<R>(named ? { name: this.nameOf(text), text, values } : { text, values });
        return r.rows[0] as R;
      } catch (error) {
        if (named && unprepared(error)) {
          this.named = false;
          attempt--;
          continue;
        }
        if (retryable(error) && attempt < ATTEMPTS) continue;
        throw unavailable(error);
      }
    }
  }

  /** One read-only statement (nothing to run again). */
  async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    this.open();
    try {
      return await this.pool.query<R>(text, values);
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** `fn` inside BEGIN … COMMIT on one pooled connection, run again whole on a deadlock or serialization failure. */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.open();
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (error) {
        throw unavailable(error);
      }
      let broken: unknown;
      try {
        await client.query('BEGIN');
        const value = await fn(client);
        await client.query('COMMIT');
        return value;
      } catch (error) {
        if (isConnectionError(error)) broken = error;
        else await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
        if (retryable(error) && attempt < ATTEMPTS) continue;
        throw unavailable(error);
      } finally {
        client.release(broken instanceof Error ? broken : broken === undefined ? undefined : true);
      }
    }
  }
}
