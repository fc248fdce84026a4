/** `ferry work QUEUE -- COMMAND`: a program reading stdin and writing stdout is a worker. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import type { MessageInfo } from '../../src/core/types.ts';
import { ferry, json, tempDir } from './helpers.ts';

const temp = tempDir();
const store = `sqlite:${join(temp.dir, 'work.db')}`;
const run = (args: string[]) => ferry(args, { env: { FERRY_STORE: store } });
after(() => temp.remove());
const send = async (args: string[]) => {
  const sent = await run(['send', ...args]);
  assert.equal(sent.code, 0, sent.stderr);
  return sent.stdout.trim();
};

// The worker: doubles `n`, prints plain text for `text`, fails with a message on stderr for `fail`.
const WORKER = `
let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  const job = JSON.parse(input);
  if (job.fail) { process.stderr.write('boom: ' + job.fail + ' (attempt ' + process.env.FERRY_ATTEMPT + ')\\n'); process.exit(3); }
  if (job.text) { process.stdout.write('plain ' + job.text + '\\n'); return; }
  process.stdout.write(JSON.stringify({ doubled: job.n * 2, id: process.env.FERRY_MESSAGE_ID }));
});
`;

it('work runs the command per message: exit 0 acks with stdout as result, nonzero nacks with stderr', async () => {
  const script = join(temp.dir, 'worker.mjs');
  writeFileSync(script, WORKER);
  const ok = await send(['jobs', '{"n":21}']);
  const text = await send(['jobs', '{"text":"hi"}']);
  const failed = await send(['jobs', '{"fail":"disk full"}', '--max-attempts', '1']);

  const worked = await run([
    'work',
    'jobs',
    '--count',
    '3',
    '--concurrency',
    '2',
    '--json',
    '--',
    process.execPath,
    script,
  ]);
  assert.equal(worked.code, 0, worked.stderr);
  const outcomes = worked.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { id: string; ok: boolean });
  assert.deepEqual(
    outcomes.map((o) => [o.id, o.ok]).sort(),
    [
      [ok, true],
      [text, true],
      [failed, false],
    ].sort(),
  );

  const done = json<MessageInfo>(await run(['get', ok, '--json']));
  assert.equal(done.state, 'completed');
  assert.deepEqual(done.result, { doubled: 42, id: ok });
  assert.equal(json<MessageInfo>(await run(['get', text, '--json'])).result, 'plain hi');
  const dead = json<MessageInfo>(await run(['get', failed, '--json']));
  assert.equal(dead.state, 'dead');
  assert.equal(dead.error?.message, 'boom: disk full (attempt 1)');
});

it('work without a command, or with a command that cannot run, says so', async () => {
  const none = await run(['work', 'jobs2']);
  assert.equal(none.code, 2);
  const id = await send(['jobs2', '1', '--max-attempts', '1']);
  const missing = await run(['work', 'jobs2', '--count', '1', '--', join(temp.dir, 'no-such-program')]);
  assert.equal(missing.code, 0, missing.stderr);
  assert.match(missing.stdout, /cannot run/);
  const dead = json<MessageInfo>(await run(['get', id, '--json']));
  assert.equal(dead.state, 'dead');
  assert.match(dead.error?.message ?? '', /cannot run .*no-such-program/);
});
