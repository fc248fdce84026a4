/**
 * Claiming, and the worker's round trip: the acks that arrived in one turn of the event loop and the first
 * claim of that turn run as one `step` statement (functions/claim.sql), one commit; further claims of the
 * turn run as steps of their own. A worker's acks and its next claim usually arrive together.
 */
import { DEFAULT_SETTINGS } from '../../core/validate.ts';
import type { Claimed, Completion, Settled } from '../../store/store.ts';
import type { Database } from './connection.ts';
import type { EventLog } from './events.ts';
import { iso, settledCodes } from './rows.ts';
import { SameTick, settleEach } from './tick.ts';

interface StepRow {
  data: string | null;
  /** Each ack's new state code in order, one character each ('-': not settled). */
  c_settled: string | null;
  /** A JSON array of ClaimedRow, as text (built by concatenation in SQL). */
  deliveries: string | null;
}

interface ClaimCall {
  kind: 'claim';
  queue: string;
  max: number;
  lease: number | null;
  timeout: number | null;
  now: number;
  resolve: (claimed: Claimed[]) => void;
  reject: (error: unknown) => void;
}

interface AckCall {
  kind: 'ack';
  items: (Completion & { now: number })[];
  size: number;
  resolve: (states: Settled[]) => void;
  reject: (error: unknown) => void;
}

export class Stepper {
  private readonly sql: string;
  private readonly turn = new SameTick<ClaimCall | AckCall>(
    (calls) => this.flush(calls),
    (call) => (call.kind === 'ack' ? call.items.map((i) => i.id) : []),
  );

  constructor(
    private readonly db: Database,
    private readonly log: EventLog,
  ) {
    this.sql = `SELECT data, c_settled, deliveries FROM ${db.s}.step(
      $1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text, $7::int, $8::int, $9::int, $10::int8,
      $11::text, $12::int, $13::int, $14::text)`;
  }

  claim(queue: string, max: number, lease: number | null, timeout: number | null, now: number): Promise<Claimed[]> {
    return new Promise((resolve, reject) => {
      this.turn.add({ kind: 'claim', queue, max, lease, timeout, now, resolve, reject });
    });
  }

  complete(items: Completion[], now: number): Promise<Settled[]> {
    return new Promise((resolve, reject) => {
      this.turn.add({ kind: 'ack', items: items.map((i) => ({ ...i, now })), size: items.length, resolve, reject });
    });
  }

  private flush(calls: (ClaimCall | AckCall)[]): void {
    const acks = calls.filter((c): c is AckCall => c.kind === 'ack');
    const claims = calls.filter((c): c is ClaimCall => c.kind === 'claim');
    void this.step(acks, claims.shift());
    for (const claim of claims) void this.step([], claim);
  }

  private async step(acks: AckCall[], claim: ClaimCall | undefined): Promise<void> {
    if (acks.length === 0 && !claim) return;
    const items = acks.flatMap((c) => c.items);
    const has = items.length > 0;
    try {
      const row = await this.db.call<StepRow>(this.sql, [
        has ? items.map((i) => i.id) : null,
        has ? items.map((i) => i.receipt) : null,
        has ? items.map((i) => i.result) : null,
        has ? items.map((i) => i.now) : null,
        has ? items.map((i) => iso(i.now)) : null,
        claim?.queue ?? null,
        claim?.max ?? null,
        claim?.lease ?? null,
        claim?.timeout ?? null,
        claim?.now ?? null,
        claim ? iso(claim.now) : null,
        DEFAULT_SETTINGS.lease,
        DEFAULT_SETTINGS.maxAttempts,
        this.log.origin,
      ]);
      this.log.committed(row.data);
      if (has) settleEach(acks, settledCodes(items.length, row.c_settled));
      if (claim) claim.resolve(claimedRows(claim, row.deliveries));
    } catch (error) {
      for (const call of acks) call.reject(error);
      claim?.reject(error);
    }
  }
}

/** The rows as `step` built them (every field of a delivery but its queue), completed in place. */
function claimedRows(claim: ClaimCall, text: string | null): Claimed[] {
  if (text === null) return [];
  const rows = JSON.parse(text) as Claimed[];
  for (const row of rows) row.queue = claim.queue;
  return rows;
}
