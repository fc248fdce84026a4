import type { FailureInfo, FerryEvent, MessageInfo, MessageState } from '../core/types.ts';
import type { MessageRecord } from '../store/store.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const parse = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

/** The public state of a record at `now`: a queued message is delayed until its runAt. */
export function publicState(record: MessageRecord, now: number): MessageState {
  if (record.state === 'queued') return record.runAt > now ? 'delayed' : 'waiting';
  return record.state;
}

export function toInfo(record: MessageRecord, now: number): MessageInfo {
  return {
    id: record.id,
    queue: record.queue,
    state: publicState(record, now),
    payload: parse(record.payload),
    result: parse(record.result),
    error: parse(record.error) as FailureInfo | null,
    attempts: record.attempts,
    maxAttempts: record.maxAttempts,
    priority: record.priority,
    key: record.key,
    dedupeId: record.dedupeId,
    progress: parse(record.progress),
    headers: record.headers === null ? {} : (JSON.parse(record.headers) as Record<string, string>),
    sentAt: iso(record.sentAt) as string,
    runAt: iso(record.runAt) as string,
    startedAt: iso(record.startedAt),
    finishedAt: iso(record.finishedAt),
    leaseUntil: record.state === 'active' ? iso(record.leaseUntil) : null,
    parentId: record.parentId,
  };
}

/**
 * An event as streams hand it out. The stores attach `runAt` (epoch ms) to `sent` and `retrying` events so the
 * bus can wake idle consumers when the message falls due; it is no part of the public event (SPEC §1), so it
 * is left out here, the one place every stream (the SDK's events(), SSE, GET /v1/events) takes its events.
 */
export function publicEvent(event: FerryEvent): FerryEvent {
  if (!('runAt' in event)) return event;
  const { runAt: _internal, ...rest } = event as FerryEvent & { runAt?: number };
  return rest;
}
