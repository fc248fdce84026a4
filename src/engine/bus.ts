/**
 * In-process routing of committed events: wakes consumers waiting on a queue, settles result waiters, feeds
 * event streams, and tells running handlers their message was cancelled. A wakeup only shortens a wait:
 * every waiter also has a timer, so a missed wakeup costs latency, never correctness.
 */
import { reportListenerError } from '../core/report.ts';
import type { FerryEvent } from '../core/types.ts';
import type { CommittedEvent } from '../store/store.ts';
import type { Clock, TimerHandle } from './clock.ts';

type Listener = (event: FerryEvent) => void;

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
  private readonly queueWaiters = new Map<string, Set<() => void>>();
  private readonly idWaiters = new Map<string, Set<(event: CommittedEvent) => void>>();
  private readonly cancelWatchers = new Map<string, () => void>();
  private readonly listeners = new Set<Listener>();
  private readonly dueTimers = new Map<string, { at: number; handle: TimerHandle }>();
  /** Queues with a claim in flight (see `watch`): how many, and the wakes seen meanwhile. */
  private readonly claiming = new Map<string, { claims: number; wakes: number }>();

  constructor(private readonly clock: Clock) {}

  /** Committed events in seq order: wakes waiters (unless `woken` says that was done), then every listener. */
  publish(events: FerryEvent[], woken = false): void {
    if (!woken) this.wakeFor(events);
    if (this.listeners.size === 0) return;
    for (const event of events) {
      for (const listener of this.listeners) notify(listener, event);
    }
  }

  /** Wakes the consumers and result waiters that `events` concern; in any order, any number of times. */
  wakeFor(events: CommittedEvent[]): void {
    const now = this.clock.now();
    let lastQueue: string | undefined;
    for (const event of events) {
      const { type, queue } = event;
      // `waiting`: a flow's parent whose children all finished is deliverable now (or at its runAt).
      if (type === 'sent' || type === 'retrying' || type === 'waiting') {
        const runAt = event.runAt ?? now;
        if (runAt > now) this.wakeAt(queue, runAt);
        else if (queue !== lastQueue) {
          this.wake(queue);
          lastQueue = queue;
        }
      } else if (type === 'completed' || type === 'dead' || type === 'cancelled') {
        // A finished message may unblock the next of its key or free a concurrency slot.
        if (queue !== lastQueue && (this.queueWaiters.has(queue) || this.claiming.has(queue))) {
          this.wake(queue);
          lastQueue = queue;
        }
        const waiters = this.idWaiters.get(event.id);
        if (waiters) for (const waiter of waiters) notify(waiter, event);
      }
    }
  }

  /** Wakes the consumers waiting on `queues` (null: on every queue). */
  wakeQueues(queues: readonly string[] | null): void {
    for (const queue of queues ?? new Set([...this.queueWaiters.keys(), ...this.claiming.keys()])) this.wake(queue);
  }

  /** Wakes everyone waiting for messages on `queue`. */
  wake(queue: string): void {
    const claiming = this.claiming.get(queue);
    if (claiming) claiming.wakes++;
    const waiters = this.queueWaiters.get(queue);
    if (!waiters) return;
    this.queueWaiters.delete(queue);
    for (const wake of waiters) wake();
  }

  private wakeAt(queue: string, at: number): void {
    const current = this.dueTimers.get(queue);
    if (current && current.at <= at) return;
    if (current) this.clock.clearTimeout(current.handle);
    const handle = this.clock.setTimeout(
      () => {
        this.dueTimers.delete(queue);
        this.wake(queue);
      },
      // Node's timers hold at most 2^31 - 1 ms (~24.8 days); a later wake comes from a poll before then.
      Math.min(at - this.clock.now() + 1, 2 ** 31 - 1),
    );
    if (typeof (handle as { unref?: () => void }).unref === 'function') (handle as { unref: () => void }).unref();
    this.dueTimers.set(queue, { at, handle });
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

  /** Resolves when `queue` may have a deliverable message, after `ms` at the latest, or when `signal` aborts. */
  waitForQueue(queue: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.queueWaiters.get(queue);
      if (!waiters) {
        waiters = new Set();
        this.queueWaiters.set(queue, waiters);
      }
      const done = () => {
        this.clock.clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        const set = this.queueWaiters.get(queue);
        if (set) {
          set.delete(done);
          if (set.size === 0) this.queueWaiters.delete(queue);
        }
        resolve();
      };
      const timer = this.clock.setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      waiters.add(done);
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
    for (const queue of [...this.queueWaiters.keys()]) this.wake(queue);
    for (const { handle } of this.dueTimers.values()) this.clock.clearTimeout(handle);
    this.dueTimers.clear();
  }
}
