/** `sqlite:PATH` and `memory:` stores: the factory and its options. */
import { resolve } from 'node:path';
import { InvalidRequestError } from '../../core/errors.ts';
import type { Store } from '../../store/store.ts';
import { type SqliteOptions, SqliteStore } from './store.ts';

export type { SqliteOptions } from './store.ts';
export { SqliteStore } from './store.ts';

/** Whether `url` names a SQLite store (`sqlite:PATH`, `memory:`). */
export function isSqliteUrl(url: string): boolean {
  return url === 'memory:' || url.startsWith('sqlite:');
}

const isMemory = (url: string): boolean => url === 'memory:' || url === 'sqlite::memory:';

function splitSqliteUrl(url: string): [path: string, query: string] {
  const [path, query] = url.slice('sqlite:'.length).replace(/^\/\//, '').split('?');
  if (!path) throw new InvalidRequestError(`store URL ${url} has no file path: use sqlite:PATH`);
  return [resolve(path), query ?? ''];
}

/** The absolute path of the file a `sqlite:PATH` URL names; undefined for every other store. */
export function sqliteFile(url: string): string | undefined {
  return url.startsWith('sqlite:') && !isMemory(url) ? splitSqliteUrl(url)[0] : undefined;
}

/**
 * A store on the SQLite file of `url` (`sqlite:PATH?synchronous=normal`), or on SQLite's in-memory
 * database for `memory:` (and `sqlite::memory:`). The URL's `synchronous` wins over `options.synchronous`.
 */
export function createSqliteStore(url: string, options: SqliteOptions = {}): Store {
  if (isMemory(url)) return new SqliteStore(':memory:', options);
  const [path, query] = splitSqliteUrl(url);
  const params = new URLSearchParams(query);
  const sync = params.get('synchronous')?.toLowerCase() ?? options.synchronous;
  if (sync !== undefined && sync !== 'full' && sync !== 'normal') {
    throw new InvalidRequestError(`synchronous must be "full" or "normal", got ${JSON.stringify(sync)}`);
  }
  return new SqliteStore(path, { ...options, synchronous: sync });
}
