/**
 * Ordering keys across processes. Whoever may change which message of a key is deliverable (a send, a
 * message finishing, a cancel, a retry) takes a transaction-level advisory lock on the key first, so the
 * check "is an earlier message of this key unfinished?" and the unblocking of the next one never race.
 * Locks are taken in a fixed (sorted) order so two batches sharing keys cannot deadlock.
 */
import type pg from 'pg';

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = (1n << 64n) - 1n;

/** A stable signed 64-bit hash of (schema, queue, key), the same in every process. */
export function keyHash(schema: string, queue: string, key: string): bigint {
  let h = FNV_OFFSET;
  const bytes = Buffer.from(`${schema}\u0000${queue}\u0000${key}`, 'utf8');
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * FNV_PRIME) & MASK;
  }
  return BigInt.asIntN(64, h);
}

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

/** Takes the advisory locks of `keys` until the transaction ends, in sorted order. */
export async function lockKeys(client: pg.ClientBase, schema: string, keys: QueueKey[]): Promise<void> {
  if (keys.length === 0) return;
  const hashes = [...new Set(keys.map((k) => keyHash(schema, k.queue, k.key)))].sort((a, b) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  await client.query('SELECT count(pg_advisory_xact_lock(h)) FROM unnest($1::int8[]) AS h', [hashes.map(String)]);
}

/**
 * For each key: when no unfinished message of the key is unblocked, unblocks the earliest unfinished one.
 * Run under the keys' locks after anything that may have finished, removed or added a key's message.
 */
export async function unblockNext(client: pg.ClientBase, s: string, keys: QueueKey[]): Promise<void> {
  if (keys.length === 0) return;
  await client.query(
    `UPDATE ${s}.messages m SET blocked = false
     FROM (SELECT DISTINCT ON (x.queue, x.key) x.id
             FROM ${s}.messages x
             JOIN unnest($1::text[], $2::text[]) AS k(queue, key) ON x.queue = k.queue AND x.key = k.key
            WHERE x.key IS NOT NULL AND x.state <= 1
            ORDER BY x.queue, x.key, x.seq) head
     WHERE m.id = head.id AND m.blocked
       AND NOT EXISTS (SELECT 1 FROM ${s}.messages y
                        WHERE y.queue = m.queue AND y.key = m.key AND y.state <= 1 AND NOT y.blocked)`,
    [keys.map((k) => k.queue), keys.map((k) => k.key)],
  );
}
