/**
 * Shared tools of the store-level suite: the `Store` interface driven directly, with no engine, time passed
 * in as plain `now` numbers, and a recording `StoreContext` (deterministic `retryDelay`, every event kept).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { FerryEvent, MessageState } from '../../src/core/types.ts';
import { newId } from '../../src/engine/ids.ts';
import type {
  BackoffSettings,
  Claimed,
  MessageRecord,
  NewMessage,
  Store,
  StoreContext,
  StoredState,
} from '../../src/store/store.ts';

/** A place stores are opened: every `open()` of one database sees the same data when `shared` says so. */
export interface Database {
  /** A new, not yet initialized store on this database. */
  open(): Promise<Store>;
  /** Removes the database (after every store on it is closed). */
  drop(): Promise<void>;
  /**
   * Where stores take the caller's transaction (`capabilities.transactionalSend`): opens one on this
   * database and answers the handle `send` takes.
   */
  begin?(): Promise<{ handle: unknown; commit(): Promise<void>; rollback(): Promise<void> }>;
}

/** One kind of store under test (`memory:`, an SQLite file, PostgreSQL). */
export interface Home {
  name: string;
  /** Two stores opened on one database share it (false for `memory:`, where each open is its own database). */
  shared: boolean;
  /** Its stores take the caller's transaction in `send` (then `Database.begin` opens one). */
  transactional: boolean;
  /** A fresh, empty database. */
  database(label: string): Promise<Database>;
}

/** A store initialized with a recording context. */
export interface Opened {
  store: Store;
  /** Every event `onEvents` delivered, in delivery order. */
  readonly events: FerryEvent[];
  /** Every `retryDelay` call, in order. */
  readonly delays: { attempt: number; backoff: BackoffSettings }[];
  /** Events delivered for `queue`. */
  eventsOf(queue: string): FerryEvent[];
  /**
   * Waits until `onEvents` has delivered at least `count` events of `queue` (a store may deliver its own
   * events just after the call that made them resolves), then answers them.
   */
  waitEvents(queue: string, count: number): Promise<FerryEvent[]>;
  close(): Promise<void>;
}

/** The suite's retry delay: `backoff.delay × attempt`, so a test can tell which attempt it was given. */
export function testRetryDelay(attempt: number, backoff: BackoffSettings): number {
  return backoff.delay * attempt;
}

export async function initStore(store: Store): Promise<Opened> {
  const events: FerryEvent[] = [];
  const delays: { attempt: number; backoff: BackoffSettings }[] = [];
  const context: StoreContext = {
    retryDelay(attempt, backoff) {
      delays.push({ attempt, backoff: structuredClone(backoff) });
      return testRetryDelay(attempt, backoff);
    },
    onEvents(batch) {
      events.push(...batch);
    },
  };
  await store.init(context);
  const eventsOf = (queue: string) => events.filter((e) => e.queue === queue);
  let closed = false;
  return {
    store,
    events,
    delays,
    eventsOf,
    async waitEvents(queue, count) {
      // A hang guard only: own events normally arrive before, or a turn after, the call resolves.
      const deadline = Date.now() + 20_000;
      while (eventsOf(queue).length < count) {
        if (Date.now() > deadline) {
          assert.fail(`expected ${count} events of ${queue}, got ${JSON.stringify(eventsOf(queue))}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return eventsOf(queue);
    },
    async close() {
      if (closed) return;
      closed = true;
      await store.close();
    },
  };
}

/** What the tests get: the store of the enclosing suite, and a way to get stores of their own. */
export interface Ctx {
  readonly home: Home;
  /** The suite's store (on a database shared by the tests of the suite; use fresh queue names). */
  readonly s: Opened;
  /** The suite's database. */
  readonly db: Database;
  /**
   * A store on a database of its own, for tests whose assertions cover every queue (sweep counts, schedules,
   * the event log). Closed and dropped after the test.
   */
  isolated(t: TestContext): Promise<{ db: Database; opened: Opened; another(): Promise<Opened> }>;
}

/** The part of node:test's TestContext the suite uses. */
export interface TestContext {
  after(fn: () => Promise<void> | void): void;
  name: string;
}

/** Start of time for every test: a fixed instant, so failures reproduce. */
export const T0 = Date.UTC(2030, 0, 1);

/** A fresh queue (or topic) name. */
export function qname(prefix = 'q'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A valid message as the engine would hand it to a store: defaults left to the queue, due at T0. */
export function msg(queue: string, over: Partial<NewMessage> = {}): NewMessage {
  return {
    id: newId(),
    queue,
    payload: JSON.stringify({ n: 1 }),
    priority: 0,
    key: null,
    dedupeId: null,
    maxAttempts: null,
    backoff: null,
    lease: null,
    timeout: null,
    headers: null,
    runAt: T0,
    ...over,
  };
}

/** Sends one message and answers its id. */
export async function sendOne(store: Store, queue: string, over: Partial<NewMessage> = {}, now = T0): Promise<string> {
  const [out] = await store.send([msg(queue, over)], now);
  assert.ok(out && !out.deduplicated);
  return out.id;
}

/** Claims exactly one message of `queue` and answers it. */
export async function claimOne(store: Store, queue: string, now = T0, lease: number | null = 1000): Promise<Claimed> {
  const got = await store.claim(queue, 1, lease, now);
  assert.equal(got.length, 1, `one message of ${queue} is claimable at ${now - T0}`);
  return got[0] as Claimed;
}

/** The stored record of `id`, asserting it exists. */
export async function record(store: Store, id: string): Promise<MessageRecord> {
  const r = await store.get(id);
  assert.ok(r, `message ${id} exists`);
  return r;
}

/** Asserts the stored state of `id` (and answers its record). */
export async function expectState(store: Store, id: string, state: StoredState, what = ''): Promise<MessageRecord> {
  const r = await record(store, id);
  assert.equal(r.state, state, `${what || id}: stored state`);
  return r;
}

/** The public state of a record at `now`, as the engine derives it. */
export function publicState(r: MessageRecord, now: number): MessageState {
  if (r.state === 'queued') return r.runAt > now ? 'delayed' : 'waiting';
  return r.state;
}

/** The ids of claimed messages. */
export const ids = (claimed: Claimed[]): string[] => claimed.map((c) => c.id);

/** The error JSON a failure stores. */
export function failure(message: string): string {
  return JSON.stringify({ message, name: 'Error' });
}
