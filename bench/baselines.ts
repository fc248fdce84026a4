/**
 * Raw limits measured in the same process as Ferry, so Ferry's figures are reported as ratios to them:
 * a bare SQLite table, WAL, with the same synchronous setting.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { Figure } from './workloads.ts';

export function rawSqlite(dir: string, n: number): Figure[] {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'raw.db');
  for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE q (id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL, created_at INTEGER NOT NULL)');
  const insert = db.prepare('INSERT INTO q (payload, created_at) VALUES (?, ?)');
  let t0 = performance.now();
  for (let i = 0; i < n; i++) insert.run(JSON.stringify({ i }), Date.now());
  const single = (n / (performance.now() - t0)) * 1000;
  const many = db.transaction((from: number) => {
    for (let i = from; i < from + 1000; i++) insert.run(JSON.stringify({ i }), Date.now());
  });
  t0 = performance.now();
  for (let b = 0; b < 50_000; b += 1000) many(b);
  const batched = (50_000 / (performance.now() - t0)) * 1000;
  db.close();
  for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
  return [
    { name: 'raw SQLite insert, 1 row per FULL commit', value: single, unit: 'rows/s' },
    { name: 'raw SQLite insert, 1000 rows per FULL commit', value: batched, unit: 'rows/s' },
  ];
}
