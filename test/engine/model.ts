/**
 * Model-based test: fast-check drives the engine (with a manual clock) and a small reference model with the
 * same random commands, and after each command every message's state, attempts, error and each delivery
 * must agree, and the dead-letter queue holds one copy per death. The model is the rules of SPEC §1 and, of
 * §6, the job timeout, the dead-letter queue and the key limits (each scenario draws a keyConcurrency and a
 * keyRateLimit, and may change keyConcurrency on the way), written as plainly as possible. It runs on every home (memory:,
 * an SQLite file, PostgreSQL, and over HTTP): `modelTest(home, runs)` registers it for one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type Delivery, type Ferry, LeaseLostError, ManualClock } from '../../src/index.ts';

const LEASE = 1000;
const BACKOFF = 500;
const MAX_ATTEMPTS = 3;

/** How the last failed attempt of a message failed, as its kept error says. */
type Failure = 'nack' | 'lease' | 'timeout' | 'child' | null;
const FAILURE_NAMES: Record<Exclude<Failure, null>, string | undefined> = {
  nack: undefined,
  lease: 'LeaseExpired',
  timeout: 'TimeoutError',
  child: 'ChildFailedError',
};

type State = 'pending' | 'waiting' | 'delayed' | 'active' | 'completed' | 'dead' | 'cancelled';
interface ModelMessage {
  seq: number;
  priority: number;
  key: string | null;
  /** Not deliverable: its key already has `keyConcurrency` unblocked unfinished messages. */
  blocked: boolean;
  runAt: number;
  state: 'pending' | 'queued' | 'active' | 'completed' | 'dead' | 'cancelled';
  attempts: number;
  /** The message's own timeout (ms), or null. */
  timeout: number | null;
  leaseUntil: number;
  /** The current attempt's deadline, or null. */
  deadline: number | null;
  receipt: number;
  cancelRequested: boolean;
  error: Failure;
  /** Copies made in the dead-letter queue: one per time the message became dead. */
  deaths: number;
  /** A flow child's parent (its seq), else null. */
  parent: number | null;
  /** A flow parent's unfinished children. */
  childrenLeft: number;
  /** The parent's `children: 'ignore-failures'`. */
  ignoreFailures: boolean;
}

/** A message as `send` makes it. */
function fresh(seq: number, runAt: number, over: Partial<ModelMessage> = {}): ModelMessage {
  return {
    seq,
    priority: 0,
    key: null,
    blocked: false,
    runAt,
    state: 'queued',
    attempts: 0,
    timeout: null,
    leaseUntil: 0,
    deadline: null,
    receipt: 0,
    cancelRequested: false,
    error: null,
    deaths: 0,
    parent: null,
    childrenLeft: 0,
    ignoreFailures: false,
    ...over,
  };
}

/** A scenario's key limits (SPEC §6); keyConcurrency may change during it. */
interface KeyLimits {
  keyConcurrency: number;
  keyRateLimit: { max: number; per: number } | null;
}

class Model {
  messages: ModelMessage[] = [];
  now = 0;
  receipts = 0;
  /** Per key, the window its deliveries are counted in (keyRateLimit). */
  windows = new Map<string, { start: number; count: number }>();

  constructor(
    public limits: KeyLimits,
    readonly queueTimeout: number | null,
  ) {}

  private unfinished(key: string): ModelMessage[] {
    return this.messages.filter((o) => o.key === key && (o.state === 'queued' || o.state === 'active'));
  }

  /** A message of `key` sent now waits when its key already has keyConcurrency unfinished messages. */
  blockedAtSend(key: string | null): boolean {
    return key !== null && this.unfinished(key).length >= this.limits.keyConcurrency;
  }

  /** After a message of `key` finished: its earliest blocked ones go, up to keyConcurrency unblocked. */
  private release(key: string | null): void {
    if (key === null) return;
    const unfinished = this.unfinished(key);
    let room = this.limits.keyConcurrency - unfinished.filter((o) => !o.blocked).length;
    for (const o of unfinished) {
      if (room <= 0) break;
      if (o.blocked) {
        o.blocked = false;
        room--;
      }
    }
  }

