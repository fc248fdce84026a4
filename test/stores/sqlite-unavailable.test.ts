/**
 * SQLite errors that mean "not now" (a full disk, a lock held past busy_timeout, a closed store) reach the
 * caller as UnavailableError, lose nothing already answered, and leave the store usable once the cause goes.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { UnavailableError } from '../../src/core/errors.ts';
import type { FerryEvent } from '../../src/core/types.ts';
import type { NewMessage } from '../../src/store/store.ts';
import { SqliteStore } from '../../src/stores/sqlite/index.ts';

const files: string[] = [];
after(async () => {
  for (const file of files) {
    for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(file + suffix, { force: true });
  }
});

async function openStore(
  options: ConstructorParameters<typeof SqliteStore>[1] = {},
): Promise<{ store: SqliteStore; db: Database.Database; file: string; events: FerryEvent[] }> {
  const file = join(tmpdir(), `ferry-unavailable-${randomUUID()}.db`);
  files.push(file);
  const store = new SqliteStore(file, options);
  const events: FerryEvent[] = [];
  await store.init({ retryDelay: () => 0, onEvents: (e) => events.push(...e) });
  // The store's own connection: max_page_count and busy_timeout are per connection, so a full disk and a
  // short lock wait can only be simulated on it.
  const db = (store as unknown as { p: { db: Database.Database } }).p.db;
  return { store, db, file, events };
}

function message(queue: string, payload: string): NewMessage {
  return {
    id: randomUUID(),
    queue,
    payload: JSON.stringify(payload),
    priority: 0,
    key: null,
    dedupeId: null,
    maxAttempts: null,
    backoff: null,
    lease: null,
    timeout: null,
    headers: null,
    runAt: 0,
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected the operation to fail');
}

describe('sqlite store: errors that mean "not now"', () => {
  it('a full disk (SQLITE_FULL) is UnavailableError; nothing answered is lost; writes work once space returns', async () => {
    const { store, db } = await openStore();
    const q = `q-${randomUUID()}`;
    const answered = await store.send([message(q, 'before'), message(q, 'also before')], 1);
    const [claimed] = await store.claim(q, 1, 60_000, 2);
    assert.ok(claimed);

    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    const big = 'x'.repeat(256 * 1024);
    const full = await rejection(store.send([message(q, big)], 3));
    assert.ok(full instanceof UnavailableError, `expected UnavailableError, got ${String(full)}`);
    assert.equal(((full as Error).cause as { code?: string }).code, 'SQLITE_FULL');
    // Several operations in one group commit: each fails or succeeds whole; the failed one is unavailable.
    const [bigAgain, ack] = await Promise.allSettled([
      store.send([message(q, big)], 4),
      store.complete([{ id: claimed.id, receipt: claimed.receipt, result: null }], 4),
    ]);
    assert.equal(bigAgain.status, 'rejected');
    assert.ok((bigAgain as PromiseRejectedResult).reason instanceof UnavailableError);

    db.pragma('max_page_count = 1073741823');
    for (const sent of answered) assert.ok(await store.get(sent.id), 'an answered send survives the full disk');
    const later = await store.send([message(q, big)], 5);
    assert.equal((await store.get(later[0]?.id as string))?.state, 'queued', 'writes work again');
    if (ack.status === 'fulfilled') assert.equal((await store.get(claimed.id))?.state, 'completed');
    else {
      assert.ok(ack.reason instanceof UnavailableError);
      assert.deepEqual(await store.complete([{ id: claimed.id, receipt: claimed.receipt, result: null }], 6), [
        'completed',
      ]);
    }
    const stats = (await store.stats(q, 7))[0];
    assert.equal(stats?.completed, 1);
    assert.equal(stats?.waiting, 2);
    await store.close();
  });

  it('a lock held past busy_timeout (SQLITE_BUSY) is UnavailableError; the store works once it is released', async () => {
    const { store, db, file } = await openStore();
    db.pragma('busy_timeout = 20');
    const other = new Database(file);
    try {
      other.exec('BEGIN IMMEDIATE');
      const busy = await rejection(store.send([message('busy', 'x')], 1));
      assert.ok(busy instanceof UnavailableError, `expected UnavailableError, got ${String(busy)}`);
      assert.match(((busy as Error).cause as { code?: string }).code ?? '', /^SQLITE_BUSY/);
      other.exec('COMMIT');
      const [sent] = await store.send([message('busy', 'y')], 2);
      assert.equal((await store.get(sent?.id as string))?.state, 'queued');
    } finally {
      other.close();
      await store.close();
    }
  });

  it('events read from other processes in a commit that failed are delivered later, not skipped', async () => {
    // No tail timer: only our own commits look for the other process's events.
    const { store, db, file, events } = await openStore({ tailInterval: 2 ** 31 - 1 });
    const writer = new SqliteStore(file);
    await writer.init({ retryDelay: () => 0, onEvents: () => {} });
    try {
      await store.send([message('shared', 'ours')], 1);
      const [claimed] = await store.claim('shared', 1, 60_000, 1);
      assert.ok(claimed);
      const [foreign] = await writer.send([message('shared', 'from the other process')], 2);
      // Room for the completed row's result but not for the event block that repeats it: the commit fails
      // after reading the other process's block.
      const result = JSON.stringify('r'.repeat(100 * 1024));
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      const pages = db.pragma('page_count', { simple: true }) as number;
      db.pragma(`max_page_count = ${pages + Math.ceil((result.length * 1.2) / pageSize)}`);
      const failed = await rejection(store.complete([{ id: claimed.id, receipt: claimed.receipt, result }], 3));
      assert.ok(failed instanceof UnavailableError, `expected UnavailableError, got ${String(failed)}`);
      assert.ok(!events.some((e) => e.id === foreign?.id), 'nothing was delivered by the failed commit');
      db.pragma('max_page_count = 1073741823');
      await store.send([message('shared', 'small')], 4);
      assert.ok(
        events.some((e) => e.id === foreign?.id && e.type === 'sent'),
        "the other process's sent event reached this process",
      );
      const seqs = events.map((e) => e.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        'in seq order',
      );
    } finally {
      await writer.close();
      await store.close();
    }
  });

  it('a closed store answers UnavailableError for reads and writes', async () => {
    const { store } = await openStore();
    await store.close();
    assert.ok((await rejection(store.send([message('closed', 'x')], 1))) instanceof UnavailableError);
    assert.ok((await rejection(store.get(randomUUID()))) instanceof UnavailableError);
    assert.ok((await rejection(store.stats(null, 1))) instanceof UnavailableError);
    assert.ok((await rejection(store.readEvents(0, 10))) instanceof UnavailableError);
  });
});
