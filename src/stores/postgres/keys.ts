/**
 * Ordering keys across processes. Whoever may change which message of a key is deliverable (a send, a
 * message finishing, a cancel, a retry) takes a transaction-level advisory lock on the key first, so the
 * check "is an earlier message of this key unfinished?" and the unblocking of the next one never race.
 * Locks are taken in a fixed (sorted) order so two batches sharing keys cannot deadlock. The lock and the
 * unblocking are SQL functions (migration 002), shared with the hot-path functions, so the key hash is
 * computed in one place.
 */
import type pg from 'pg';

export interface QueueKey {
  queue: string;
  key: string;
}

/** Distinct (queue, key) pairs of `items` that have a key. */
export function distinctKeys(items: { queue: string; key: string | null }[]): QueueKey[] {
  const seen = new Map<string, QueueKey>();
  for (const item of items) {
    if (item.key === null) continue;
    const id = `${item.queue}\u0000${item.key}`;
    if (!seen.has(id)) seen.set(id, { queue: item.queue, key: item.key });
  }
  return [...seen.values()];
}

/** Takes the advisory locks of `keys` until the transaction ends, in sorted order (`s` is the quoted schema). */
export async function lockKeys(client: pg.ClientBase, s: string, keys: QueueKey[]): Promise<void> {
  if (keys.length === 0) return;
  await client.query(`SELECT ${s}.lock_keys($1, $2)`, [keys.map((k) => k.queue), keys.map((k) => k.key)]);
}

/**
 * For each key: when no unfinished message of the key is unblocked, unblocks the earliest unfinished one.
 * Run under the keys' locks after anything that may have finished, removed or added a key's message.
 */
export async function unblockNext(client: pg.ClientBase, s: string, keys: QueueKey[]): Promise<void> {
  if (keys.length === 0) return;
  await client.query(`SELECT ${s}.unblock_next($1, $2)`, [keys.map((k) => k.queue), keys.map((k) => k.key)]);
}
