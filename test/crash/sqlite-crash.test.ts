/**
 * A crash test that really kills (issue 2, item 7). Round after round on the same database file, a child
 * process (crash-child.ts) sends, receives, works and acks under load and is SIGKILLed at a random moment.
 * After each kill the store is reopened and checked: every send and ack that was answered, in any round,
 * is there; nothing acked is delivered again; `PRAGMA integrity_check` answers `ok`.
 *
 * Odd rounds are killed by the parent 150–900 ms after the child is running. Even rounds the child kills
 * itself right after journaling its N-th answered send (or ack), the one moment an outside kill almost never
 * hits: an answer given before its write reached the kernel would show up there as a loss.
 *
 * FERRY_CRASH_ROUNDS (default 20) and FERRY_CRASH_SEED (the kill times; printed) reproduce a run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { open } from '../../src/index.ts';
import { Ledger } from './journal.ts';
import { drain, integrityCheck, verifyAnswered } from './verify.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const CHILD = join(HERE, 'crash-child.ts');
const KILL_AFTER_MIN = 150;
const KILL_AFTER_MAX = 900;
/** In self-kill rounds the timer only ends a child too slow (a loaded machine) to reach its N-th answer. */
const SELF_KILL_FALLBACK = 3000;

/** A small seeded generator, so a failing run's kill times can be replayed with FERRY_CRASH_SEED. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Run {
  startupMs: number;
  killedAfterMs: number;
  /** `timer`: the parent's SIGKILL; `itself`: the child's own, at its n-th answer. */
  by: 'timer' | 'itself';
}

/**
 * Starts the child, SIGKILLs it `killAfter` ms after it reports it is running (unless it killed itself at
 * `selfKill`, `sent:N` or `acked:N`, first), and waits for it to be gone.
 */
function runChild(dbFile: string, journalFile: string, killAfter: number, selfKill: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dbFile, journalFile, selfKill], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let readyAt: number | undefined;
    let killedAt: number | undefined;
    const giveUp = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (readyAt !== undefined || !chunk.includes('ready')) return;
      readyAt = performance.now();
      setTimeout(() => {
        killedAt = performance.now();
        child.kill('SIGKILL');
      }, killAfter);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(giveUp);
      if (signal === 'SIGKILL' && readyAt !== undefined) {
        const by = killedAt === undefined ? 'itself' : 'timer';
        resolve({ startupMs: readyAt - started, killedAfterMs: (killedAt ?? performance.now()) - readyAt, by });
      } else {
        reject(
          new Error(
            `crash child ended by itself (code ${code}, signal ${signal}, ready ${readyAt !== undefined}): ${stderr}`,
          ),
        );
      }
    });
  });
}

