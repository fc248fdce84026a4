/** The CLI against a SQLite store in a temporary directory, run as a child process. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Delivery, FerryEvent, MessageInfo, QueueSettings, QueueStats } from '../../src/core/types.ts';
import { ferry, finish, firstLine, json, start, tempDir } from './helpers.ts';

const temp = tempDir();
const store = `sqlite:${join(temp.dir, 'cli.db')}`;
/** Runs ferry against the temp store through FERRY_STORE, as a user's shell would. */
const run = (args: string[], input?: string) =>
  ferry(args, { env: { FERRY_STORE: store }, ...(input !== undefined && { input }) });

after(() => temp.remove());

describe('ferry CLI against --store', () => {
  before(async () => {
    // Creates the database once, so parallel first runs do not race on migrations (reads create nothing).
    assert.equal((await run(['send', 'setup', '1'])).code, 0);
  });

  it('--help works on the program and on every command, with exit 0', async () => {
    const top = await ferry(['--help']);
    assert.equal(top.code, 0);
    for (const command of ['serve', 'send', 'receive', 'work', 'events', 'bench', 'purge']) {
      assert.match(top.stdout, new RegExp(`\\b${command}\\b`));
    }
    assert.match(top.stdout, /Exit codes/);
    const send = await ferry(['send', '--help']);
    assert.equal(send.code, 0);
    assert.match(send.stdout, /--file/);
    assert.match(send.stdout, /--store/);
  });

  it('configure sets and clears a queue’s timeout and dead-letter queue; send --timeout; bad values exit 2', async () => {
    const set = json<{ timeout: number; deadLetter: string }>(
      await run(['configure', 'cfg', '--timeout', '5m', '--dead-letter', 'cfg.dead', '--json']),
    );
    assert.deepEqual([set.timeout, set.deadLetter], [300_000, 'cfg.dead']);
    const shown = await run(['configure', 'cfg']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /timeout\s+300000 ms/);
    assert.match(shown.stdout, /deadLetter\s+cfg\.dead/);
    const cleared = json<{ timeout: null; deadLetter: null }>(
      await run(['configure', 'cfg', '--timeout', 'none', '--dead-letter', 'none', '--json']),
    );
    assert.deepEqual([cleared.timeout, cleared.deadLetter], [null, null]);
    const sent = await run(['send', 'cfg', '1', '--timeout', '2m']);
    assert.equal(sent.code, 0, sent.stderr);
    const [delivery] = json<Delivery[]>(await run(['receive', 'cfg', '--json']));
    const left = Date.parse(delivery?.deadline as string) - Date.now();
    assert.ok(left > 60_000 && left <= 120_000, `the message's timeout: ${left} ms left`);
    for (const args of [
      ['configure', 'cfg', '--dead-letter', 'cfg'],
      ['configure', 'cfg', '--timeout', 'soon'],
      ['send', 'cfg', '1', '--timeout', '1ms'],
    ]) {
      const bad = await run(args);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
    }
  });

  it('send, get, ls, stats, receive and ack: the whole flow, in human and JSON output', async () => {
    const sent = await run(['send', 'flow', '{"hello":1}']);
    assert.equal(sent.code, 0, sent.stderr);
    const id = sent.stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);

    const info = json<MessageInfo>(await run(['get', id, '--json']));
    assert.deepEqual([info.state, info.queue, info.payload], ['waiting', 'flow', { hello: 1 }]);
    const human = await run(['get', id]);
    assert.match(human.stdout, /state:\s+waiting/);
    assert.match(human.stdout, /payload:\s+\{"hello":1\}/);

    const ls = await run(['ls']);
    assert.match(ls.stdout, /^queue\s+waiting\s+delayed\s+active\s+completed\s+dead\s+cancelled/);
    assert.match(ls.stdout, /\nflow\s+1\s+0\s+0\s+0\s+0\s+0/);
    const stats = json<QueueStats>(await run(['stats', 'flow', '--json']));
    assert.equal(stats.waiting, 1);
    const listed = await run(['ls', 'flow', '--state', 'waiting']);
    assert.match(listed.stdout, new RegExp(id));

    const [delivery] = json<Delivery[]>(await run(['receive', 'flow', '--json']));
    assert.equal(delivery?.id, id);
    const ack = await run(['ack', id, delivery!.receipt, '{"ok":true}']);
    assert.equal(ack.code, 0, ack.stderr);
    assert.equal(ack.stdout.trim(), `${id} completed`);
    const done = json<MessageInfo>(await run(['get', id, '--json']));
    assert.deepEqual([done.state, done.result], ['completed', { ok: true }]);

    const again = await run(['ack', id, delivery!.receipt, '--json']);
    assert.equal(again.code, 4, 'a second ack with the same receipt is lease_lost');
    assert.equal(JSON.parse(again.stderr).error.type, 'lease_lost');
  });

  it('bad input exits 2 with a clear message; a missing message exits 3', async () => {
    const badJson = await run(['send', 'q', '{nope']);
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /payload must be JSON/);
    const badQueue = await run(['send', 'bad queue!', '1']);
    assert.equal(badQueue.code, 2);
    assert.match(badQueue.stderr, /queue/);
    assert.equal((await run(['frobnicate'])).code, 2);
    assert.equal((await run(['send'])).code, 2);
    assert.equal((await run(['receive', 'q', '--max', 'lots'])).code, 2);
    const purge = await run(['purge', 'q']);
    assert.equal(purge.code, 2, 'purge needs --yes when stdin is not a terminal');
    assert.match(purge.stderr, /--yes/);
    const missing = await run(['get', '01900000-0000-7000-8000-000000000000']);
    assert.equal(missing.code, 3, missing.stderr);
    const both = await ferry(['stats', '--store', 'memory:', '--server', 'http://127.0.0.1:1']);
    assert.equal(both.code, 2);
  });

  it('send --file sends one message per NDJSON line with a summary; a bad line sends nothing', async () => {
    const file = join(temp.dir, 'batch.ndjson');
    const lines = Array.from({ length: 450 }, (_, i) => JSON.stringify({ n: i }));
    writeFileSync(file, `${lines.join('\n')}\n\n`);
    const sent = await run(['send', 'bulk', '--file', file, '--priority', '3', '--json']);
    assert.equal(sent.code, 0, sent.stderr);
    assert.deepEqual(
      { ...json<Record<string, unknown>>(sent), seconds: 0 },
      { queue: 'bulk', sent: 450, deduplicated: 0, seconds: 0 },
    );
    const human = await run(['send', 'bulk', '-f', file]);
    assert.match(human.stdout, /^sent 450 messages to bulk in [\d.]+s/);
    assert.equal(json<QueueStats>(await run(['stats', 'bulk', '--json'])).waiting, 900);

    const bad = join(temp.dir, 'bad.ndjson');
    writeFileSync(bad, '{"a":1}\n{"a":2}\nnot json\n');
    const refused = await run(['send', 'bulk-bad', '--file', bad]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /line 3/);
    assert.equal(json<QueueStats>(await run(['stats', 'bulk-bad', '--json'])).waiting, 0);

    // A file that cannot be read is bad input too (exit 2, naming it), not a store error (exit 1).
    for (const path of [join(temp.dir, 'missing.ndjson'), temp.dir]) {
      const unreadable = await run(['send', 'bulk-bad', '--file', path]);
      assert.equal(unreadable.code, 2, unreadable.stderr);
      assert.match(unreadable.stderr, /cannot read .*(ENOENT|EISDIR)/);
    }
  });

  it('nack, redrive, cancel and retry change states and print them', async () => {
    const id = (await run(['send', 'admin', '"x"', '--max-attempts', '1'])).stdout.trim();
    const [d] = json<Delivery[]>(await run(['receive', 'admin', '--json', '--lease', '1m']));
    const nack = json<{ state: string }>(await run(['nack', id, d!.receipt, '--error', 'smtp down', '--json']));
    assert.equal(nack.state, 'dead');
    assert.equal(json<MessageInfo>(await run(['get', id, '--json'])).error?.message, 'smtp down');
    assert.deepEqual(json(await run(['redrive', 'admin', '--json'])), { queue: 'admin', moved: 1 });
    assert.equal((await run(['cancel', id])).stdout.trim(), `${id} cancelled`);
    assert.equal((await run(['retry', id])).stdout.trim(), `${id} waiting`);
    assert.match((await run(['pause', 'admin'])).stdout, /admin paused/);
    assert.equal(json<QueueStats>(await run(['stats', 'admin', '--json'])).paused, true);
    const purged = await run(['purge', 'admin', '--yes', '--json']);
    assert.deepEqual(json(purged), { queue: 'admin', purged: 1 });
  });

  it('configure shows the settings and changes those given, key limits included; bad values exit 2', async () => {
    const shown = await run(['configure', 'conf']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /keyConcurrency\s+1\b/);
    assert.match(shown.stdout, /keyRateLimit\s+none/);
    const set = await run([
      'configure',
      'conf',
      '--key-concurrency',
      '3',
      '--key-rate-limit',
      '5/2s',
      '--concurrency',
      '10',
      '--json',
    ]);
    assert.equal(set.code, 0, set.stderr);
    const settings = json<QueueSettings>(set);
    assert.equal(settings.keyConcurrency, 3);
    assert.deepEqual(settings.keyRateLimit, { max: 5, per: 2000 });
    assert.equal(settings.concurrency, 10);
    assert.match((await run(['configure', 'conf'])).stdout, /keyRateLimit\s+5 per 2000 ms/);
    assert.equal(
      json<QueueSettings>(await run(['configure', 'conf', '--key-rate-limit', 'none', '--json'])).keyRateLimit,
      null,
    );
    for (const bad of [
      ['--key-concurrency', '0'],
      ['--key-concurrency', 'two'],
      ['--key-rate-limit', '5'],
    ]) {
      const refused = await run(['configure', 'conf', ...bad]);
      assert.equal(refused.code, 2, `${bad.join(' ')}: ${refused.stderr}`);
      assert.match(refused.stderr, /key/i);
    }
    assert.equal(json<QueueSettings>(await run(['configure', 'conf', '--json'])).keyConcurrency, 3, 'nothing changed');
  });

  it('events replays and follows, one JSON event per line', async () => {
    const id = (await run(['send', 'evq', '{"e":1}'])).stdout.trim();
    const out = await run(['events', '--queue', 'evq', '--after', '0', '--count', '1', '--json']);
    assert.equal(out.code, 0, out.stderr);
    const event = JSON.parse(out.stdout.trim()) as FerryEvent;
    assert.deepEqual([event.type, event.queue, event.id], ['sent', 'evq', id]);
    const bad = await run(['events', '--types', 'sent,exploded']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /exploded/);
  });

  it('events --queue follows like tail -f: waits, prints what another process sends, exits 0 on SIGTERM', async (t) => {
    const child = start(['events', '--queue', 'follow', '--json'], { env: { FERRY_STORE: store } });
    t.after(() => child.kill('SIGKILL'));
    const first = firstLine(child, 60_000);
    let printed = false;
    first.then(
      () => (printed = true),
      () => (printed = true),
    );
    // It follows from when it opened, which this process cannot see: send until it has printed one.
    while (!printed) assert.equal((await run(['send', 'follow', '{"n":1}'])).code, 0);
    const event = JSON.parse(await first) as FerryEvent;
    assert.deepEqual([event.type, event.queue], ['sent', 'follow']);
    const done = finish(child, '', 30_000);
    child.kill('SIGTERM');
    assert.equal((await done).code, 0);
  });

  it('bench measures, checks its counts, and cleans up after itself', async () => {
    const out = await ferry(['bench', '--store', 'memory:', '-n', '100', '-c', '4', '--json']);
    assert.equal(out.code, 0, out.stderr);
    const report = json<{ check: { ok: boolean; completed: number }; send: { perSecond: number } }>(out);
    assert.equal(report.check.ok, true);
    assert.equal(report.check.completed, 200);
    assert.ok(report.send.perSecond > 0);
  });
});
