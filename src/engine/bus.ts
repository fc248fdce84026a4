/**
 * In-process routing of committed events: wakes consumers waiting on a queue, settles result waiters, feeds
 * event streams, and tells running handlers their message was cancelled. A wakeup only shortens a wait:
 * every waiter also has a timer, so a missed wakeup costs latency, never correctness.
 */
import { reportListenerError } from '../core/report.ts';
import type { FerryEvent } from '../core/types.ts';
import type { CommittedEvent, Woken } from '../store/store.ts';
import type { Clock, TimerHandle } from './clock.ts';

type Listener = (event: FerryEvent) => void;

/** Due times of delayed messages a queue's timer list keeps (see `Bus.due`). */
const MAX_DUE = 256;

/**
 * Calls one listener. Its throw is reported, never passed on: it must not stop delivery to the listeners
 * after it, nor reach the store that is publishing (from a timer or after a commit, where it would crash
 * the process), on any store.
 */
function notify<E>(listener: (event: E) => void, event: E): void {
  try {
    listener(event);
  } catch (error) {
    reportListenerError(error);
  }
}

export class Bus {
  /** Consumers waiting for messages, per queue, oldest first, each with how many messages it asked for. */
  private readonly queueWaiters = new Map<string, Set<{ want: number; wake: (counted: boolean) => void }>>();
  private readonly idWaiters = new Map<string, Set<(event: CommittedEvent) => void>>();
  private readonly cancelWatchers = new Map<string, () => void>();
  private readonly listeners = new Set<Listener>();
  /**
   * Per queue, when its delayed messages come due (distinct times, earliest first, with how many at each; at
   * most MAX_DUE kept, later ones are found by the consumers' polls) and the timer armed for the first.
   */
  private readonly due = new Map<string, { times: [at: number, count: number][]; handle?: TimerHandle }>();
  /** Queues with a claim in flight (see `watch`): how many, and the wakes seen meanwhile. */
  private readonly claiming = new Map<string, { claims: number; wakes: number }>();
  /**
   * Messages whose attempt a settle in flight ends and whose ending frees no other message (see
   * {@link settlesQuietly}), counted in case one is settled twice at once.
   */
  private readonly quiet = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  /**
   * Committed events in seq order: wakes waiters, then every listener. `woken`: 'all' when they were passed to
   * `wakeFor` at commit already; 'consumers' when the store woke consumers for them another way (another
   * process's hint), so only result waiters and due timers are left.
   */
  publish(events: FerryEvent[], woken?: Woken): void {
    if (woken !== 'all') this.wakeFor(events, woken !== 'consumers');
    if (this.listeners.size === 0) return;
    for (const event of events) {
      for (const listener of this.listeners) notify(listener, event);
    }
  }

  /**
   * Wakes the consumers and result waiters that `events` concern; in any order, any number of times. A queue's
   * consumers are woken for as many messages as became deliverable there (one per message sent, due or
   * retried now), and one more when an attempt ended (a finished message may free its key's next message,
   * it or a retry for later a concurrency slot), unless the attempt was settled quietly (no key, and a queue
   * with no concurrency limit: the wake would cost a claim that finds nothing, here or, when no consumer
   * waits here, in another process): a claim that comes back full passes that wake on (see Engine.claim).
   * Waking every consumer for every commit made all but one of them claim nothing, a statement each. Answers
   * the queues whose new work the consumers waiting here did not cover: other processes' consumers should
   * hear of those.
   *
   * `consumers` false: another process's events, whose consumers were told through that process's hint of
   * what was deliverable at its commit. Left to wake here: result waiters, and messages that were delayed at
   * that commit (a timer if not yet due, a wake if due by now).
   */
  wakeFor(events: (CommittedEvent & { at?: string })[], consumers = true): string[] {
    const now = this.clock.now();
    /** Per queue: messages deliverable now, and whether an attempt ended. */
    const touched = new Map<string, { ready: number; ended: boolean }>();
    const entry = (queue: string) => {
      let e = touched.get(queue);
      if (!e) {
        e = { ready: 0, ended: false };
        touched.set(queue, e);
      }
      return e;
    };
    for (const event of events) {
      const { type, queue } = event;
      // `waiting`: a flow's parent whose children all finished is deliverable now (or at its runAt).
      if (type === 'sent' || type === 'retrying' || type === 'waiting') {
        const runAt = event.runAt;
        if (!consumers && !(runAt !== undefined && event.at !== undefined && runAt > Date.parse(event.at))) continue;
        if (runAt === undefined || runAt <= now) entry(queue).ready++;
        else {
          this.wakeAt(queue, runAt);
          if (type === 'retrying' && consumers && !this.quiet.has(event.id)) entry(queue).ended = true;
        }
      } else if (type === 'completed' || type === 'dead' || type === 'cancelled') {
        if (consumers && !this.quiet.has(event.id)) entry(queue).ended = true;
        const waiters = this.idWaiters.get(event.id);
        if (waiters) for (const waiter of waiters) notify(waiter, event);
      }
    }
    const uncovered: string[] = [];
    for (const [queue, { ready, ended }] of touched) {
      const readyCovered = ready === 0 || this.wake(queue, ready);
      const endedCovered = !ended || this.wake(queue);
      if (!readyCovered || !endedCovered) uncovered.push(queue);
    }
    return uncovered;
  }