  /** keyConcurrency changed: per key, its active messages then its earliest queued ones are unblocked. */
  setKeyConcurrency(n: number): void {
    this.limits.keyConcurrency = n;
    for (const key of new Set(this.messages.map((m) => m.key))) {
      if (key === null) continue;
      const ranked = this.unfinished(key).sort(
        (a, b) => Number(b.state === 'active') - Number(a.state === 'active') || a.seq - b.seq,
      );
      ranked.forEach((o, i) => {
        if (o.state === 'queued') o.blocked = i >= n;
      });
    }
  }

  /** A message ends: its key's next go; a death makes one copy in the dead-letter queue. */
  private finish(m: ModelMessage, state: 'completed' | 'dead' | 'cancelled'): void {
    m.state = state;
    m.blocked = false;
    if (state === 'dead') m.deaths++;
    this.release(m.key);
  }

  publicState(m: ModelMessage): State {
    if (m.state === 'queued') return m.runAt > this.now ? 'delayed' : 'waiting';
    return m.state;
  }

  /**
   * Expired leases become failed attempts: redelivered at once, or dead/cancelled. A lease that reached its
   * attempt's deadline is a timeout, retried after the backoff.
   */
  expire(only?: ModelMessage): void {
    for (const m of only ? [only] : this.messages) {
      if (m.state === 'active' && m.leaseUntil <= this.now) {
        const timedOut = m.deadline !== null && m.leaseUntil >= m.deadline;
        m.error = timedOut ? 'timeout' : 'lease';
        if (m.cancelRequested) this.end(m, 'cancelled');
        else if (m.attempts >= MAX_ATTEMPTS) this.end(m, 'dead');
        else {
          m.state = 'queued';
          m.runAt = timedOut ? this.now + BACKOFF : this.now;
        }
      }
    }
  }

  private deliverable(m: ModelMessage): boolean {
    return m.state === 'queued' && m.runAt <= this.now && !m.blocked;
  }

  /** Whether `m`'s key may have one more delivery in its window (counting it when so). */
  private takeRate(m: ModelMessage): boolean {
    const rate = this.limits.keyRateLimit;
    if (rate === null || m.key === null) return true;
    const stored = this.windows.get(m.key);
    const window = stored && this.now < stored.start + rate.per ? stored : { start: this.now, count: 0 };
    if (window.count >= rate.max) return false;
    this.windows.set(m.key, { start: window.start, count: window.count + 1 });
    return true;
  }

  receive(max: number, timeout: number | null): ModelMessage[] {
    this.expire();
    const ready: ModelMessage[] = [];
    for (const m of this.messages
      .filter((o) => this.deliverable(o))
      .sort((a, b) => b.priority - a.priority || a.runAt - b.runAt || a.seq - b.seq)) {
      if (ready.length >= max) break;
      if (this.takeRate(m)) ready.push(m);
    }
    for (const m of ready) {
      m.state = 'active';
      m.attempts++;
      const limit = timeout ?? m.timeout ?? this.queueTimeout;
      m.deadline = limit === null ? null : this.now + limit;
      m.leaseUntil = Math.min(this.now + LEASE, m.deadline ?? Number.POSITIVE_INFINITY);
      m.receipt = ++this.receipts;
    }
    return ready;
  }

  valid(m: ModelMessage, receipt: number): boolean {
    return m.state === 'active' && m.receipt === receipt && m.leaseUntil > this.now;
  }

  ack(m: ModelMessage): void {
    this.end(m, m.cancelRequested ? 'cancelled' : 'completed');
  }

  /** Extends the lease, never past the attempt's deadline. */
  extend(m: ModelMessage, lease: number): number {
    m.leaseUntil = Math.min(this.now + lease, m.deadline ?? Number.POSITIVE_INFINITY);
    return m.leaseUntil;
  }

  nack(m: ModelMessage): void {
    m.error = 'nack';
    if (m.cancelRequested) this.end(m, 'cancelled');
    else if (m.attempts >= MAX_ATTEMPTS) this.end(m, 'dead');
    else {
      m.state = 'queued';
      m.runAt = this.now + BACKOFF;
    }
  }

