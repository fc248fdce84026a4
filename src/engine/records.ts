import type { FailureInfo, MessageInfo, MessageState } from '../core/types.ts';
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
  };
}
