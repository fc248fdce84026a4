/**
 * Ordering keys: at most a queue's `keyConcurrency` (default 1) unfinished messages of a key are unblocked
 * at once, the earliest sent; a message sent while that many unfinished ones of its key exist is blocked,
 * and when one finishes (or is removed) the next blocked one of its key is unblocked. Only unblocked rows are
 * in claim's index, so a key never has more active messages than unblocked ones.
 */
import type Database from 'better-sqlite3';
import type { Queues } from './admin.ts';
import { preparer, type Stmt } from './connection.ts';

export class Keys {
  private readonly busy: Stmt<{ one: number }>;
  private readonly next: Stmt<unknown>;
  private readonly unfinished: Stmt<{ n: number }>;
  private readonly free: Stmt<{ n: number }>;
  private readonly unblock: Stmt<unknown>;
  private readonly balance: Stmt<unknown>;

  constructor(
    db: Database.Database,
    private readonly queues: Queues,
  ) {
    const s = preparer(db);
    // keyConcurrency 1, the default: the statements ordering keys always had.
    this.busy = s('SELECT 1 AS one FROM messages WHERE queue = ? AND key = ? AND state <= 1 LIMIT 1');
    this.next = s(
      `UPDATE messages SET blocked = 0
       WHERE seq = (SELECT seq FROM messages WHERE queue = @queue AND key = @key AND state <= 1 ORDER BY seq LIMIT 1)
         AND NOT EXISTS (SELECT 1 FROM messages WHERE queue = @queue AND key = @key AND state <= 1 AND blocked = 0)`,
    );
    // Above 1: counted up to the limit.
    this.unfinished = s(
      'SELECT count(*) AS n FROM (SELECT 1 FROM messages WHERE queue = ? AND key = ? AND state <= 1 LIMIT ?)',
    );
    this.free = s(
      `SELECT count(*) AS n FROM (SELECT 1 FROM messages WHERE queue = ? AND key = ? AND state <= 1 AND blocked = 0
       LIMIT ?)`,
    );
    this.unblock = s(
      `UPDATE messages SET blocked = 0 WHERE seq IN (SELECT seq FROM messages
         WHERE queue = ? AND key = ? AND state <= 1 AND blocked = 1 ORDER BY seq LIMIT ?)`,
    );
    // Per key of the queue: its active messages and then its earliest queued ones, up to the limit, are
    // unblocked; its other queued ones blocked. (Active ones stay as they are: a lowered limit lets them finish.)
    this.balance = s(
      `UPDATE messages SET blocked = r.b
       FROM (SELECT seq, row_number() OVER (PARTITION BY key ORDER BY state DESC, seq) > @n AS b FROM messages
              WHERE queue = @queue AND key IS NOT NULL AND state <= 1) AS r
       WHERE messages.seq = r.seq AND messages.state = 0 AND messages.blocked <> r.b`,
    );
  }

  /** The `blocked` value of a message of `key` entering the queue now: 1 behind enough unfinished ones, else 0. */
  blockedValue(queue: string, key: string | null): 0 | 1 {
    if (key === null) return 0;
    const n = this.queues.settings(queue).keyConcurrency;
    if (n === 1) return this.busy.get(queue, key) ? 1 : 0;
    return (this.unfinished.get(queue, key, n) as { n: number }).n >= n ? 1 : 0;
  }

  /** After a message of `key` finished or was removed: lets the oldest blocked ones go, up to the limit. */
  unblockNext(queue: string, key: string | null): void {
    if (key === null) return;
    const n = this.queues.settings(queue).keyConcurrency;
    if (n === 1) {
      this.next.run({ queue, key });
      return;
    }
    const room = n - (this.free.get(queue, key, n) as { n: number }).n;
    if (room > 0) this.unblock.run(queue, key, room);
  }

  /** After the queue's keyConcurrency changed: every key's unblocked messages made to match it. */
  rebalance(queue: string, keyConcurrency: number): void {
    this.balance.run({ queue, n: keyConcurrency });
  }
}
