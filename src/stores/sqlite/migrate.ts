/**
 * Numbered SQL migrations (`migrations/NNN-name.sql`), applied in order inside one IMMEDIATE transaction, so
 * processes opening the same file at once serialize and each migration runs exactly once.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { UnavailableError } from '../../core/errors.ts';

const DIR = new URL('./migrations/', import.meta.url);

function migrations(): { version: number; sql: string }[] {
  return readdirSync(DIR)
    .filter((name) => /^\d+-.*\.sql$/.test(name))
    .sort()
    .map((name) => ({ version: Number.parseInt(name, 10), sql: readFileSync(new URL(name, DIR), 'utf8') }));
}

export function migrate(db: Database.Database): void {
  const all = migrations();
  const known = all.length ? (all[all.length - 1] as { version: number }).version : 0;
  db.exec('CREATE TABLE IF NOT EXISTS ferry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID');
  db.exec('BEGIN IMMEDIATE');
  try {
    const row = db.prepare("SELECT value FROM ferry_meta WHERE key = 'schema_version'").get() as
      | { value: string }
      | undefined;
    const current = row ? Number(row.value) : 0;
    if (current > known) {
      throw new UnavailableError(
        `this database's schema is version ${current}, newer than this Ferry knows (${known}): upgrade Ferry`,
      );
    }
    for (const m of all) if (m.version > current) db.exec(m.sql);
    db.prepare("INSERT OR REPLACE INTO ferry_meta (key, value) VALUES ('schema_version', ?)").run(String(known));
    db.exec('COMMIT');
  } catch (error) {
    db.exec('ROLLBACK');
    throw error;
  }
}
