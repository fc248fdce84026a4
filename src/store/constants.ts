/**
 * Facts both stores share: the stored state codes, the error a lapsed lease leaves, and the batch sizes of
 * housekeeping. One home each, so the two dialects cannot disagree.
 */
import type { StoredState } from './store.ts';

/** State codes as stored in the `state` column of both stores. */
export const QUEUED = 0;
export const ACTIVE = 1;
export const COMPLETED = 2;
export const DEAD = 3;
export const CANCELLED = 4;
/** A flow's parent with unfinished children: never claimed; `waiting` (QUEUED) when its children are done. */
export const PENDING = 5;

/** Code → name; the index is the stored code. */
export const STATE_NAMES: readonly StoredState[] = Object.freeze([
  'queued',
  'active',
  'completed',
  'dead',
  'cancelled',
  'pending',
]);

/** The error recorded when a lease runs out before an ack or nack (JSON text). */
export const LEASE_EXPIRED = JSON.stringify({ message: 'lease expired', name: 'LeaseExpired' });

/** A flow's limits: nodes in one tree, and levels (the root is level 1). */
export const FLOW_MAX_NODES = 10_000;
export const FLOW_MAX_DEPTH = 32;

/** The error a parent dies with when a child ends dead or cancelled (`fail-parent`), as JSON text. */
export function childFailed(child: { id: string; queue: string; state: 'dead' | 'cancelled' }): string {
  return JSON.stringify({
    message: `child ${child.id} in queue ${child.queue} ended ${child.state}`,
    name: 'ChildFailedError',
    data: { id: child.id, queue: child.queue, state: child.state },
  });
}

/** The error recorded when an attempt runs past its deadline: `TimeoutError`, with the timeout it had. */
export function timeoutError(ms: number): string {
  return JSON.stringify({ message: `the attempt ran past its timeout of ${ms} ms`, name: 'TimeoutError' });
}

/** The header a dead-letter copy carries: `<queue>/<id>` of the message that died. */
export const DEAD_LETTER_HEADER = 'ferry-dead-letter-from';

/** At most this many expired leases are settled per sweep or claim statement. */
export const EXPIRE_BATCH = 1000;

/**
 * At most this many rows per housekeeping scan (retention, purge, redrive, due schedules): a sweep that
 * answers this many removed has more to do.
 */
export const SWEEP_BATCH = 1000;