  cancel(m: ModelMessage): void {
    if (m.state === 'queued' || m.state === 'pending') this.end(m, 'cancelled');
    else if (m.state === 'active') m.cancelRequested = true;
    else return;
    this.cancelBelow(m);
  }

  /**
   * `m` ends in `state`; its pending parent counts it, or dies of it (a child dead or cancelled, unless the
   * parent ignores failures), cancelling its other unfinished children, and so on up the tree.
   */
  private end(m: ModelMessage, state: 'completed' | 'dead' | 'cancelled'): void {
    this.finish(m, state);
    let child = m;
    while (child.parent !== null) {
      const parent = this.messages[child.parent] as ModelMessage;
      if (parent.state !== 'pending') return;
      if (child.state !== 'completed' && !parent.ignoreFailures) {
        parent.error = 'child';
        this.finish(parent, 'dead');
        this.cancelBelow(parent);
        child = parent;
        continue;
      }
      if (--parent.childrenLeft === 0) parent.state = 'queued';
      return;
    }
  }

  private cancelBelow(parent: ModelMessage): void {
    for (const m of this.messages) {
      if (m.parent !== parent.seq) continue;
      if (m.state === 'queued' || m.state === 'pending') {
        this.finish(m, 'cancelled');
        this.cancelBelow(m);
      } else if (m.state === 'active') m.cancelRequested = true;
    }
  }
}

type Command =
  | { kind: 'send'; priority: number; key: string | null; delay: number; timeout: number | null }
  | { kind: 'flow'; children: number[]; ignoreFailures: boolean }
  | { kind: 'receive'; max: number; timeout: number | null }
  | { kind: 'ack'; pick: number }
  | { kind: 'extend'; pick: number; lease: number }
  | { kind: 'nack'; pick: number }
  | { kind: 'cancel'; pick: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'keyConcurrency'; n: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant('send' as const),
    priority: fc.integer({ min: -1, max: 1 }),
    key: fc.option(fc.constantFrom('a', 'b'), { nil: null }),
    delay: fc.constantFrom(0, 0, 300, 2000),
    timeout: fc.constantFrom(null, null, 700, 2500),
  }),
  fc.record({
    kind: fc.constant('receive' as const),
    max: fc.integer({ min: 1, max: 3 }),
    timeout: fc.constantFrom(null, null, null, 600),
  }),
  // A parent with 1-3 children, each with 0-2 children of its own.
  fc.record({
    kind: fc.constant('flow' as const),
    children: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 3 }),
    ignoreFailures: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('ack' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), pick: fc.nat(), lease: fc.constantFrom(800, 3000) }),
  fc.record({ kind: fc.constant('nack' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(100, 400, 1000, 1500) }),
  fc.record({ kind: fc.constant('keyConcurrency' as const), n: fc.integer({ min: 1, max: 3 }) }),
);

/** A scenario's key limits at its start: mostly the defaults, often a keyConcurrency, a keyRateLimit or both. */
const keyLimits: fc.Arbitrary<KeyLimits> = fc.record({
  keyConcurrency: fc.constantFrom(1, 1, 2, 3),
  keyRateLimit: fc.constantFrom(null, null, { max: 1, per: 700 }, { max: 2, per: 1500 }),
});

/** Where the model runs: a Ferry on some store (or over HTTP) whose engine reads `clock`. */
export interface ModelHome {
  name: string;
  /**
   * A Ferry whose engine uses `clock` and sweeps no more often than hourly (a scenario moves time by at most
   * 90 s, so no sweep runs: expiry is settled by claims and cancels, as the model does). Each scenario gets
   * its own, on a store that may hold earlier scenarios' queues.
   */
  open(clock: ManualClock): Promise<{ ferry: Ferry; close(): Promise<void> }>;
}

/** Engine options every home passes (see `ModelHome.open`). */
export const MODEL_ENGINE = { sweepInterval: 3_600_000 } as const;

let scenarios = 0;

/** A scenario: the queue's timeout (null: none), its key limits and the commands. */
export interface Scenario {
  queueTimeout: number | null;
  limits: KeyLimits;
  commands: Command[];
}

