/**
 * The event log (functions/events.sql). Seqs are given by one numberer at a time, so the log is gapless and
 * in commit order, while no writer waits: a transaction numbers its own block when the numbering lock is
 * free, and stages it unnumbered when it is not; a pass of the sequencer numbers staged blocks soon after.
 *
 * The sequencer is one process at a time, elected by a session advisory lock on its dedicated LISTEN
 * connection (the lock goes when that connection does, and another process takes it at its next poll).
 * After each commit a process wakes its own waiters at once (`onCommitted`) and sends a hint: a NOTIFY
 * outside any transaction (so it serializes nothing), at most one in flight, naming the queues it changed,
 * the newest seq it knows and whether it staged a block. Other processes wake their consumers of those
 * queues and read the log up to that seq (a tail); the sequencer runs a pass when a block was staged.
 * A process that its poll finds listening alone on the schema (LISTEN connections' application_name starts
 * with `ferry:<channel>`; the poll counts them in pg_stat_activity) sends no hints, until a process that
 * starts listening says hello.
 * Delivery to `onEvents` is strictly in seq order. Notifications only shorten waits: every process also
 * polls, reads what it missed, and numbers blocks left unnumbered too long (no sequencer elected, or LISTEN
 * turned off behind a pooler), so delivery never depends on a notification.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { FerryEvent } from '../../core/types.ts';
import type { StoreContext } from '../../store/store.ts';
import type { Database } from './connection.ts';

type StoredEvent = Omit<FerryEvent, 'seq'> & { runAt?: number };

/** Blocks one pass numbers at most. */
const PASS = 5000;
/** Least time between the starts of two passes of this process (ms); see `passes`. */
const PASS_GAP = 10;
/** Blocks read per tail query. */
const PAGE = 100;
/**
 * Least time between the starts of two hints of this process (ms). A hint costs a transaction on the server,
 * and every listening session, this one included, handles it: sent after every commit, it competed with the
 * next send for the same two cores. Changes of a burst merge into one hint instead; an idle process's first
 * hint goes at once, so the wait adds to another process's wake-up only while this one commits often.
 */
const HINT_GAP = 3;
/**
 * A notification (a hint, a hello), sent outside any transaction. A notifying transaction takes an xid, so its
 * commit would wait for a WAL flush; a notification needs no durability, so it commits without waiting (this
 * statement's own transaction only).
 */
const NOTIFY = `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)`;
/** NOTIFY payloads are limited to 8000 bytes; a longer list of queues becomes "any queue". */
const HINT_MAX = 7000;

export interface EventLogOptions {
  /** How often to look for other processes' blocks, and unnumbered ones, when no NOTIFY arrives (ms). */
  pollInterval: number;
  /** The dedicated LISTEN connection's settings; null: no LISTEN, polling only. */
  listen: pg.ClientConfig | null;
}

/**
 * A hint: `h<s|n>:<seq>:<from>:<queues>`: whether a block was staged (the sequencer has work), the newest seq
 * the sender knows (0: none), who sent it (the sender's origin; empty for a send in a caller's transaction),
 * the queues that changed (`*` when the list is too long for a NOTIFY).
 */
export function hintPayload(staged: boolean, seq: number, from: string, queues: Iterable<string>): string {
  const head = `h${staged ? 's' : 'n'}:${seq}:${from}:`;
  const payload = `${head}${[...queues].join(',')}`;
  return payload.length > HINT_MAX ? `${head}*` : payload;
}

function parseHint(payload: string): { staged: boolean; seq: number; from: string; queues: string[] | null } | null {
  const m = /^h([sn]):(\d+):([^:]*):(.*)$/s.exec(payload);
  if (!m) return null;
  const queues = m[4] as string;
  return {
    staged: m[1] === 's',
    seq: Number(m[2]),
    from: m[3] as string,
    queues: queues === '*' ? null : queues ? queues.split(',') : [],
  };
}

/**
 * The LISTEN connection's settings, its application_name starting with `name` (processes count each other by
 * it), then the one the settings gave, if any. node-postgres lets a connection string's parameters override
 * the other settings, so the name given there moves after ours.
 */
