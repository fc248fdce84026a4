/**
 * `open(url)`: a Ferry on a store chosen by URL. `sqlite:PATH` (the default, `sqlite:./ferry-data/ferry.db`),
 * `memory:` (SQLite's in-memory database, same code), `postgres://…` (loaded lazily, so SQLite users never
 * load `pg`).
 */
import { InvalidRequestError } from './core/errors.ts';
import type { Ferry } from './core/types.ts';
import type { Clock } from './engine/clock.ts';
import { Engine, type EngineOptions } from './engine/engine.ts';
import type { Store } from './store/store.ts';
import { createSqliteStore, isSqliteUrl } from './stores/sqlite/index.ts';

export const DEFAULT_STORE = 'sqlite:./ferry-data/ferry.db';

export interface OpenOptions extends EngineOptions {
  /** SQLite: `full` (default) fsyncs each commit; `normal` survives crashes but may lose the last commits on power loss. */
  synchronous?: 'full' | 'normal';
  /** PostgreSQL: the application's own pool (Ferry will not end it). */
  pool?: unknown;
  /** PostgreSQL: connections in Ferry's pool. */
  poolSize?: number;
  /** PostgreSQL: schema for Ferry's tables (default `ferry`, or `?schema=` in the URL). */
  schema?: string;
}

export { sqliteFile } from './stores/sqlite/index.ts';

export async function createStore(url: string, options: OpenOptions = {}): Promise<Store> {
  if (isSqliteUrl(url)) return createSqliteStore(url, options);
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { createPostgresStore } = await import('./stores/postgres/index.ts');
    return createPostgresStore(url, options as Parameters<typeof createPostgresStore>[1]);
  }
  throw new InvalidRequestError(`unknown store URL ${JSON.stringify(url)}: use sqlite:PATH, memory: or postgres://…`);
}

/** Opens a Ferry on the store at `url` (default `sqlite:./ferry-data/ferry.db`). */
export async function open(
  url: string = process.env.FERRY_STORE ?? DEFAULT_STORE,
  options: OpenOptions = {},
): Promise<Ferry> {
  const store = await createStore(url, options);
  // PostgreSQL: unless the caller brings a clock, time comes from the database's clock (corrected by the
  // measured offset), so processes on different machines agree on leases, due times and retention.
  const fromDatabase = (store as { databaseClock?: () => Promise<Clock> }).databaseClock;
  if (options.clock === undefined && fromDatabase) {
    let clock: Clock;
    try {
      clock = await fromDatabase.call(store);
    } catch (error) {
      await store.close().catch(() => {});
      throw error;
    }
    return Engine.create(store, { ...options, clock });
  }
  return Engine.create(store, options);
}
