/**
 * Transactions and error mapping. Connection failures (the server restarting, a network cut) become
 * {@link UnavailableError} with the cause attached; deadlocks and serialization failures are retried.
 */
import type pg from 'pg';
import { UnavailableError } from '../../core/errors.ts';

const RETRYABLE = new Set(['40P01', '40001']);

/** SQLSTATE classes and driver errors that mean the connection, not the statement, failed. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | null;
  if (!e) return false;
  const code = e.code ?? '';
  if (code.startsWith('08') || code.startsWith('57P') || code === '53300') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true;
  const message = e.message ?? '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(
    message,
  );
}

/** Failures to open a connection: nothing reached the database, so nothing was applied. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', '53300', '57P03']);

export function unavailable(error: unknown): unknown {
  if (error instanceof UnavailableError || !isConnectionError(error)) return error;
  const why = (error as Error).message || String(error);
  const outcome = NOT_CONNECTED.has((error as { code?: string }).code ?? '')
    ? 'nothing was applied: retry when it is back'
    : 'the operation may or may not have been applied: retry it (with a dedupeId, a send creates no duplicate)';
  return new UnavailableError(`PostgreSQL is unavailable (${why}); ${outcome}`, { cause: error });
}

/** Runs `fn` on a pooled client in BEGIN … COMMIT (`fn` commits itself when it returns `true` for `committed`). */
export async function transaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  attempts = 5,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw unavailable(error);
    }
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const value = await fn(client);
      return value;
    } catch (error) {
      if (isConnectionError(error)) broken = error;
      else await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
      const code = (error as { code?: string }).code ?? '';
      if (RETRYABLE.has(code) && attempt < attempts) continue;
      throw unavailable(error);
    } finally {
      client.release(broken instanceof Error ? broken : broken === undefined ? undefined : true);
    }
  }
}

/** One statement outside a transaction, with connection errors mapped. */
export async function query<R extends pg.QueryResultRow>(
  pool: pg.Pool,
  text: string,
  values?: unknown[],
): Promise<pg.QueryResult<R>> {
  try {
    return await pool.query<R>(text, values);
  } catch (error) {
    throw unavailable(error);
  }
}
