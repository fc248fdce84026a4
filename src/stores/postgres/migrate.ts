/**
 * The schema: numbered SQL migrations (`migrations/NNN-name.sql`: tables and indexes, history that never
 * changes) and the functions (`functions/*.sql`: the store's rules, one file per concern, always the current
 * text). Both are applied inside one transaction under an advisory lock on the schema, so processes starting
 * at once serialize and each migration runs exactly once. The functions are dropped and created again, all
 * together, whenever their text differs from what the schema records (a hash in `meta`).
 * A schema newer than the newest migration known here is refused: an older Ferry must not write to it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { UnavailableError } from '../../core/errors.ts';

/** The SQL files ship in `src/`; the compiled store in `dist/` reads them from there when they were not copied. */
function directory(name: 'migrations' | 'functions'): string {
  const here = fileURLToPath(new URL(`./${name}/`, import.meta.url));
  if (existsSync(here)) return here;
  return fileURLToPath(new URL(`../../../src/stores/postgres/${name}/`, import.meta.url));
}

/** Function files, in the order they are created (a function may call one defined in an earlier file). */
const FUNCTION_FILES = [
  'events',
  'keys',
  'send',
  'dead-letter',
  'flows',
  'sweep',
  'settle',
  'claim',
  'admin',
  'webhooks',
];

export function functions(): { name: string; sql: string }[] {
  const dir = directory('functions');
  const present = readdirSync(dir).filter((name) => name.endsWith('.sql'));
  const order = FUNCTION_FILES.map((name) => `${name}.sql`);
  const unknown = present.filter((name) => !order.includes(name));
  if (unknown.length) throw new Error(`functions/${unknown[0]} is not listed in FUNCTION_FILES (migrate.ts)`);
  return order.map((name) => ({ name, sql: readFileSync(`${dir}/${name}`, 'utf8') }));
}

export function migrations(): { version: number; name: string; sql: string }[] {
  const dir = directory('migrations');
  return readdirSync(dir)
    .filter((name) => /^\d+-.*\.sql$/.test(name))
    .sort()
    .map((name) => ({ version: Number.parseInt(name, 10), name, sql: readFileSync(`${dir}/${name}`, 'utf8') }));
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Applies pending migrations to `schema`; answers the schema version now in place. */
export async function migrate(client: pg.ClientBase, schema: string): Promise<number> {
  const all = migrations();
  const known = all.length ? (all[all.length - 1] as { version: number }).version : 0;
  const s = quoteIdent(schema);
  await client.query('BEGIN');
  try {
    // Two-key form: a separate lock space from the one-key locks taken on ordering keys.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('ferry.migrate'), hashtext($1))", [schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.meta (key text PRIMARY KEY, value text NOT NULL)`);
    const row = await client.query<{ value: string }>(`SELECT value FROM ${s}.meta WHERE key = 'schema_version'`);
    const current = row.rows[0] ? Number(row.rows[0].value) : 0;
    if (current > known) {
      throw new UnavailableError(
        `the PostgreSQL schema ${s} is at version ${current}, newer than this Ferry knows (${known}): upgrade Ferry`,
      );
    }
    for (const m of all) {
      if (m.version > current) await client.query(m.sql.replaceAll('{{schema}}', s));
    }
    await client.query(
      `INSERT INTO ${s}.meta (key, value) VALUES ('schema_version', $1)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      [String(Math.max(current, known))],
    );
    await installFunctions(client, s, schema);
    await client.query('COMMIT');
    return Math.max(current, known);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/**
 * Planner settings of every PL/pgSQL function of the store. PL/pgSQL caches a statement's plan after a few
 * calls (a generic plan), costed for the table as it was then: on a new schema, a near-empty `messages`,
 * where a sequential scan is cheapest. The plan stays cached while the table grows (until ANALYZE invalidates
 * it), and an ack's `m.id = ANY(…)` then compared every row against every id: 8-12 ms steps a few seconds
 * into a mixed workload on a fresh schema (auto_explain). With sequential scans priced out, the cached plans
 * find rows by index whatever the table held when they were made; JIT stays off, since the penalty's cost
 * would otherwise cross `jit_above_cost` and compile each statement that must scan (the one-row `event_seq`).
 * Plans are generic from the first call: left to choose, PL/pgSQL kept custom plans for statements over an
 * array of ids (a custom plan, costed for the array's real length, always looks cheaper than the generic
 * one), so every claim and ack was planned again, and planning was most of a small step's cost.
 * `npx tsx bench/pg-costs.ts --claim 1` (alternated, this setting for the whole database against none):
 * claim+ack server time 859 / 1,167 -> 417 / 333 µs per message; `--claim 50`: 41.3 / 40.8 -> 37.8 / 38.6.
 * A statement whose best plan depends on a parameter's value (one queue or all) is written as two statements
 * instead (`expire_leases`). SQL functions are left alone: a SET clause would keep them from being inlined.
 */
const FUNCTION_SETTINGS = 'SET enable_seqscan = off SET jit = off SET plan_cache_mode = force_generic_plan';

/**
 * Creates the current functions when their text changed, after dropping the ones this store created before
 * (their names are recorded in `meta`, so functions of the user's in a shared schema are never touched).
 */
async function installFunctions(client: pg.ClientBase, s: string, schema: string): Promise<void> {
  const files = functions();
  const hash = createHash('sha256');
  hash.update(FUNCTION_SETTINGS).update('\0');
  for (const f of files) hash.update(f.name).update('\0').update(f.sql).update('\0');
  const digest = hash.digest('hex');
  const meta = await client.query<{ key: string; value: string }>(
    `SELECT key, value FROM ${s}.meta WHERE key IN ('functions', 'function_names')`,
  );
  const value = (key: string) => meta.rows.find((r) => r.key === key)?.value;
  if (value('functions') === digest) return;
  const before = JSON.parse(value('function_names') ?? '[]') as string[];
  const old = await client.query<{ signature: string }>(
    `SELECT p.oid::regprocedure::text AS signature FROM pg_proc p
      WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND p.proname = ANY($2::text[])`,
    [schema, before],
  );
  for (const f of old.rows) await client.query(`DROP FUNCTION ${qualified(f.signature, s)}`);
  const names = new Set<string>();
  for (const f of files) {
    for (const m of f.sql.matchAll(/CREATE FUNCTION \{\{schema\}\}\.(\w+)\(/g)) names.add(m[1] as string);
    await client.query(f.sql.replaceAll('{{schema}}', s));
  }
  const plpgsql = await client.query<{ signature: string }>(
    `SELECT p.oid::regprocedure::text AS signature FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
      WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND p.proname = ANY($2::text[])
        AND l.lanname = 'plpgsql'`,
    [schema, [...names]],
  );
  for (const f of plpgsql.rows) await client.query(`ALTER FUNCTION ${qualified(f.signature, s)} ${FUNCTION_SETTINGS}`);
  await client.query(
    `INSERT INTO ${s}.meta (key, value) VALUES ('functions', $1), ('function_names', $2)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    [digest, JSON.stringify([...names].sort())],
  );
}

/** regprocedure's text is qualified only when the schema is not on the search path. */
function qualified(signature: string, s: string): string {
  return signature.includes('.') ? signature : `${s}.${signature}`;
}
