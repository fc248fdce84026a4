/**
 * The event log. Each transaction that changes state writes one block (its events as a JSON array) as its
 * last statement, taking seqs from the single-row `event_seq` counter, then commits in the same round trip.
 * The counter's row lock is held only for that final statement and the COMMIT, so blocks commit in seq order
 * with no gaps: a reader that has seen seq N has seen every seq below it, and tailing by seq never misses a
 * late commit (a bigserial would: its values commit out of order).
 *
 * Delivery to `onEvents` is strictly in seq order. A process's own blocks are delivered as soon as they
 * commit when they follow the last delivered seq; otherwise (another process committed in between) they
 * wait for a tail of the log. Other processes' blocks are learned from NOTIFY on a dedicated connection
 * (a latency hint only) and from a poll, which is what makes delivery certain.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { FerryEvent } from '../../core/types.ts';
import type { PendingEvent } from '../../store/store.ts';

type StoredEvent = Omit<FerryEvent, 'seq'> & { runAt?: number };

export interface EventLogOptions {
  /** How often to look for blocks by other processes when no NOTIFY arrives (ms). */
  pollInterval: number;
  /** Connection settings for the dedicated LISTEN connection. */
  listen: pg.ClientConfig;
}

function stored(e: PendingEvent, iso: string): StoredEvent {
  const event: StoredEvent = { type: e.type, queue: e.queue, id: e.id, at: iso };
  if (e.attempt !== undefined) event.attempt = e.attempt;
  if (e.result !== undefined) event.result = e.result;
  if (e.error !== undefined) event.error = e.error as FerryEvent['error'];
  if (e.progress !== undefined) event.progress = e.progress;
  if (e.runAt !== undefined) event.runAt = e.runAt;
  return event;
}

export function encodeEvents(pending: PendingEvent[]): string {
  let lastAt = Number.NaN;
  let iso = '';
  return JSON.stringify(
    pending.map((e) => {
      if (e.at !== lastAt) {
        lastAt = e.at;
        iso = new Date(e.at).toISOString();
      }
      return stored(e, iso);
    }),
  );
}

export function expand(seq: number, data: string): FerryEvent[] {
  return (JSON.parse(data) as StoredEvent[]).map((e, i) => ({ seq: seq + i, ...e }) as FerryEvent);
}