export async function runScenario(home: ModelHome, { queueTimeout, limits, commands }: Scenario): Promise<void> {
  const clock = new ManualClock(0);
  const { ferry, close } = await home.open(clock);
  // A queue of its own, so homes that keep their database between scenarios start each one empty.
  const queue = `model-${process.pid}-${++scenarios}`;
  const deadLetter = `${queue}-dead`;
  await ferry.configure(queue, {
    maxAttempts: MAX_ATTEMPTS,
    lease: LEASE,
    backoff: { type: 'fixed', delay: BACKOFF },
    timeout: queueTimeout,
    deadLetter,
    keyConcurrency: limits.keyConcurrency,
    keyRateLimit: limits.keyRateLimit,
  });
  const model = new Model({ ...limits }, queueTimeout);
  const ids: string[] = [];
  // Deliveries handed out, with the model receipt they correspond to (stale ones included).
  const deliveries: { delivery: Delivery; index: number; receipt: number }[] = [];
  try {
    for (const c of commands) {
      model.now = clock.now();
      switch (c.kind) {
        case 'send': {
          const sent = await ferry.send(
            queue,
            { n: ids.length },
            {
              priority: c.priority,
              delay: c.delay,
              ...(c.key === null ? {} : { key: c.key }),
              ...(c.timeout === null ? {} : { timeout: c.timeout }),
            },
          );
          model.messages.push(
            fresh(ids.length, model.now + c.delay, {
              priority: c.priority,
              key: c.key,
              blocked: model.blockedAtSend(c.key),
              timeout: c.timeout,
            }),
          );
          ids.push(sent.id);
          break;
        }
        case 'flow': {
          const policy = c.ignoreFailures ? { options: { children: 'ignore-failures' as const } } : {};
          const sent = await ferry.sendFlow({
            queue,
            payload: 'parent',
            ...policy,
            children: c.children.map((n) => ({
              queue,
              payload: 'child',
              ...(n > 0
                ? { ...policy, children: Array.from({ length: n }, () => ({ queue, payload: 'grandchild' })) }
                : {}),
            })),
          });
          // Pre-order, as the tree is inserted: the parent, then each child followed by its children.
          const root = ids.length;
          model.messages.push(
            fresh(root, model.now, {
              state: 'pending',
              childrenLeft: c.children.length,
              ignoreFailures: c.ignoreFailures,
            }),
          );
          ids.push(sent.id);
          c.children.forEach((n, i) => {
            const child = sent.children?.[i];
            assert.ok(child, 'the answer has every child');
            const seq = ids.length;
            model.messages.push(
              fresh(seq, model.now, {
                parent: root,
                ...(n > 0 ? { state: 'pending', childrenLeft: n, ignoreFailures: c.ignoreFailures } : {}),
              }),
            );
            ids.push(child.id);
            for (const grandchild of child.children ?? []) {
              model.messages.push(fresh(ids.length, model.now, { parent: seq }));
              ids.push(grandchild.id);
            }
          });
          break;
        }
        case 'receive': {
          const got = await ferry.receive(queue, { max: c.max, ...(c.timeout === null ? {} : { timeout: c.timeout }) });
          const expected = model.receive(c.max, c.timeout);
          assert.deepEqual(
            got.map((d) => d.id),
            expected.map((m) => ids[m.seq]),
            'receive hands out what the model delivers, in order',
          );
          for (const [i, d] of got.entries()) {
            const m = expected[i] as ModelMessage;
            assert.equal(d.attempt, m.attempts);
            assert.equal(d.deadline === null ? null : Date.parse(d.deadline), m.deadline, 'the attempt’s deadline');
            assert.equal(Date.parse(d.leaseUntil), m.leaseUntil, 'the lease, capped by the deadline');
            deliveries.push({ delivery: d, index: m.seq, receipt: m.receipt });
          }
          break;
        }
        case 'ack':
        case 'nack': {
          if (deliveries.length === 0) break;
          // Mostly one of the latest deliveries (likely live), sometimes any older one (likely stale).
          const back = c.pick % 4 === 0 ? c.pick % deliveries.length : c.pick % Math.min(3, deliveries.length);
          const { delivery, index, receipt } = deliveries[deliveries.length - 1 - back]!;
          const m = model.messages[index] as ModelMessage;
          const valid = model.valid(m, receipt);
          const call = c.kind === 'ack' ? ferry.ack(delivery) : ferry.nack(delivery, { error: 'no' });
          if (valid) {
            await call;
            if (c.kind === 'ack') model.ack(m);
            else model.nack(m);
          } else {
            await assert.rejects(call, LeaseLostError, 'a stale receipt is refused');
          }
          break;
        }
        case 'extend': {
          if (deliveries.length === 0) break;
          const { delivery, index, receipt } =
            deliveries[deliveries.length - 1 - (c.pick % Math.min(3, deliveries.length))]!;
          const m = model.messages[index] as ModelMessage;
          // Like ack, extend needs a live lease that no cancel is pending on.
          if (model.valid(m, receipt) && !m.cancelRequested) {
            const { leaseUntil } = await ferry.extend(delivery, c.lease);
            assert.equal(Date.parse(leaseUntil), model.extend(m, c.lease), 'extend is capped by the deadline');
          } else {
            await assert.rejects(ferry.extend(delivery, c.lease), LeaseLostError, 'a stale or cancelled lease');
          }
          break;
        }
        case 'cancel': {
          if (ids.length === 0) break;
          const index = c.pick % ids.length;
          // Like the store: a cancel of a message whose lease ran out first settles every expired lease of
          // its queue, as a claim would (seed 677792118: a flow grandchild's expired lease, settled so,
          // ended its parent and the root dead).
          const target = model.messages[index] as ModelMessage;
          if (target.state === 'active' && target.leaseUntil <= model.now) model.expire();
          await ferry.cancel(ids[index] as string);
          model.cancel(model.messages[index] as ModelMessage);
          break;
        }
        case 'advance':
          await clock.advance(c.ms);
          break;
        case 'keyConcurrency':
          await ferry.configure(queue, { keyConcurrency: c.n });
          model.setKeyConcurrency(c.n);
          break;
      }
      // Every message agrees with the model (expiry is settled lazily by claims and sweeps, so compare
      // active-but-expired messages only after the model settles them the same way).
      model.now = clock.now();
      for (const [i, id] of ids.entries()) {
        const m = model.messages[i] as ModelMessage;
        const info = await ferry.get(id);
        assert.ok(info, `message ${i} exists`);
        const expiredActive = m.state === 'active' && m.leaseUntil <= model.now;
        if (!expiredActive) {
          assert.equal(info.state, model.publicState(m), `message ${i} state`);
          assert.equal(info.attempts, m.attempts, `message ${i} attempts`);
          if (m.error === null) assert.equal(info.error, null, `message ${i} error`);
          else assert.equal(info.error?.name, FAILURE_NAMES[m.error], `message ${i} error`);
        }
      }
      // Each death so far has its copy in the dead-letter queue, made with it.
      const copies = new Map<string, number>();
      const page = await ferry.list(deadLetter, { limit: 1000 });
      for (const copy of page.messages) {
        const from = copy.headers['ferry-dead-letter-from'] as string;
        copies.set(from, (copies.get(from) ?? 0) + 1);
      }
      for (const [i, id] of ids.entries()) {
        const m = model.messages[i] as ModelMessage;
        const expiredActive = m.state === 'active' && m.leaseUntil <= model.now;
        if (!expiredActive)
          assert.equal(copies.get(`${queue}/${id}`) ?? 0, m.deaths, `message ${i} dead-letter copies`);
      }
    }
  } finally {
    await close();
  }
}

/** Registers the model-based test on `home` with `numRuns` random scenarios. */
export function modelTest(home: ModelHome, numRuns: number): void {
  test(`${home.name}: the engine agrees with the reference model on random command sequences`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          queueTimeout: fc.constantFrom(null, null, 1800),
          limits: keyLimits,
          commands: fc.array(command, { minLength: 5, maxLength: 60 }),
        }),
        (scenario) => runScenario(home, scenario),
      ),
      { numRuns },
    );
  });
}