test('sqlite: every answered send and ack survives SIGKILL at random moments', { timeout: 170_000 }, async (t) => {
  const rounds = Number(process.env.FERRY_CRASH_ROUNDS ?? 20);
  assert.ok(Number.isInteger(rounds) && rounds > 0, 'FERRY_CRASH_ROUNDS must be a positive integer');
  const seed = Number(process.env.FERRY_CRASH_SEED ?? randomInt(2 ** 31));
  const random = mulberry32(seed);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-crash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const dbFile = join(dir, 'ferry.db');
  const ledger = new Ledger();
  const totals = {
    rounds: 0,
    selfKills: 0,
    sends: 0,
    acks: 0,
    deliveries: 0,
    lost: 0,
    unjournaled: 0,
    drained: 0,
    redelivered: 0,
  };
  t.diagnostic(`crash: seed ${seed}, ${rounds} rounds, one database file, synchronous=FULL`);

  for (let round = 1; round <= rounds; round++) {
    const journalFile = join(dir, `journal-${round}.log`);
    const killAfter = KILL_AFTER_MIN + Math.floor(random() * (KILL_AFTER_MAX - KILL_AFTER_MIN));
    // Every other round the child kills itself at an answered send or ack (the timer stays armed as a fallback).
    const n = 20 + Math.floor(random() * 600);
    const selfKill = round % 4 === 2 ? `sent:${n}` : round % 4 === 0 ? `acked:${n}` : '';
    const run = await runChild(dbFile, journalFile, selfKill ? SELF_KILL_FALLBACK : killAfter, selfKill);
    const journal = ledger.apply(await readFile(journalFile, 'utf8'), round);
    assert.ok(journal.ready, `round ${round}: the child never journaled ready`);

    const checkStart = performance.now();
    const ms = { verify: 0, drain: 0 };
    let integrity = 'not run';
    let found: Awaited<ReturnType<typeof verifyAnswered>>;
    let drained: Awaited<ReturnType<typeof drain>>;
    try {
      const ferry = await open(`sqlite:${dbFile}`);
      try {
        // A second connection while Ferry holds the file: closing it does not checkpoint the crashed WAL away.
        integrity = integrityCheck(dbFile);
        if (integrity !== 'ok') ledger.problems.push(`round ${round}: integrity_check answered ${integrity}`);
        let mark = performance.now();
        found = await verifyAnswered(ferry, ledger, round, journal);
        ms.verify = performance.now() - mark;
        mark = performance.now();
        drained = await drain(ferry, ledger, round);
        ms.drain = performance.now() - mark;
      } finally {
        await ferry.close();
      }
    } catch (error) {
      if (integrity === 'not run') integrity = integrityCheck(dbFile);
      throw new Error(`round ${round}: reopening and checking failed (integrity_check: ${integrity})`, {
        cause: error,
      });
    }

    totals.rounds++;
    if (run.by === 'itself') totals.selfKills++;
    totals.sends += journal.sends;
    totals.acks += journal.acks;
    totals.deliveries += journal.deliveries;
    totals.lost += journal.lost;
    totals.unjournaled += found.unjournaled;
    totals.drained += drained.delivered;
    totals.redelivered += drained.redelivered;
    t.diagnostic(
      `round ${round}: ${run.by === 'itself' ? `killed itself at ${selfKill}, ` : 'killed '}` +
        `${run.killedAfterMs.toFixed(0)} ms after ready (startup ${run.startupMs.toFixed(0)} ms); ` +
        `answered ${journal.sends} sends, ${journal.acks} acks (${journal.lost} lease_lost), ${journal.deliveries} deliveries; ` +
        `found ${found.messages} messages ${JSON.stringify(found.states)}, ${found.unjournaled} committed but unanswered; ` +
        `drained ${drained.delivered} (${drained.redelivered} redelivered); integrity ${integrity}; ` +
        `checked in ${(performance.now() - checkStart).toFixed(0)} ms (verify ${ms.verify.toFixed(0)}, drain ${ms.drain.toFixed(0)})`,
    );
    // Stop at the first broken round: later rounds would only repeat its losses.
    if (ledger.problems.length > 0) break;
  }

  const finalIntegrity = integrityCheck(dbFile);
  if (finalIntegrity !== 'ok') ledger.problems.push(`after the last round: integrity_check answered ${finalIntegrity}`);
  t.diagnostic(
    `crash summary: ${totals.rounds} rounds (${totals.selfKills} killed at an answer), ${totals.sends} answered sends and ${totals.acks} answered acks ` +
      `(${ledger.sent.size} messages and ${ledger.acked.size} acks checked every round, checker's included), ` +
      `${totals.deliveries} deliveries, ${totals.unjournaled} committed-but-unanswered, ` +
      `${totals.drained} drained after kills (${totals.redelivered} redelivered), ${ledger.problems.length} problems`,
  );

  assert.deepEqual(ledger.problems.slice(0, 20), [], `${ledger.problems.length} problems`);
  assert.equal(totals.rounds, rounds);
  // The load really ran: both consumers acked, sends kept coming.
  const acks = [...ledger.acked.values()];
  assert.ok(totals.sends >= rounds * 10, `only ${totals.sends} sends were answered`);
  assert.ok(
    acks.some((a) => a.by === 'recv' && a.round > 0),
    'receive + ack never answered',
  );
  assert.ok(
    acks.some((a) => a.by === 'work'),
    'work() never completed a message',
  );
});
