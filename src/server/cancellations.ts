/**
 * Cancel requests for active messages, as seen by this server, so that remote workers learn of them at once.
 * An active message that is cancelled only gets a flag in the store; the engine tells its own in-process
 * workers, but a worker on the far side of HTTP would otherwise learn it only when its next lease renewal
 * is refused. Workers long-poll `POST /v1/cancellations` with the ids they hold; a DELETE answered `active`
 * wakes them. Cancels made elsewhere (another process on the same store) still reach them by renewal.
 *
 * A worker's set of ids changes with every message it takes. Its poll names a `watcher` (a random id of the
 * client's), and a new poll of the same watcher answers the one it replaces, empty: the client never has to
 * abort a request, which would cost it its connection (an HTTP/1.1 request cut mid-way takes its socket along).
 */

/** Flags are kept this long: the longest lease. */
const KEEP_MS = 12 * 3_600_000;
const MAX_FLAGS = 100_000;

/** Whether the caller may learn about a message of this queue (its token may be limited to some queues). */
export type QueueFilter = (queue: string) => boolean;

interface Flag {
  queue: string;
  at: number;
}

interface Waiter {
  ids: ReadonlySet<string>;
  allowed: QueueFilter;
  wake: (ids: string[]) => void;
}

export class Cancellations {
  readonly #flags = new Map<string, Flag>();
  readonly #waiters = new Set<Waiter>();
  /** The current poll of each watcher that named itself. */
  readonly #byWatcher = new Map<string, Waiter>();

  flag(id: string, queue: string, now = Date.now()): void {
    if (this.#flags.size >= MAX_FLAGS) {
      for (const [key, { at }] of this.#flags) {
        if (now - at < KEEP_MS && this.#flags.size < MAX_FLAGS) break;
        this.#flags.delete(key);
      }
    }
    this.#flags.delete(id);
    this.#flags.set(id, { queue, at: now });
    for (const waiter of this.#waiters) if (waiter.ids.has(id) && waiter.allowed(queue)) waiter.wake([id]);
  }

  #flagged(ids: readonly string[], allowed: QueueFilter, now: number): string[] {
    return ids.filter((id) => {
      const flag = this.#flags.get(id);
      return flag !== undefined && now - flag.at < KEEP_MS && allowed(flag.queue);
    });
  }

  /**
   * The ids among `ids` with a cancel request, waiting up to `ms` for one when there is none yet. Ids of
   * queues `allowed` refuses are never answered, as if they had no cancel request: a token limited to some
   * queues learns nothing about the others, not even that an id exists. A poll naming a `watcher` first
   * answers that watcher's waiting poll, if any, with no ids.
   */
  wait(
    ids: readonly string[],
    ms: number,
    signal: AbortSignal,
    allowed: QueueFilter = () => true,
    watcher?: string,
  ): Promise<string[]> {
    if (watcher !== undefined) this.#byWatcher.get(watcher)?.wake([]);
    const now = Date.now();
    const found = this.#flagged(ids, allowed, now);
    if (found.length > 0 || ms <= 0 || signal.aborted) return Promise.resolve(found);
    return new Promise((resolve) => {
      const waiter: Waiter = { ids: new Set(ids), allowed, wake: (hit) => done(hit) };
      const done = (hit: string[]): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#waiters.delete(waiter);
        if (watcher !== undefined && this.#byWatcher.get(watcher) === waiter) this.#byWatcher.delete(watcher);
        resolve(hit);
      };
      const onAbort = (): void => done([]);
      const timer = setTimeout(() => done([]), ms);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
      if (watcher !== undefined) this.#byWatcher.set(watcher, waiter);
    });
  }
}
