/**
 * The measurements behind the SQLite store's statement choices: `npx tsx bench/sql-choices.ts`.
 * Each pair runs on the store's own schema in an in-memory database (no fsync, so only the statement's
 * cost shows), 30,000 rows, three rounds; µs per row or per call, lower is better.
 */
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { migrate } from '../src/stores/sqlite/migrate.ts';

const N = 30_000;

function fresh(state = 0): Database.Database {
  const db = new Database(':memory:');
  migrate(db);
  db.prepare("INSERT INTO queues (name) VALUES ('q')").run();
  const insert = db.prepare(
    `INSERT INTO messages (id, queue, state, blocked, priority, run_at, payload, sent_at)
     VALUES (?, 'q', ?, 0, 0, 0, '{"i":1}', 0)`,
  );
  db.transaction(() => {
    for (let i = 0; i < N; i++) insert.run(`id-${i}`, state);
  })();
  return db;
}

function perRow(label: string, rows: number, fn: () => void): string {
  const t0 = performance.now();
  fn();
  return `${label} ${(((performance.now() - t0) / rows) * 1000).toFixed(2)}`;
}

const CLAIM_SELECT = `SELECT seq, id, payload, attempts, priority, key, headers, sent_at, lease FROM messages
  WHERE queue = 'q' AND state = 0 AND blocked = 0 AND run_at <= 1 ORDER BY priority DESC, run_at, seq LIMIT 50`;

for (let round = 1; round <= 3; round++) {
  const out: string[] = [];

  // Claiming 50 at a time: one UPDATE … RETURNING, against a SELECT then one UPDATE of those rows.
  let db = fresh();
  const returning = db
    .prepare(
      `UPDATE messages SET state = 1, attempts = attempts + 1, receipt = seq || '.x', lease_until = 100
       WHERE seq IN (SELECT seq FROM messages WHERE queue = 'q' AND state = 0 AND blocked = 0 AND run_at <= 1
                     ORDER BY priority DESC, run_at, seq LIMIT 50)
       RETURNING seq, id, payload, attempts, priority, key, headers, sent_at, lease_until`,
    )
    .raw(true);
  out.push(
    perRow('claim: UPDATE…RETURNING', N, () =>
      db.transaction(() => {
        while (returning.all().length > 0);
      })(),
    ),
  );
  db = fresh();
  const select = db.prepare(CLAIM_SELECT).raw(true);
  const lease = db.prepare(
    `UPDATE messages SET state = 1, attempts = attempts + 1, receipt = seq || '.x', lease_until = 100
     WHERE seq IN (SELECT value FROM json_each(?))`,
  );
  out.push(
    perRow('claim: SELECT + UPDATE', N, () =>
      db.transaction(() => {
        for (;;) {
          const rows = select.all() as unknown[][];
          if (rows.length === 0) break;
          lease.run(JSON.stringify(rows.map((r) => r[0])));
        }
      })(),
    ),
  );

  // Acking: UPDATE … RETURNING what the event needs, against a plain UPDATE (the store knows the rest).
  for (const withReturning of [true, false]) {
    db = fresh(1);
    db.exec("UPDATE messages SET receipt = seq || '.x', lease_until = 100");
    const ack = db.prepare(
      `UPDATE messages SET state = 2, result = NULL, finished_at = 2, receipt = NULL, lease_until = NULL
       WHERE seq = ? AND receipt = ? AND state = 1 AND lease_until > 2 AND cancel_requested = 0
       ${withReturning ? 'RETURNING queue, key, state, attempts' : ''}`,
    );
    out.push(
      perRow(withReturning ? 'ack: UPDATE…RETURNING' : 'ack: UPDATE', N, () =>
        db.transaction(() => {
          for (let seq = 1; seq <= N; seq++) {
            if (withReturning) ack.get(seq, `${seq}.x`);
            else ack.run(seq, `${seq}.x`);
          }
        })(),
      ),
    );
  }

  // The lease-expiry probe run by every claim (no lease has expired): `LIMIT ?` against a literal limit.
  db = fresh();
  const bound = db.prepare('SELECT * FROM messages WHERE state = 1 AND lease_until <= ? AND queue = ? LIMIT ?');
  const literal = db.prepare('SELECT * FROM messages WHERE state = 1 AND lease_until <= ? AND queue = ? LIMIT 1000');
  out.push(
    perRow('expiry probe: LIMIT ?', 10_000, () => {
      for (let i = 0; i < 10_000; i++) bound.all(5, 'q', 1000);
    }),
  );
  out.push(
    perRow('expiry probe: LIMIT 1000', 10_000, () => {
      for (let i = 0; i < 10_000; i++) literal.all(5, 'q');
    }),
  );

  console.log(`round ${round} (µs): ${out.join('; ')}`);
}
