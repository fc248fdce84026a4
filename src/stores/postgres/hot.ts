/**
 * The hot path: sends, claims and acks, each one statement (a function of migrations 002 and 004) running as its own
 * transaction, so each costs one round trip. Claims and acks that arrive in the same turn of the event loop
 * are grouped: the acks and the first claim share one `step` statement and one commit (a worker's acks and
 * its next claim usually arrive together); further claims of that turn run as their own statements.
 */
import type pg from 'pg';
import type { FerryEvent } from '../../core/types.ts';
import { DEFAULT_SETTINGS } from '../../core/validate.ts';
import type { Claimed, Completion, NewMessage, SendOutcome, Settled } from '../../store/store.ts';
import { unavailable } from './connection.ts';
import { expand } from './events.ts';
import { messageColumns, STATE_NAMES } from './rows.ts';

const RETRYABLE = new Set(['40P01', '40001']);

export interface HotOptions {
  pool: pg.Pool;
  /** Quoted schema. */
  s: string;
  origin: string;
  channel: string;
  /** Hands a committed block of this process's events to the log, for delivery in seq order. */
  deliver(events: FerryEvent[]): void;
}

interface StepRow {
  first_seq: string | null;
  data: string | null;
  c_ords: number[] | null;
  c_states: number[] | null;
  /** A JSON array of ClaimedRow, as text (built by concatenation in SQL; see migration 004). */
  claimed: string | null;
}

interface ClaimedRow {
  id: string;
  payload: string;
  attempt: number;
  receipt: string;
  priority: number;
  key: string | null;
  headers: string | null;
  sentAt: number;
  leaseUntil: number;
}

interface ClaimCall {
  queue: string;
  max: number;
  lease: number | null;
  now: number;
  resolve: (claimed: Claimed[]) => void;
  reject: (error: unknown) => void;
}

interface AckCall {
  items: (Completion & { now: number })[];
  resolve: (states: Settled[]) => void;
  reject: (error: unknown) => void;
}

const iso = (ms: number) => new Date(ms).toISOString();

export class HotPath {
  private acks: AckCall[] = [];
  private claims: ClaimCall[] = [];
  private scheduled = false;
  private readonly stepSql: string;
  private readonly sendSql: string;

  constructor(private readonly o: HotOptions) {
    const { s } = o;
    this.stepSql = `SELECT first_seq, data, c_ords, c_states, claimed FROM ${s}.step(
      $1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text, $7::int, $8::int, $9::int8, $10::text,
      $11::int, $12::int, $13::int8, $14::text, $15::text)`;
    this.sendSql = `SELECT first_seq, data, ids, deduplicated FROM ${s}.send(
      $1::text[], $2::text[], $3::int[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[],
      $10::text[], $11::int[], $12::int8, $13::text, $14::text[], $15::text, $16::text)`;
  }

  /** One statement; deadlocks and serialization failures run it again (it is its own transaction). */
  private async run<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.o.pool.query<R>(text, values);
        return r.rows[0] as R;
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        if (RETRYABLE.has(code) && attempt < 5) continue;
        throw unavailable(error);
      }
    }
  }

  private deliver(firstSeq: string | null, data: string | null): void {
    if (firstSeq !== null && data !== null) this.o.deliver(expand(Number(firstSeq), data));
  }

  async send(messages: NewMessage[], now: number, newQueues: string[]): Promise<SendOutcome[]> {
    const row = await this.run<{
      first_seq: string | null;
      data: string | null;
      ids: string[] | null;
      deduplicated: boolean[] | null;
    }>(this.sendSql, [...messageColumns(messages), now, iso(now), newQueues, this.o.origin, this.o.channel]);
    this.deliver(row.first_seq, row.data);
    if (row.ids === null) return messages.map((m) => ({ id: m.id, deduplicated: false }));
    const dedup = row.deduplicated as boolean[];
    return row.ids.map((id, i) => ({ id, deduplicated: dedup[i] === true }));
  }

  claim(queue: string, max: number, lease: number | null, now: number): Promise<Claimed[]> {
    return new Promise((resolve, reject) => {
      this.claims.push({ queue, max, lease, now, resolve, reject });
      this.schedule();
    });
  }

  /** Acks of one turn share a statement; the same message twice waits for the next turn, so each settles as if alone. */
  complete(items: Completion[], now: number): Promise<Settled[]> {
    return new Promise((resolve, reject) => {
      this.acks.push({ items: items.map((i) => ({ ...i, now })), resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const ids = new Set<string>();
    const acks: AckCall[] = [];
    while (this.acks.length) {
      const call = this.acks[0] as AckCall;
      if (call.items.some((i) => ids.has(i.id))) break;
      for (const i of call.items) ids.add(i.id);
      acks.push(call);
      this.acks.shift();
    }
    const claims = this.claims.splice(0);
    if (this.acks.length) this.schedule();
    void this.step(acks, claims.shift());
    for (const claim of claims) void this.step([], claim);
  }

  private async step(acks: AckCall[], claim: ClaimCall | undefined): Promise<void> {
    if (acks.length === 0 && !claim) return;
    const items = acks.flatMap((c) => c.items);
    const has = items.length > 0;
    try {
      const row = await this.run<StepRow>(this.stepSql, [
        has ? items.map((i) => i.id) : null,
        has ? items.map((i) => i.receipt) : null,
        has ? items.map((i) => i.result) : null,
        has ? items.map((i) => i.now) : null,
        has ? items.map((i) => iso(i.now)) : null,
        claim?.queue ?? null,
        claim?.max ?? null,
        claim?.lease ?? null,
        claim?.now ?? null,
        claim ? iso(claim.now) : null,
        DEFAULT_SETTINGS.lease,
        DEFAULT_SETTINGS.maxAttempts,
        DEFAULT_SETTINGS.retention,
        this.o.origin,
        this.o.channel,
      ]);
      this.deliver(row.first_seq, row.data);
      if (has) {
        const states: Settled[] = new Array(items.length).fill(null);
        const ords = row.c_ords ?? [];
        const codes = row.c_states ?? [];
        for (let k = 0; k < ords.length; k++) states[(ords[k] as number) - 1] = STATE_NAMES[codes[k] as number] ?? null;
        let at = 0;
        for (const call of acks) {
          call.resolve(states.slice(at, at + call.items.length));
          at += call.items.length;
        }
      }
      if (claim) {
        const now = claim.now;
        claim.resolve(
          (row.claimed === null ? [] : (JSON.parse(row.claimed) as ClaimedRow[])).map(
            (c): Claimed => ({
              id: c.id,
              queue: claim.queue,
              payload: c.payload,
              attempt: c.attempt,
              receipt: c.receipt,
              priority: c.priority,
              key: c.key,
              headers: c.headers,
              sentAt: c.sentAt,
              leaseUntil: c.leaseUntil,
              lease: c.leaseUntil - now,
            }),
          ),
        );
      }
    } catch (error) {
      for (const call of acks) call.reject(error);
      claim?.reject(error);
    }
  }
}
