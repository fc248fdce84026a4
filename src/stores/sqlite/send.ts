/** Inserting messages: dedupe, ordering keys (blocked on insert), and topics (one copy per subscribed queue). */
import type Database from 'better-sqlite3';
import type { NewMessage, PendingEvent, SendOutcome } from '../../store/store.ts';
import type { Queues } from './admin.ts';
import { preparer, type Stmt } from './connection.ts';
import type { Keys } from './keys.ts';

/** Where a flow's node sits: its parent, and how many children it waits for. */
export interface FlowLink {
  parentId: string | null;
  children: number;
  ignoreFailures: boolean;
}

export class Send {
  private readonly dedupe: Stmt<{ id: string }>;
  private readonly insertRow: Stmt<unknown>;
  private readonly insertFlowRow: Stmt<unknown>;
  private readonly subscribers: Stmt<{ queue: string }>;

  constructor(
    db: Database.Database,
    private readonly queues: Queues,
    private readonly keys: Keys,
  ) {
    const s = preparer(db);
    this.dedupe = s('SELECT id FROM messages WHERE queue = ? AND dedupe_id = ?');
    this.insertRow = s(
      `INSERT INTO messages (id, queue, state, blocked, priority, run_at, payload, headers, key, dedupe_id,
         max_attempts, backoff, lease, timeout, sent_at)
       VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // A flow's node: a parent is pending (state 5) on its count of children; never blocked (a parent has no key).
    this.insertFlowRow = s(
      `INSERT INTO messages (id, queue, state, blocked, priority, run_at, payload, headers, key, dedupe_id,
         max_attempts, backoff, lease, sent_at, parent_id, children_left, ignore_child_failures)
       VALUES (@id, @queue, CASE WHEN @children > 0 THEN 5 ELSE 0 END, @blocked, @priority, @runAt, @payload,
         @headers, @key, @dedupeId, @maxAttempts, @backoff, @lease, @now, @parentId, @children, @ignore)`,
    );
    this.subscribers = s('SELECT queue FROM subscriptions WHERE topic = ? ORDER BY queue');
  }

  send(messages: NewMessage[], now: number, events: PendingEvent[]): SendOutcome[] {
    const out: SendOutcome[] = new Array(messages.length);
    let queue: string | undefined;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as NewMessage;
      if (m.queue !== queue) {
        queue = m.queue;
        this.queues.ensure(queue);
      }
      out[i] = this.insert(m, now, events);
    }
    return out;
  }

  /** The queues subscribed to `topic`, by name. */
  subscriptions(topic: string): string[] {
    return this.subscribers.all(topic).map((row) => row.queue);
  }

  publish(
    topic: string,
    message: Omit<NewMessage, 'id' | 'queue'>,
    newId: () => string,
    now: number,
    events: PendingEvent[],
  ): { queue: string; id: string }[] {
    const out: { queue: string; id: string }[] = [];
    for (const queue of this.subscriptions(topic)) {
      this.queues.ensure(queue);
      const sent = this.insert({ ...message, id: newId(), queue }, now, events);
      out.push({ queue, id: sent.id });
    }
    return out;
  }

  /**
   * Inserts one message, unless a message of its queue holds its dedupeId; its queue is created if needed
   * when it is a flow's node (`flow`), else the caller made sure it exists.
   */
  insert(m: NewMessage, now: number, events: PendingEvent[], flow?: FlowLink): SendOutcome {
    if (m.dedupeId !== null) {
      const existing = this.dedupe.get(m.queue, m.dedupeId);
      if (existing) return { id: existing.id, deduplicated: true };
    }
    if (flow) {
      this.queues.ensure(m.queue);
      this.insertFlowRow.run({
        id: m.id,
        queue: m.queue,
        children: flow.children,
        blocked: this.keys.blockedValue(m.queue, m.key),
        priority: m.priority,
        runAt: m.runAt,
        payload: m.payload,
        headers: m.headers,
        key: m.key,
        dedupeId: m.dedupeId,
        maxAttempts: m.maxAttempts,
        backoff: m.backoff === null ? null : JSON.stringify(m.backoff),
        lease: m.lease,
        timeout: m.timeout,
        now,
        parentId: flow.parentId,
        ignore: flow.ignoreFailures ? 1 : 0,
      });
    } else {
      this.insertRow.run(
        m.id,
        m.queue,
        this.keys.blockedValue(m.queue, m.key),
        m.priority,
        m.runAt,
        m.payload,
        m.headers,
        m.key,
        m.dedupeId,
        m.maxAttempts,
        m.backoff === null ? null : JSON.stringify(m.backoff),
        m.lease,
        m.timeout,
        now,
      );
    }
    events.push({ type: 'sent', queue: m.queue, id: m.id, at: now, runAt: m.runAt });
    return { id: m.id, deduplicated: false };
  }
}