function named(config: pg.ClientConfig, name: string): pg.ClientConfig {
  let given = config.application_name;
  let connectionString = config.connectionString;
  if (typeof connectionString === 'string' && connectionString.includes('application_name')) {
    try {
      const url = new URL(connectionString);
      given = url.searchParams.get('application_name') ?? given;
      url.searchParams.delete('application_name');
      connectionString = url.href;
    } catch {
      // Not a URL node-postgres reads either: connecting reports it.
    }
  }
  // PostgreSQL keeps 63 bytes of it.
  const full = given ? `${name} ${given}` : name;
  return { ...config, connectionString, application_name: Buffer.from(full).subarray(0, 63).toString() };
}

export function expand(seq: number, data: string): FerryEvent[] {
  return numbered(seq, JSON.parse(data) as StoredEvent[]);
}

function numbered(seq: number, events: StoredEvent[]): FerryEvent[] {
  return events.map((e, i) => ({ seq: seq + i, ...e }) as FerryEvent);
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

interface PassRow {
  got: boolean;
  last_seq: string | null;
  /** The blocks numbered, as a JSON array of MovedBlock (null: none). */
  moved: string | null;
}

interface MovedBlock {
  seq: number;
  origin: string;
  events: StoredEvent[];
}

export class EventLog {
  readonly channel: string;
  private delivered = 0;
  private held = new Map<number, { events: FerryEvent[]; woken: boolean }>();
  private tailing: Promise<void> | null = null;
  private tailAgain = false;
  private passWanted = false;
  /** A reader waits for the next pass: no spacing before it. */
  private urgent = false;
  private passing: Promise<void> | null = null;
  /** This process committed blocks since its last flush (see `flushOwn`). */
  private committedSinceFlush = false;
  private hintQueues = new Set<string>();
  private hintStaged = false;
  private hintSeq = 0;
  private hinting = false;
  /** The hint in flight, and the timer of one held back by HINT_GAP. */
  private hintSent: Promise<unknown> | null = null;
  private hintTimer: ReturnType<typeof setTimeout> | undefined;
  private lastHint = Number.NEGATIVE_INFINITY;
  private leader = false;
  /**
   * No other process listens on this schema's channel (the last poll counted the listening connections by
   * their application_name, ours among them): hints would reach no one, so none are sent. A process that
   * starts listening says hello, which ends this at once.
   */
  private alone = false;
  /** Hellos heard from other processes (a poll's count taken before one is stale). */
  private hellos = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private listener: pg.Client | null = null;
  /** The listener's LISTEN is in effect: other processes' hints reach this process. */
  private listening = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly passSql: string;
  /** How the application_name of every process's LISTEN connection on this schema starts (how they count each other). */
  private readonly listenName: string;

  constructor(
    private readonly db: Database,
    private readonly schema: string,
    readonly origin: string,
    private readonly context: StoreContext,
    private readonly options: EventLogOptions,
  ) {
    this.channel = `ferry_${createHash('sha1').update(schema).digest('hex').slice(0, 24)}`;
    this.passSql = `SELECT got, last_seq, moved FROM ${db.s}.sequence_events($1)`;
    this.listenName = `ferry:${this.channel}`;
  }

  async start(): Promise<void> {
    this.delivered = await this.lastSeq();
    if (this.options.listen) await this.listen().catch(() => this.scheduleReconnect());
    this.timer = setInterval(() => void this.poll(), this.options.pollInterval);
    this.timer.unref();
  }

  async lastSeq(): Promise<number> {
    await this.flushOwn();
    const r = await this.db.query<{ last: string }>(`SELECT last FROM ${this.db.s}.event_seq`);
    return Number(r.rows[0]?.last ?? 0);
  }

  /**
   * After this process committed a block: `data` as stage_events answered it (null when no events): the
   * events, numbered (`{"seq":…,"events":[…]}`) or staged (the array).
   */
  committed(data: string | null): void {
    if (data === null || this.closed) return;
    const parsed = JSON.parse(data) as StoredEvent[] | { seq: number; events: StoredEvent[] };
    const events = Array.isArray(parsed) ? parsed : parsed.events;
    // The queues whose new work this process's own waiting consumers did not take up: only those are named
    // to the other processes, whose consumers would otherwise all look too, mostly finding nothing (a
    // statement each: with four processes on one queue, claims per message tripled).
    let uncovered: readonly string[] | undefined;
    try {
      uncovered = this.context.onCommitted?.(events);
    } catch {
      // Waking waiters must not fail the commit that already happened.
    }
    for (const queue of uncovered ?? events.map((e) => e.queue)) this.hintQueues.add(queue);
    if (Array.isArray(parsed)) {
      this.committedSinceFlush = true;
      this.hintStaged = true;
      if (this.leader) this.requestPass();
    } else {
      const numbered = events.map((e, i) => ({ seq: parsed.seq + i, ...e }) as FerryEvent);
      this.hintSeq = Math.max(this.hintSeq, parsed.seq + events.length - 1);
      this.offer(numbered, true);
    }
    this.hint();
  }

  /**
   * `queues` may have deliverable messages that no hint named (a queue resumed or reconfigured, a backlog a
   * full claim here left over with no consumer waiting here): the other processes' consumers are told, as
   * for uncovered work.
   */
  touched(queues: readonly string[]): void {
    for (const queue of queues) this.hintQueues.add(queue);
    this.hint();
  }

  /** What changed since the last hint, forgotten (sent, or no one to send it to). */
  private clearHint(): void {
    this.hintQueues.clear();
    this.hintStaged = false;
    this.hintSeq = 0;
  }

  /** Tells the other processes (and the sequencer) what changed. One NOTIFY in flight; the rest merge. */
  private hint(): void {
    // Alone, what changed is kept (a set of queue names, a seq, a flag): a process that starts listening may
    // have missed it, and gets it once this one learns that it listens.
    if (this.alone) return;
    if (this.hinting || this.closed || (this.hintQueues.size === 0 && !this.hintSeq && !this.hintStaged)) return;
    this.hinting = true;
    const wait = this.lastHint + HINT_GAP - performance.now();
    if (wait > 0) {
      this.hintTimer = setTimeout(() => {
        this.hintTimer = undefined;
        this.hinting = false;
        this.hint();
      }, wait);
      return;
    }
    this.lastHint = performance.now();
    const payload = hintPayload(this.hintStaged, this.hintSeq, this.origin, this.hintQueues);
    this.clearHint();
    // It goes on the dedicated connection when there is one, so it never takes a pooled connection from a
    // send or a claim.
    const on: Pick<pg.Client, 'query'> = this.listener ?? this.db.pool;
    this.hintSent = on
      .query(NOTIFY, [this.channel, payload])
      .catch(() => {
        // A lost hint costs latency only: the poll finds the work.
      })
      .finally(() => {
        this.hintSent = null;
        this.hinting = false;
        this.hint();
      });
  }

  /**
   * Read-your-writes: before this process reads the log, a pass that started after its last commit (so it
   * numbered every block committed before) has run, and the log was read up to there.
   */
  private async flushOwn(): Promise<void> {
    if (!this.committedSinceFlush || this.closed) return;
    this.committedSinceFlush = false;
    this.urgent = true;
    this.requestPass();
    await this.passing;
    await this.tail();
  }

  /** Asks for a sequencer pass that starts after now. Single-flight; requests made meanwhile share the next. */
  requestPass(): void {
    this.passWanted = true;
    if (this.passing || this.closed) return;
    this.passing = this.passes().finally(() => {
      this.passing = null;
    });
  }

  private async passes(): Promise<void> {
    let backoff = 1;
    let started = 0;
    while (this.passWanted && !this.closed) {
      // Passes at most every PASS_GAP ms: each commits durably, and a pass for every single send would
      // double the fsyncs of sequential sends; spaced, one pass numbers the blocks of several commits.
      const gap = started + PASS_GAP - performance.now();
      if (gap > 0 && !this.urgent) await sleep(gap);
      this.urgent = false;
      started = performance.now();
      this.passWanted = false;
      let row: PassRow;
      try {
        row = await this.db.call<PassRow>(this.passSql, [PASS]);
      } catch {
        // Unreachable database: the poll asks again.
        return;
      }
      if (!row.got) {
        // Another pass is running and may have missed the blocks we know of: try again until one of ours runs.
        this.passWanted = true;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 32);
        continue;
      }
      backoff = 1;
      const moved = row.moved === null ? [] : (JSON.parse(row.moved) as MovedBlock[]);
      if (moved.length === PASS) this.passWanted = true;
      if (moved.length > 0) {
        // Everyone reads up to the new seq.
        this.hintSeq = Math.max(this.hintSeq, Number(row.last_seq));
        this.hint();
      }
      for (const block of moved) this.offer(numbered(block.seq, block.events), block.origin === this.origin);
    }
  }

  /** A numbered block: delivered now when it is next, else held until a tail fills the gap before it. */
  private offer(events: FerryEvent[], woken: boolean): void {
    if (this.closed || events.length === 0) return;
    const first = (events[0] as FerryEvent).seq;
    if (first === this.delivered + 1) {
      this.emit(events, woken);
      for (let next = this.held.get(this.delivered + 1); next; next = this.held.get(this.delivered + 1)) {
        this.held.delete(this.delivered + 1);
        this.emit(next.events, next.woken);
      }
    } else if (first > this.delivered) {
      this.held.set(first, { events, woken });
      void this.tail();
    }
  }

  /**
   * `own`: a block this process committed (its waiters were woken at commit). Another process's block: while
   * this process listens, that process's hint named the queues its own consumers left (consumers here were
   * woken then), so only result waiters and messages delayed at that commit are left; without LISTEN, the
   * log is how consumers here hear of it.
   */
  private emit(events: FerryEvent[], own: boolean): void {
    this.delivered = (events[events.length - 1] as FerryEvent).seq;
    try {
      this.context.onEvents(events, own ? 'all' : this.listening ? 'consumers' : undefined);
    } catch {
      // The engine's listeners report their own errors; nothing may stop delivery here.
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
            const blocks = await this.readBlocks(this.delivered, PAGE);
            let progressed = false;
            for (const b of blocks) {
              const end = b.seq + b.n - 1;
              if (end <= this.delivered || this.closed) continue;
              const events = expand(b.seq, b.data).filter((e) => e.seq > this.delivered);
              for (const key of this.held.keys()) if (key <= end) this.held.delete(key);
              this.emit(events, b.origin === this.origin);
              progressed = true;
            }
            if (!progressed || blocks.length < PAGE) break;
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

  private async readBlocks(
    after: number,
    limit: number,
  ): Promise<{ seq: number; n: number; origin: string; data: string }[]> {
    const r = await this.db.query<{ seq: string; n: number; origin: string; data: string }>(
      `SELECT seq, n, origin, data FROM ${this.db.s}.events
       WHERE seq >= coalesce((SELECT max(seq) FROM ${this.db.s}.events WHERE seq <= $1), 0)
       ORDER BY seq LIMIT $2`,
      [after, limit],
    );
    return r.rows.map((row) => ({ seq: Number(row.seq), n: row.n, origin: row.origin, data: row.data }));
  }

  /** Events with seq greater than `after`, oldest first, at most `limit`. */
  async read(after: number, limit: number): Promise<FerryEvent[]> {
    await this.flushOwn();
    const out: FerryEvent[] = [];
    let cursor = after;
    while (out.length < limit) {
      const blocks = await this.readBlocks(cursor, PAGE);
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

  private async poll(): Promise<void> {
    if (this.closed) return;
    const hellos = this.hellos;
    try {
      if (this.listener && !this.leader) await this.elect(this.listener);
      // node-postgres keeps the backend's pid from BackendKeyData (not in its types).
      const mine = (this.listener as { processID?: number } | null)?.processID ?? null;
      const r = await this.db.query<{
        last: string;
        min_id: string | null;
        max_id: string | null;
        listeners: number;
        ours: number;
      }>(
        `SELECT last, (SELECT min(id) FROM ${this.db.s}.event_inbox) AS min_id,
                (SELECT max(id) FROM ${this.db.s}.event_inbox) AS max_id,
                a.listeners, a.ours
           FROM ${this.db.s}.event_seq,
                (SELECT count(*)::int AS listeners, (count(*) FILTER (WHERE pid = $2))::int AS ours
                   FROM pg_stat_activity
                  WHERE left(application_name, length($1)) = $1 AND datname = current_database()) a`,
        [this.listenName, mine],
      );
      const row = r.rows[0];
      if (!row) return;
      // Alone only when our own listener is among those counted (so the count sees it) and is the only one,
      // and no process said hello while the count was taken (it may have started listening after).
      if (row.ours === 1 && row.listeners === 1 && this.hellos === hellos) this.alone = true;
      else this.notAlone();
      // A block already there at the last poll is still unnumbered: no sequencer is at work (none elected, or
      // LISTEN is off behind a pooler), so this process numbers it. The sequencer itself passes on any block.
      const stale = row.min_id !== null && this.lastMaxId !== null && Number(row.min_id) <= this.lastMaxId;
      if (row.min_id !== null && (this.leader || stale)) this.requestPass();
      this.lastMaxId = row.max_id === null ? null : Number(row.max_id);
      if (Number(row.last) > this.delivered) await this.tail();
    } catch {
      // Unreachable: the next poll tries again.
    }
  }

  /** Another process listens: what changed while this one thought itself alone goes out now. */
  private notAlone(): void {
    if (!this.alone) return;
    this.alone = false;
    this.hint();
  }

  /** The newest unnumbered block seen by the last poll. */
  private lastMaxId: number | null = null;

  /** Becomes the sequencer when no other process is (a session lock on the dedicated connection). */
  private async elect(client: pg.Client): Promise<void> {
    const r = await client.query<{ ok: boolean }>(
      "SELECT pg_try_advisory_lock(hashtext('ferry.sequencer'), hashtext($1)) AS ok",
      [this.schema],
    );
    if (client !== this.listener) return;
    this.leader = r.rows[0]?.ok === true;
    if (this.leader) this.requestPass();
  }

  private async listen(): Promise<void> {
    if (this.closed || !this.options.listen) return;
    const client = new pg.Client(named(this.options.listen, this.listenName));
    client.on('error', () => this.scheduleReconnect());
    client.on('end', () => this.scheduleReconnect());
    client.on('notification', (msg) => this.notified(msg.payload ?? ''));
    this.listener = client;
    await client.connect();
    await client.query(`LISTEN ${this.channel}`);
    if (client !== this.listener) return;
    this.listening = true;
    // Hints sent while this process did not listen were lost: a consumer waiting here on each queue looks.
    try {
      this.context.onActivity?.(null);
    } catch {
      // A wake only.
    }
    // Processes that were alone start hinting again.
    await client.query(NOTIFY, [this.channel, `hello:${this.origin}`]);
    await this.elect(client);
    // Anything committed while we were not listening.
    void this.poll();
  }

  private notified(payload: string): void {
    if (payload.startsWith('hello:')) {
      if (payload !== `hello:${this.origin}`) {
        this.hellos++;
        this.notAlone();
      }
      return;
    }
    const hint = parseHint(payload);
    if (!hint) return;
    // This process woke its own waiters at commit; a hint of its own only tells the sequencer.
    if (hint.from !== this.origin && (hint.queues === null || hint.queues.length > 0)) {
      try {
        this.context.onActivity?.(hint.queues);
      } catch {
        // A hint only.
      }
    }
    if (hint.staged && this.leader) this.requestPass();
    if (hint.seq > this.delivered) void this.tail();
  }

  private scheduleReconnect(): void {
    const old = this.listener;
    this.listener = null;
    this.listening = false;
    this.leader = false;
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
    if (this.closed) return;
    // This process's last blocks get their seqs before it goes (else the next sequencer numbers them).
    await this.flushOwn();
    // A hint held back goes now, so other processes need not wait for their poll.
    if (this.hintTimer) {
      clearTimeout(this.hintTimer);
      this.hintTimer = undefined;
      this.hinting = false;
      this.lastHint = Number.NEGATIVE_INFINITY;
      this.hint();
    }
    await this.hintSent;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const l = this.listener;
    this.listener = null;
    this.listening = false;
    this.leader = false;
    if (l) {
      l.removeAllListeners();
      l.on('error', () => {});
      await l.end().catch(() => {});
    }
    await this.tailing;
    await this.passing;
  }
}
