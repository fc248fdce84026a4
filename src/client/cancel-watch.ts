/**
 * Tells a remote worker's jobs at once when their message is cancelled: one long poll of
 * `POST /v1/cancellations` per client carries every id in hand, and a new one goes out when that set grows.
 *
 * The new poll names the client's `watcher`, so the server answers the poll it replaces (empty) instead of the
 * client aborting it: an HTTP/1.1 request aborted mid-way takes its connection along, and a worker whose
 * messages arrive one at a time would otherwise open a connection per message. Ids taken in hand together
 * (one receive's batch) go out in one poll. A server that does not know `watcher` (400 naming it) gets the
 * old way for a while (the poll in flight is aborted and reissued), then is asked again: it may have been
 * upgraded.
 */
import { InvalidRequestError } from '../core/errors.ts';
import type { Transport } from './http.ts';

const POLL_MS = 25_000;
/** How long a server that refused `watcher` is polled the old way before it is asked again. */
const UNNAMED_MS = 10 * 60_000;

/** 128 random bits as hex: `crypto.getRandomValues` exists in browsers' insecure contexts too. */
function watcherId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class CancelWatch {
  readonly #http: Transport;
  readonly #closed: AbortSignal;
  readonly #watched = new Map<string, () => void>();
  readonly #watcher = watcherId();
  /** Until when polls go without `watcher` (a server refused it), replaced polls being aborted instead. */
  #unnamedUntil = 0;
  /** Bumped by every poll sent: only the newest one's end sends the next. */
  #generation = 0;
  #poll: AbortController | null = null;
  #scheduled = false;
  #failures = 0;

  constructor(http: Transport, closed: AbortSignal) {
    this.#http = http;
    this.#closed = closed;
  }

  /** Calls `abort` if message `id` is cancelled; returns the unsubscribe. */
  watch(id: string, abort: () => void): () => void {
    this.#watched.set(id, abort);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(() => {
        this.#scheduled = false;
        void this.#send();
      }, 0);
    }
    return () => {
      if (this.#watched.get(id) === abort) this.#watched.delete(id);
    };
  }

  /** Sends a poll for every id in hand, replacing the one in flight; the newest poll's end sends the next. */
  async #send(): Promise<void> {
    if (this.#watched.size === 0 || this.#closed.aborted) return;
    const generation = ++this.#generation;
    const named = Date.now() >= this.#unnamedUntil;
    if (!named) this.#poll?.abort();
    const poll = new AbortController();
    this.#poll = poll;
    const sentAt = Date.now();
    try {
      const answer = await this.#http.request<{ ids: string[] }>('POST', '/v1/cancellations', {
        body: { ids: [...this.#watched.keys()], wait: POLL_MS, ...(named ? { watcher: this.#watcher } : {}) },
        signal: AbortSignal.any([poll.signal, this.#closed]),
      });
      this.#failures = 0;
      // A replaced poll may still answer cancels that came in before it was replaced.
      for (const id of answer.body.ids) {
        const abort = this.#watched.get(id);
        this.#watched.delete(id);
        abort?.();
      }
      // The newest poll answered at once with nothing (a draining server, or a poll of ours that overtook
      // it): poll again, but not in a tight loop.
      if (answer.body.ids.length === 0 && Date.now() - sentAt < 50 && generation === this.#generation) {
        await this.#pause(100);
      }
    } catch (error) {
      if (poll.signal.aborted || this.#closed.aborted || generation !== this.#generation) return;
      if (named && error instanceof InvalidRequestError && error.message.includes('watcher')) {
        this.#unnamedUntil = Date.now() + UNNAMED_MS;
      } else {
        // The server is away: lease renewal still catches cancels meanwhile.
        this.#failures++;
        await this.#pause(Math.min(5000, 200 * 2 ** this.#failures));
        if (this.#closed.aborted) return;
      }
    }
    if (generation === this.#generation) void this.#send();
  }

  /** Waits `ms`, or less if the client closes meanwhile. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#closed.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#closed.addEventListener('abort', done, { once: true });
    });
  }
}
