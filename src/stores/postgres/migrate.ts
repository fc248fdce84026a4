/**
 * Numbered SQL migrations (`migrations/NNN-name.sql`), applied in order inside one transaction under an
 * advisory lock on the schema, so processes starting at once serialize and each migration runs exactly once.
 * A schema newer than the newest migration known here is refused: an older Ferry must not write to it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { UnavailableError } from '../../core/errors.ts';

/** The SQL files ship in `src/`; the compiled store in `dist/` reads them from there. */
function directory(): string {
  const here = fileURLToPath(new URL('./migrations/', import.meta.url));
  if (existsSync(here)) return here;
  return fileURLToPath(new URL('../../../src/stores/postgres/migrations/', import.meta.url));
}

export function migrations(): { version: number; name: string; sql: string }[] {
  const dir = directory();
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
    await client.query('COMMIT');
    return Math.max(current, known);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
