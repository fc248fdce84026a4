/**
 * What a named prepared statement saves one lone send on the server: `pgbench` (one client, no Node in the
 * way) runs the store's `send_one` call on a fresh schema, alternately with `-M extended` (unnamed statements,
 * parsed and planned on every call, as node-postgres sends them unnamed) and `-M prepared` (named, as the
 * store's `Database.call` sends them), and prints each run's mean latency. Needs `pgbench` on the PATH and
 * the database the tests use.
 *
 *   npx tsx bench/pg-prepared.ts [--rounds 3] [--seconds 4]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { open } from '../src/index.ts';
import { testSchema } from '../test/support/postgres.ts';
import { integer } from './args.ts';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '4' } },
});
const ROUNDS = integer('--rounds', values.rounds, 1);
const SECONDS = integer('--seconds', values.seconds, 1);

const schema = await testSchema('pg_prepared');
// Opening the store migrates the schema: its tables and functions.
await (await open(schema.url)).close();
const dir = mkdtempSync(join(tmpdir(), 'ferry-pgbench-'));
const script = join(dir, 'send-one.pgb');
writeFileSync(
  script,
  `SELECT "${schema.schema}".send_one(md5(random()::text), 'q', 0, 1000, '{"i":1}', null, null, null, null, null, ` +
    `1000, '2026-11-30T00:00:00.000Z', false, 'pgbench');\n`,
);
const base = new URL(schema.url.replace(/[?&]schema=[^&]*/, ''));
const connection = [
  '-h',
  base.hostname,
  '-p',
  base.port || '5432',
  '-U',
  decodeURIComponent(base.username) || 'postgres',
  base.pathname.slice(1),
];
try {
  for (let round = 1; round <= ROUNDS; round++) {
    const line: string[] = [];
    for (const mode of ['extended', 'prepared']) {
      const out = execFileSync(
        'pgbench',
        ['-n', '-M', mode, '-c', '1', '-T', String(SECONDS), '-f', script, ...connection],
        {
          encoding: 'utf8',
          env: { ...process.env, PGPASSWORD: decodeURIComponent(base.password) },
        },
      );
      line.push(`${mode} ${/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? '?'} ms`);
    }
    console.log(`round ${round}: ${line.join(', ')}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  await schema.drop();
}
