/**
 * Flows: inserting a tree (parents pending on their count of unfinished children), and what a child's end
 * does to its parent. A child's end costs its parent one update by primary key (a count down); only a
 * failure under `fail-parent`, and cancels, walk a subtree (through the index on parent_id).
 */
import type Database from 'better-sqlite3';
import { ACTIVE, CANCELLED, childFailed, DEAD, PENDING, QUEUED } from '../../store/constants.ts';
import type { FlowMessage, MessageRecord, PendingEvent, SendOutcome } from '../../store/store.ts';
import { preparer, type Stmt } from './connection.ts';
import type { Row } from './rows.ts';
import type { Send } from './send.ts';

/** What a message's end needs of its row. */
export interface Ended {
  id: string;
  queue: string;
  parent_id: string | null;
}

/** Ends a row dead or cancelled (Settle.finish), which reports the end back here. */
type Finish = (
  row: Row,
  state: typeof DEAD | typeof CANCELLED,
  error: string | null,
  now: number,
  events: PendingEvent[],
) => void;

export class Flows {
  private readonly countDown: Stmt<{ queue: string; state: number; run_at: number }>;
  private readonly failParent: Stmt<Row>;
  private readonly countUp: Stmt<unknown>;
  private readonly setLeft: Stmt<{ queue: string; run_at: number }>;
  private readonly unfinishedBelow: Stmt<Row>;
  private readonly flagCancel: Stmt<unknown>;
  private readonly childRows: Stmt<Row>;
  private readonly exists: Stmt<{ one: number }>;

  constructor(
    db: Database.Database,
    private readonly finish: Finish,
    /** A parent died of a child: its copy to the dead-letter queue, in this transaction. */
    private readonly died: (row: Row, now: number, events: PendingEvent[]) => void,
  ) {
    const s = preparer(db);
    // SET reads the row as it was: children_left = 1 means this was the last unfinished child.
    this.countDown = s(
      `UPDATE messages SET children_left = children_left - 1, state = CASE children_left WHEN 1 THEN ${QUEUED} ELSE ${PENDING} END
       WHERE id = ? AND state = ${PENDING}
       RETURNING queue, state, run_at`,
    );
    this.failParent = s(
      `UPDATE messages SET state = ${DEAD}, error = ?, finished_at = ?, children_left = 0
       WHERE id = ? AND state = ${PENDING} AND ignore_child_failures = 0
       RETURNING *`,
    );
    this.countUp = s(`UPDATE messages SET children_left = children_left + 1 WHERE id = ? AND state = ${PENDING}`);
    this.setLeft = s(
      `UPDATE messages SET children_left = @left, state = CASE @left WHEN 0 THEN ${QUEUED} ELSE ${PENDING} END
       WHERE id = @id RETURNING queue, run_at`,
    );
    // CROSS JOIN keeps `below` outside: the planner otherwise scanned every message to join it.
    this.unfinishedBelow = s(
      `WITH RECURSIVE below(id) AS (
         SELECT id FROM messages WHERE parent_id = ? AND state IN (${QUEUED}, ${ACTIVE}, ${PENDING})
         UNION ALL
         SELECT m.id FROM messages m JOIN below b ON m.parent_id = b.id
          WHERE m.state IN (${QUEUED}, ${ACTIVE}, ${PENDING}))
       SELECT m.* FROM below b CROSS JOIN messages m ON m.id = b.id ORDER BY m.seq`,
    );
    this.flagCancel = s('UPDATE messages SET cancel_requested = 1 WHERE seq = ?');
    this.childRows = s('SELECT * FROM messages WHERE parent_id = ? ORDER BY seq');
    this.exists = s('SELECT 1 AS one FROM messages WHERE id = ?');
  }

  /** Inserts the nodes in order (parents first); a deduplicated node's subtree is left out. */
  insert(send: Send, nodes: FlowMessage[], now: number, events: PendingEvent[]): (SendOutcome | null)[] {
    const out: (SendOutcome | null)[] = new Array(nodes.length);
    /** Per inserted parent (by index): its children actually inserted. */
    const left = new Map<number, number>();
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i] as FlowMessage;
      const parent = node.parent === null ? undefined : out[node.parent];
      if (parent === null || parent?.deduplicated) {
        out[i] = null; // under a deduplicated node
        continue;
      }
      const sent = send.insert(node, now, events, {
        parentId: parent === undefined ? null : parent.id,
        children: node.children,
        ignoreFailures: node.ignoreFailures,
      });
      out[i] = sent;
      if (node.children > 0 && !sent.deduplicated) left.set(i, 0);
      if (node.parent !== null && !sent.deduplicated) left.set(node.parent, (left.get(node.parent) ?? 0) + 1);
    }
    // A parent some of whose children were deduplicated waits only for the others (none: it is waiting now).
    for (const [i, n] of left) {
      const node = nodes[i] as FlowMessage;
      if (n === node.children) continue;
      const row = this.setLeft.get({ id: node.id, left: n });
      if (row && n === 0) events.push({ type: 'waiting', queue: row.queue, id: node.id, at: now, runAt: row.run_at });
    }
    return out;
  }

  /**
   * Message `row` ended in `state`: its pending parent counts it, or (dead or cancelled, `fail-parent`) dies
   * of it, cancelling its other unfinished descendants; the parent's own end then counts for its parent.
   */
  ended(row: Ended, state: number, now: number, events: PendingEvent[]): void {
    let child: Ended | undefined = row;
    let end = state;
    while (child?.parent_id) {
      const parentId: string = child.parent_id;
      const failed: Ended = child;
      child = undefined;
      if (end === DEAD || end === CANCELLED) {
        const error = childFailed({ id: failed.id, queue: failed.queue, state: end === DEAD ? 'dead' : 'cancelled' });
        const parent = this.failParent.get(error, now, parentId);
        if (parent) {
          events.push({
            type: 'dead',
            queue: parent.queue,
            id: parent.id,
            at: now,
            attempt: parent.attempts,
            error: JSON.parse(error),
          });
          this.died(parent, now, events);
          this.cancelBelow(parent.id, now, events);
          child = parent;
          end = DEAD;
          continue;
        }
      }
      const counted = this.countDown.get(parentId);
      if (counted?.state === QUEUED) {
        events.push({ type: 'waiting', queue: counted.queue, id: parentId, at: now, runAt: counted.run_at });
      }
    }
  }

  /** Cancels the unfinished descendants of `id`: queued and pending ones at once, active ones flagged. */
  cancelBelow(id: string, now: number, events: PendingEvent[]): void {
    for (const row of this.unfinishedBelow.all(id)) {
      if (row.state === ACTIVE) this.flagCancel.run(row.seq);
      else this.finish(row, CANCELLED, null, now, events);
    }
  }

  /** A dead or cancelled child queued again: its parent, if still pending, waits for it again. */
  revived(row: Ended): void {
    if (row.parent_id !== null) this.countUp.run(row.parent_id);
  }

  /** The children of `id`, in send order; null when no message `id` exists. */
  children(id: string, record: (row: Row) => MessageRecord): MessageRecord[] | null {
    const rows = this.childRows.all(id);
    if (rows.length === 0 && !this.exists.get(id)) return null;
    return rows.map(record);
  }
}
