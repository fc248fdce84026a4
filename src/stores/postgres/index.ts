/**
 * `postgres://` and `postgresql://` stores. Loaded lazily by `open`, so SQLite-only users never load `pg`.
 */
import pg from 'pg';
import { InvalidRequestError } from '../../core/errors.ts';
import { redactUrl } from '../../core/redact.ts';
import type { Store } from '../../store/store.ts';
import { PostgresStore } from './store.ts';
import type { VacuumOptions } from './vacuum.ts';

export { DatabaseClock, databaseClockOffset } from './clock.ts';
export { PostgresStore } from './store.ts';

export interface PostgresOptions {
  /** The application's own pool; Ferry then never ends it. */
  pool?: pg.Pool;
  /** Connections of the pool Ferry creates. Default 10. */
  poolSize?: number;
  /** Overrides `?schema=` of the URL. Default `ferry`. */
  schema?: string;
  /** How often to look for other processes' events when no NOTIFY arrives (ms). Default 250. */
  pollInterval?: number;
  /**
   * Where Ferry LISTENs for other processes' events: a direct connection URL (behind a pooler in transaction
   * mode, LISTEN needs one), or false to rely on polling alone. Default: the store's own URL or pool. The URL
   * form is `?listen=<URL-encoded postgres URL>` or `?listen=off`.
   */
  listen?: string | false;
  /**
   * Ferry vacuums its hot tables itself once dead tuples pile up (see `Vacuumer`); false leaves it to
   * autovacuum. Default `{ interval: 10000, minDead: 10000 }`.
   */
  vacuum?: boolean | Partial<VacuumOptions>;
}

const SCHEMA = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** A store on the PostgreSQL database at `url` (`postgres://user@host:port/db?schema=NAME`). */
export function createPostgresStore(url: string, options: PostgresOptions = {}): Store {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidRequestError(`not a PostgreSQL URL: ${JSON.stringify(redactUrl(url))}`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new InvalidRequestError(`a PostgreSQL URL starts with postgres:// or postgresql://; got ${parsed.protocol}`);
  }
  const schema = options.schema ?? parsed.searchParams.get('schema') ?? 'ferry';
  if (!SCHEMA.test(schema)) {
    throw new InvalidRequestError(
      `schema must be a plain identifier (letters, digits, '_', not starting with a digit, at most 63); got ${JSON.stringify(schema)}`,
    );
  }
  parsed.searchParams.delete('schema');
  const listenParam = parsed.searchParams.get('listen');
  parsed.searchParams.delete('listen');
  const connectionTimeoutMillis = connectTimeout(parsed.searchParams.get('connect_timeout'));
  parsed.searchParams.delete('connect_timeout');
  const connectionString = parsed.toString();
  const poolSize = options.poolSize ?? 10;
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 1000) {
    throw new InvalidRequestError(`poolSize must be an integer from 1 to 1000; got ${String(options.poolSize)}`);
  }
  const own = options.pool === undefined;
  // The limit is each client's own, for connecting: on the pool it would also bound the wait for a free
  // connection, failing calls only queued behind slow ones (a caller's transaction holding a key's lock).
  const pool =
    options.pool ?? new pg.Pool({ connectionString, max: poolSize, Client: clientWith(connectionTimeoutMillis) });
  // An idle pooled connection dropped by a server restart must not crash the process; the pool replaces it.
  if (own) pool.on('error', () => {});
  const listenOption =
    options.listen ?? (listenParam === null ? undefined : listenParam === 'off' ? false : listenParam);
  let listen: pg.ClientConfig | null;
  if (listenOption === false) listen = null;
  else if (listenOption !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(listenOption)) {
      throw new InvalidRequestError(
        `listen must be a postgres:// URL (a direct connection for LISTEN) or off; got ${JSON.stringify(redactUrl(listenOption))}`,
      );
    }
    listen = { connectionString: listenOption, connectionTimeoutMillis };
  } else {
    listen = own
      ? { connectionString, connectionTimeoutMillis }
      : ({ ...(pool as unknown as { options: pg.ClientConfig }).options } as pg.ClientConfig);
  }
  return new PostgresStore({
    pool,
    ownsPool: own,
    schema,
    listen,
    pollInterval: options.pollInterval ?? 250,
    vacuum: vacuumOptions(options.vacuum),
  });
}

/**
 * How long opening a connection may take (`?connect_timeout=` in seconds, as libpq names it; default 10; 0:
 * no limit, as in libpq): a database that accepts connections and never answers (a stopped host behind a
 * proxy) fails the call as unavailable instead of hanging it, and `ferry serve` or the CLI exits with the
 * reason instead of waiting forever. Statements on open connections have no limit here.
 */
function connectTimeout(text: string | null): number {
  if (text === null) return 10_000;
  const seconds = Number(text);
  if (text.trim() === '' || !Number.isFinite(seconds) || seconds < 0 || seconds > 3600) {
    throw new InvalidRequestError(
      `connect_timeout must be a number of seconds from 0 (no limit) to 3600; got ${JSON.stringify(text)}`,
    );
  }
  return Math.ceil(seconds * 1000);
}

/** node-postgres's client, connecting within `ms` (0: no limit). */
function clientWith(ms: number): typeof pg.Client {
  return class extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(
        typeof config === 'string'
          ? { connectionString: config, connectionTimeoutMillis: ms }
          : { ...config, connectionTimeoutMillis: ms },
      );
    }
  };
}

function vacuumOptions(option: PostgresOptions['vacuum']): VacuumOptions | null {
  if (option === false) return null;
  const o = { interval: 10_000, minDead: 10_000, ...(typeof option === 'object' && option ? option : {}) };
  for (const [name, value] of Object.entries(o)) {
    if (!Number.isInteger(value) || value < 0) {
      throw new InvalidRequestError(`vacuum.${name} must be a non-negative integer; got ${String(value)}`);
    }
  }
  return o;
}
