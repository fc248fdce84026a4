/**
 * Ordering keys: a message is sent blocked while an earlier unfinished message of its key exists, and when
 * one finishes (or is removed) the next of its key is unblocked. Only unblocked rows are in claim's index.
 */
import type Database from 'better-sqlite3';
import { preparer, type Stmt } from './connection.ts';

export class Keys {
  private readonly busy: Stmt<{ one: number }>;
  private readonly next: Stmt<unknown>;

  constructor(db: Database.Database) {
    const s = preparer(db);
    this.busy = s('SELECT 1 AS one FROM messages WHERE queue = ? AND key = ? AND state <= 1 LIMIT 1');
    this.next = s(
      `UPDATE messages SET blocked = 0
       WHERE seq = (SELECT seq FROM messages WHERE queue = @queue AND key = @key AND state <= 1 ORDER BY seq LIMIT 1)
         AND NOT EXISTS (SELECT 1 FROM messages WHERE queue = @queue AND key = @key AND state <= 1 AND blocked = 0)`,
    );
  }

  /** The `blocked` value of a message of `key` entering the queue now: 1 behind an unfinished one, else 0. */
  blockedValue(queue: string, key: string | null): 0 | 1 {
    return key !== null && this.busy.get(queue, key) ? 1 : 0;
  }

  /** After a message of `key` finished or was removed: lets the oldest unfinished one go, if none is free. */
  unblockNext(queue: string, key: string | null): void {
    if (key !== null) this.next.run({ queue, key });
  }
}