export class EventLog {
  readonly channel: string;
  private delivered = 0;
  private held = new Map<number, FerryEvent[]>();
  private tailing: Promise<void> | null = null;
  private tailAgain = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private listener: pg.Client | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly s: string,
    schema: string,
    private readonly origin: string,
    private readonly onEvents: (events: FerryEvent[]) => void,
    private readonly options: EventLogOptions,
  ) {
    this.channel = `ferry_${createHash('sha1').update(schema).digest('hex').slice(0, 24)}`;
  }

  async start(): Promise<void> {
    this.delivered = await this.lastSeq();
    await this.listen().catch(() => this.scheduleReconnect());
    this.timer = setInterval(() => this.poll(), this.options.pollInterval);
    this.timer.unref();
  }

  async lastSeq(): Promise<number> {
    const r = await this.pool.query<{ last: string }>(`SELECT last FROM ${this.s}.event_seq`);
    return Number(r.rows[0]?.last ?? 0);
  }

  /**
   * Writes `pending` as one block, notifies listeners and commits, in one round trip; answers the events
   * with their seqs (empty when there were none: then it only commits).
   */
  async commit(client: pg.ClientBase, pending: PendingEvent[]): Promise<FerryEvent[]> {
    if (pending.length === 0) {
      await client.query('COMMIT');
      return [];
    }
    const n = pending.length;
    const at = Math.trunc((pending[0] as PendingEvent).at);
    const data = encodeEvents(pending);
    const origin = client.escapeLiteral(this.origin);
    // Simple-protocol multi-statement: the counter lock is held for server-side time only, not a round trip.
    const text = `WITH c AS (UPDATE ${this.s}.event_seq SET last = last + ${n} RETURNING last)
      INSERT INTO ${this.s}.events (seq, n, at, origin, data)
      SELECT last - ${n} + 1, ${n}, ${at}, ${origin}, ${client.escapeLiteral(data)} FROM c RETURNING seq;
      SELECT pg_notify('${this.channel}', ${origin} || ':' || (SELECT last FROM ${this.s}.event_seq));
      COMMIT`;
    const results = (await client.query(text)) as unknown as pg.QueryResult<{ seq: string }>[];
    const seq = Number(results[0]?.rows[0]?.seq);
    return expand(seq, data);
  }

  /** Hands a committed block of this process to `onEvents`, in order. */
  deliverOwn(events: FerryEvent[]): void {
    if (this.closed || events.length === 0) return;
    const first = (events[0] as FerryEvent).seq;
    if (first === this.delivered + 1) {
      this.emit(events);
      for (let next = this.held.get(this.delivered + 1); next; next = this.held.get(this.delivered + 1)) {
        this.held.delete((next[0] as FerryEvent).seq);
        this.emit(next);
      }
    } else if (first > this.delivered) {
      this.held.set(first, events);
      void this.tail();
    }
  }

  private emit(events: FerryEvent[]): void {
    this.delivered = (events[events.length - 1] as FerryEvent).seq;
    try {
      this.onEvents(events);
    } catch {
      // A listener's bug must not stop delivery to the others.
    }
  }

  /** Reads and delivers every block after the last delivered one. Single-flight; coalesces requests. */
  tail(): Promise<void> {
    if (this.tailing) {
      this.tailAgain = true;
      return this.tailing;
    }
    this.tailing = (async () => {
      try {
        do {
          this.tailAgain = false;
          for (;;) {
            const blocks = await this.readBlocks(this.delivered, 100);
            let progressed = false;
            for (const b of blocks) {
              const end = b.seq + b.n - 1;
              if (end <= this.delivered || this.closed) continue;
              const events = expand(b.seq, b.data).filter((e) => e.seq > this.delivered);
              for (const key of this.held.keys()) if (key <= end) this.held.delete(key);
              this.emit(events);
              progressed = true;
            }
            if (!progressed || blocks.length < 100) break;
          }
        } while (this.tailAgain && !this.closed);
      } catch {
        // Unreachable database: the poll tries again.
      } finally {
        this.tailing = null;
      }
    })();
    return this.tailing;
  }

  private async readBlocks(after: number, limit: number): Promise<{ seq: number; n: number; data: string }[]> {
    const r = await this.pool.query<{ seq: string; n: number; data: string }>(
      `SELECT seq, n, data FROM ${this.s}.events
       WHERE seq >= coalesce((SELECT max(seq) FROM ${this.s}.events WHERE seq <= $1), 0)
       ORDER BY seq LIMIT $2`,
      [after, limit],
    );
    return r.rows.map((row) => ({ seq: Number(row.seq), n: row.n, data: row.data }));
  }

  /** Events with seq greater than `after`, oldest first, at most `limit`. */
  async read(after: number, limit: number): Promise<FerryEvent[]> {
    const out: FerryEvent[] = [];
    let cursor = after;
    while (out.length < limit) {
      const blocks = await this.readBlocks(cursor, 100);
      let progressed = false;
      for (const b of blocks) {
        for (const e of expand(b.seq, b.data)) {
          if (e.seq > cursor && out.length < limit) {
            out.push(e);
            cursor = e.seq;
            progressed = true;
          }
        }
      }
      if (!progressed) break;
    }
    return out;
  }

  /** Moves events of sends made in callers' transactions (now committed) into the log. */
  async drainInbox(): Promise<void> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      for (;;) {
        await client.query('BEGIN');
        const r = await client.query<{ data: string }>(
          `DELETE FROM ${this.s}.event_inbox WHERE id IN (
             SELECT id FROM ${this.s}.event_inbox ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED)
           RETURNING id, at, data`,
        );
        const pending: PendingEvent[] = [];
        for (const row of r.rows) {
          for (const e of JSON.parse(row.data) as StoredEvent[]) {
            const { at, ...rest } = e;
            pending.push({ ...rest, at: Date.parse(at) } as PendingEvent);
          }
        }
        const events = await this.commit(client, pending);
        this.deliverOwn(events);
        if (r.rows.length < 200) return;
      }
    } catch (error) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      broken ??= error as Error;
    } finally {
      client.release(broken);
    }
  }

  private async poll(): Promise<void> {
    if (this.closed) return;
    try {
      const r = await this.pool.query<{ last: string; inbox: boolean }>(
        `SELECT last, EXISTS (SELECT 1 FROM ${this.s}.event_inbox) AS inbox FROM ${this.s}.event_seq`,
      );
      const row = r.rows[0];
      if (!row) return;
      if (row.inbox) await this.drainInbox();
      if (Number(row.last) > this.delivered) await this.tail();
    } catch {
      // Unreachable: the next poll tries again.
    }
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client(this.options.listen);
    client.on('error', () => this.scheduleReconnect());
    client.on('end', () => this.scheduleReconnect());
    client.on('notification', (msg) => {
      const payload = msg.payload ?? '';
      if (payload === 'inbox') {
        void this.drainInbox().then(() => this.tail());
        return;
      }
      const colon = payload.lastIndexOf(':');
      const origin = payload.slice(0, colon);
      const last = Number(payload.slice(colon + 1));
      if (origin !== this.origin && last > this.delivered) void this.tail();
    });
    this.listener = client;
    await client.connect();
    await client.query(`LISTEN ${this.channel}`);
    // Anything committed while we were not listening.
    void this.poll();
  }

  private scheduleReconnect(): void {
    const old = this.listener;
    this.listener = null;
    if (old) {
      old.removeAllListeners();
      old.on('error', () => {});
      void old.end().catch(() => {});
    }
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.listen().catch(() => this.scheduleReconnect());
    }, 250);
    this.reconnectTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const l = this.listener;
    this.listener = null;
    if (l) {
      l.removeAllListeners();
      l.on('error', () => {});
      await l.end().catch(() => {});
    }
    await this.tailing;
  }
}
