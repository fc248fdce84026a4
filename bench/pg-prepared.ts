/**
 * What one lone send costs the server, by how it is sent: `pgbench` (one client, no Node in the way) runs on
 * a fresh schema, alternately, a raw single-row insert into a bare jsonb table (the floor), the `send_one`
 * function call with `-M extended` (unnamed statements, parsed and planned on every call, as node-postgres
 * sends them unnamed) and with `-M prepared` (named, as the store's `Database.call` sends them), and the
 * statement the store sends a lone message with now (`loneSendSql`, both ways: unnamed is how it runs
 * behind PgBouncer in transaction mode), and prints each run's mean latency. `row prepared` is the message's
 * row alone, inserted as the statement inserts it but with no event: what a send costs without its durable
 * `sent` event, the floor of any send that keeps the contract. Needs `pgbench` on the PATH and the database
 * the tests use.
 *
 *   npx tsx bench/pg-prepared.ts [--rounds 3] [--seconds 4]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { open } from '../src/index.ts';
import { loneSendSql } from '../src/stores/postgres/send.ts';
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
const s = `"${schema.schema}"`;
const at = "'2026-11-30T00:00:00.000Z'";
// The ids grow with time, as the store's do (random ones would spread the inserts over the primary key).
const id = "to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS') || md5(random()::text)";
const lone = [id, "'q'", '0', '1000', `'{"i":1}'`, 'null', 'null', 'null', 'null', 'null', '1000', at, "'pgbench'"];
const scripts = {
  raw: `INSERT INTO ${s}.raw_sends (payload) VALUES ('{"i":1}');\n`,
  row: `INSERT INTO ${s}.messages (id, seq, queue, state, priority, run_at, payload, sent_at) VALUES (${id}, nextval('${s}.messages_seq'), 'q', 0, 0, 1000, '{"i":1}', 1000);\n`,
  send_one: `SELECT ${s}.send_one(${id}, 'q', 0, 1000, '{"i":1}', null, null, null, null, null, 1000, ${at}, false, 'pgbench');\n`,
  statement: `${loneSendSql(s)
    .replace(/\$(\d+)(::\w+)?/g, (_, n: string) => `(${lone[Number(n) - 1]})`)
    .replace(/\s+/g, ' ')};\n`,
};
for (const [name, text] of Object.entries(scripts)) writeFileSync(join(dir, `${name}.pgb`), text);
const setup = new pg.Client({ connectionString: schema.url.replace(/[?&]schema=[^&]*/, '') });
await setup.connect();
await setup.query(`CREATE TABLE ${s}.raw_sends (id bigserial PRIMARY KEY, payload jsonb NOT NULL)`);
await setup.query(`INSERT INTO ${s}.queues (name) VALUES ('q')`);
await setup.end();
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
    const runs: [string, string][] = [
      ['raw', 'prepared'],
      ['row', 'prepared'],
      ['send_one', 'extended'],
      ['send_one', 'prepared'],
      ['statement', 'extended'],
      ['statement', 'prepared'],
    ];
    for (const [script, mode] of runs) {
      const out = execFileSync(
        'pgbench',
        ['-n', '-M', mode, '-c', '1', '-T', String(SECONDS), '-f', join(dir, `${script}.pgb`), ...connection],
        {
          encoding: 'utf8',
          env: { ...process.env, PGPASSWORD: decodeURIComponent(base.password) },
        },
      );
      line.push(`${script} ${mode} ${/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? '?'} ms`);
    }
    console.log(`round ${round}: ${line.join(', ')}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  await schema.drop();
}
