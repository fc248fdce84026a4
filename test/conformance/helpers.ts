/**
 * Shared tools of the conformance suite. Everything here goes through the public `Ferry` interface only,
 * so that the suite runs unchanged on every store and over HTTP.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Delivery, EventStream, Ferry, FerryEvent, MessageInfo, MessageState } from '../../src/core/types.ts';

/** What a store under test provides; one per file, or per describe block where a test needs its own. */
export interface FerryHandle {
  ferry: Ferry;
  close(): Promise<void>;
}

export type Factory = () => Promise<FerryHandle>;

/** Gives tests the ferry created by the enclosing `before` hook. */
export interface Ctx {
  readonly ferry: Ferry;
}

/** A fresh queue (or topic) name, so tests never see each other's messages. */
export function qname(prefix = 'q'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** Asserts an ISO 8601 time string and returns its epoch milliseconds. */
export function isoMs(value: unknown, what = 'time'): number {
  assert.equal(typeof value, 'string', `${what} should be an ISO string, got ${JSON.stringify(value)}`);
  assert.match(value as string, ISO, `${what} should be ISO 8601`);
  const ms = Date.parse(value as string);
  assert.ok(Number.isFinite(ms), `${what} should parse`);
  return ms;
}

// biome-ignore lint/suspicious/noExplicitAny: error class constructors take various arguments
type ErrorClass = abstract new (...args: any[]) => Error;

/** Asserts that `fn` throws or rejects with an instance of `cls`; returns the error. */
export async function expectError<E extends Error>(
  fn: () => unknown,
  cls: ErrorClass & { prototype: E },
  what = '',
): Promise<E> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, `${what}: expected ${cls.name}, but it succeeded`);
  const e = caught as Error;
  assert.ok(
    caught instanceof cls,
    `${what}: expected ${cls.name}, got ${e?.constructor?.name ?? typeof caught}: ${e?.message ?? String(caught)}`,
  );
  return caught as E;
}

/** Runs every case and asserts each threw `cls`, reporting all the cases that did not at once. */
export async function expectAllRefused(cases: [string, () => unknown][], cls: ErrorClass): Promise<void> {
  const wrong: string[] = [];
  for (const [what, fn] of cases) {
    try {
      await fn();
      wrong.push(`${what}: accepted`);
    } catch (error) {
      if (!(error instanceof cls)) wrong.push(`${what}: ${(error as Error)?.name}: ${(error as Error)?.message}`);
    }
  }
  assert.deepEqual(wrong, [], `expected ${cls.name} for every case`);
}

/** Polls `fn` until it answers something truthy; fails after `timeout` ms with the last value seen. */
export async function waitFor<T>(
  fn: () => Promise<T>,
  what: string,
  timeout = 3000,
  interval = 20,
): Promise<NonNullable<Exclude<T, false>>> {
  const end = Date.now() + timeout;
  let last: T;
  for (;;) {
    last = await fn();
    if (last) return last as NonNullable<Exclude<T, false>>;
    if (Date.now() > end)
      assert.fail(`timed out after ${timeout}ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(interval);
  }
}

/** Waits until message `id` reaches `state`; returns its info. */
export async function waitState(ferry: Ferry, id: string, state: MessageState, timeout = 3000): Promise<MessageInfo> {
  return waitFor(
    async () => {
      const info = await ferry.get(id);
      return info?.state === state ? info : undefined;
    },
    `message ${id} to be ${state}`,
    timeout,
  ) as Promise<MessageInfo>;
}

/** Receives exactly one message, waiting up to `wait` ms for it. */
export async function receiveOne(ferry: Ferry, queue: string, lease: number | string = '30s', wait = 2000) {
  const got = await ferry.receive(queue, { max: 1, wait, lease });
  assert.equal(got.length, 1, `expected one delivery from ${queue}, got ${got.length}`);
  return got[0] as Delivery;
}

/** Gets a message that must exist. */
export async function mustGet(ferry: Ferry, id: string): Promise<MessageInfo> {
  const info = await ferry.get(id);
  assert.ok(info, `message ${id} should exist`);
  return info;
}

/** Reads events from a stream one at a time, each bounded by a timeout. */
export class EventReader {
  readonly seen: FerryEvent[] = [];
  private readonly it: AsyncIterator<FerryEvent>;
  private pending: Promise<IteratorResult<FerryEvent>> | null = null;

  constructor(readonly stream: EventStream) {
    this.it = stream[Symbol.asyncIterator]();
  }

  /** The next event, or null when the stream ended; fails after `timeout` ms. */
  async next(timeout = 3000): Promise<FerryEvent | null> {
    this.pending ??= this.it.next();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeout);
    });
    const got = await Promise.race([this.pending, timedOut]);
    clearTimeout(timer);
    if (got === 'timeout') assert.fail(`no event within ${timeout}ms; seen so far: ${describeEvents(this.seen)}`);
    this.pending = null;
    if (got.done) return null;
    this.seen.push(got.value);
    return got.value;
  }

  /** Reads until `until` matches an event (which is returned), failing after `timeout` ms in all. */
  async until(until: (e: FerryEvent) => boolean, timeout = 3000): Promise<FerryEvent> {
    const end = Date.now() + timeout;
    for (;;) {
      const event = await this.next(Math.max(1, end - Date.now()));
      assert.ok(event, `stream ended before the awaited event; seen: ${describeEvents(this.seen)}`);
      if (until(event)) return event;
    }
  }

  close(): void {
    this.stream.close();
  }
}

export function describeEvents(events: FerryEvent[]): string {
  return events.map((e) => `${e.seq}:${e.type}:${e.id.slice(-6)}`).join(' ');
}

/** A JSON value nested `depth` levels deep. */
export function nested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { a: value } : [value];
  return value;
}

/** A promise with its resolve function outside (Promise.withResolvers is Node 22+). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * Makes sure a stream opened without `after` is live before the test acts: sends delayed probes (never
 * delivered) until the stream shows one. Answers the seq of the probe seen.
 */
export async function prime(ferry: Ferry, q: string, reader: EventReader): Promise<number> {
  for (let i = 0; i < 10; i++) {
    const probe = await ferry.send(q, 'probe', { delay: '1h' });
    try {
      return (await reader.until((e) => e.id === probe.id, 500)).seq;
    } catch {
      // Not live yet: try again.
    }
  }
  assert.fail('the event stream never became live');
}