  /**
   * Runs `settle`, which ends an attempt of message `id` that frees no other message when it ends (the
   * message has no key, and its queue no concurrency limit): its ended event, committed meanwhile, then
   * wakes no consumer. At a trickle through two stores on one schema (`npx tsx bench/pg-trickle.ts`,
   * alternated twice with the commit before), claims per message 2.58-2.76 -> 2.01-2.04; under load the
   * workers' own steps carry the acks and the difference is within the noise (`bench/scale.ts --phases
   * mixed`, alternated twice).
   */
  async settlesQuietly<T>(id: string, settle: () => Promise<T>): Promise<T> {
    this.quiet.set(id, (this.quiet.get(id) ?? 0) + 1);
    try {
      return await settle();
    } finally {
      const left = (this.quiet.get(id) ?? 1) - 1;
      if (left > 0) this.quiet.set(id, left);
      else this.quiet.delete(id);
    }
  }

  /** Wakes a consumer waiting on each of `queues` (null: on every queue): another process changed them. */
  wakeQueues(queues: readonly string[] | null): void {
    for (const queue of queues ?? new Set([...this.queueWaiters.keys(), ...this.claiming.keys()])) this.wake(queue);
  }

  /**
   * Wakes the consumers waiting on `queue`, oldest first, until those woken asked for `count` messages in all
   * (one consumer at least), and tells the claims of `queue` in flight. Without a count (another process's
   * hint, a resumed queue, a finished message) one consumer looks; if its claim comes back full it wakes the
   * next (see Engine.claim), so a backlog still reaches every consumer. Answers whether the consumers woken
   * asked for `count` (one, without a count).
   */
  wake(queue: string, count?: number): boolean {
    const claiming = this.claiming.get(queue);
    if (claiming) claiming.wakes++;
    const waiters = this.queueWaiters.get(queue);
    let left = count ?? 1;
    if (!waiters) return left <= 0;
    for (const waiter of waiters) {
      if (left <= 0) break;
      left -= waiter.want;
      waiter.wake(count !== undefined);
    }
    return left <= 0;
  }

  private wakeAt(queue: string, at: number): void {
    let entry = this.due.get(queue);
    if (!entry) {
      entry = { times: [] };
      this.due.set(queue, entry);
    }
    const times = entry.times;
    // Binary search for the first time not before `at`.
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((times[mid] as [number, number])[0] < at) lo = mid + 1;
      else hi = mid;
    }
    const same = times[lo];
    if (same !== undefined && same[0] === at) {
      same[1]++;
      return;
    }
    if (lo >= MAX_DUE) return;
    times.splice(lo, 0, [at, 1]);
    if (times.length > MAX_DUE) times.pop();
    if (lo === 0) this.arm(queue, entry);
  }

  /** Arms `queue`'s timer for its first due time; when it fires, wakes a consumer per message due, and re-arms. */
  private arm(queue: string, entry: { times: [number, number][]; handle?: TimerHandle }): void {
    if (entry.handle !== undefined) this.clock.clearTimeout(entry.handle);
    const first = entry.times[0];
    if (first === undefined) {
      entry.handle = undefined;
      this.due.delete(queue);
      return;
    }
    const handle = this.clock.setTimeout(
      () => {
        entry.handle = undefined;
        const now = this.clock.now();
        let due = 0;
        let n = 0;
        for (; n < entry.times.length && (entry.times[n] as [number, number])[0] <= now; n++) {
          due += (entry.times[n] as [number, number])[1];
        }
        entry.times.splice(0, n);
        this.arm(queue, entry);
        if (due > 0) this.wake(queue, due);
      },
      // Node's timers hold at most 2^31 - 1 ms (~24.8 days); a later wake comes from a poll before then.
      Math.min(Math.max(0, first[0] - this.clock.now() + 1), 2 ** 31 - 1),
    );
    if (typeof (handle as { unref?: () => void }).unref === 'function') (handle as { unref: () => void }).unref();
    entry.handle = handle;
  }

  /**
   * Called as a claim of `queue` starts; the function it answers, called once the claim is done, tells
   * whether `queue` was woken meanwhile. A claim that found nothing must not then wait: the wake it would
   * wait for may be the one it missed (a send committed in the same group commit as the claim wakes before
   * the claim's caller runs again).
   */
  watch(queue: string): () => boolean {
    let entry = this.claiming.get(queue);
    if (!entry) {
      entry = { claims: 0, wakes: 0 };
      this.claiming.set(queue, entry);
    }
    entry.claims++;
    const watched = entry;
    const start = watched.wakes;
    return () => {
      if (--watched.claims === 0 && this.claiming.get(queue) === watched) this.claiming.delete(queue);
      return watched.wakes !== start;
    };
  }

  /**
   * Resolves when `queue` may have a deliverable message for a consumer that takes up to `want` at once, after
   * `ms` at the latest, or when `signal` aborts: true when a wake that counted the new messages woke it.
   */
  waitForQueue(queue: string, ms: number, signal?: AbortSignal, want = 1): Promise<boolean> {
    return new Promise((resolve) => {
      let waiters = this.queueWaiters.get(queue);
      if (!waiters) {
        waiters = new Set();
        this.queueWaiters.set(queue, waiters);
      }
      const waiter = {
        want,
        wake: (counted: boolean) => {
          this.clock.clearTimeout(timer);
          signal?.removeEventListener('abort', stop);
          const set = this.queueWaiters.get(queue);
          if (set) {
            set.delete(waiter);
            if (set.size === 0) this.queueWaiters.delete(queue);
          }
          resolve(counted);
        },
      };
      const stop = () => waiter.wake(false);
      const timer = this.clock.setTimeout(stop, ms);
      signal?.addEventListener('abort', stop, { once: true });
      waiters.add(waiter);
    });
  }

  /** Calls `listener` with the final event (completed, dead, cancelled) of message `id`. */
  onFinal(id: string, listener: (event: CommittedEvent) => void): () => void {
    let set = this.idWaiters.get(id);
    if (!set) {
      set = new Set();
      this.idWaiters.set(id, set);
    }
    set.add(listener);
    return () => {
      const current = this.idWaiters.get(id);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.idWaiters.delete(id);
    };
  }

  /** Every event, in seq order. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `abort` when message `id` is cancelled while active. One watcher per id (one delivery holds it). */
  onCancel(id: string, abort: () => void): () => void {
    this.cancelWatchers.set(id, abort);
    return () => {
      if (this.cancelWatchers.get(id) === abort) this.cancelWatchers.delete(id);
    };
  }

  cancelRequested(id: string): void {
    this.cancelWatchers.get(id)?.();
  }

  /** Wakes every waiter (used at close). */
  wakeAll(): void {
    for (const queue of [...this.queueWaiters.keys()]) this.wake(queue, Number.POSITIVE_INFINITY);
    for (const { handle } of this.due.values()) if (handle !== undefined) this.clock.clearTimeout(handle);
    this.due.clear();
  }
}
