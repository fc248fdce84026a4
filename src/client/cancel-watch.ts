/**
 * Tells a remote worker's jobs at once when their message is cancelled: one long poll of
 * `POST /v1/cancellations` per client carries every id in hand, and is reissued when that set changes.
 */
import type { Transport } from './http.ts';

const POLL_MS = 25_000;

export class CancelWatch {
  readonly #http: Transport;
  readonly #closed: AbortSignal;
  readonly #watched = new Map<string, () => void>();
  #poll: AbortController | null = null;
  #running = false;

  constructor(http: Transport, closed: AbortSignal) {
    this.#http = http;
    this.#closed = closed;
  }

  /** Calls `abort` if message `id` is cancelled; returns the unsubscribe. */
  watch(id: string, abort: () => void): () => void {
    this.#watched.set(id, abort);
    this.#restart();
    return () => {
      if (this.#watched.get(id) === abort) this.#watched.delete(id);
    };
  }

  #restart(): void {
    this.#poll?.abort();
    if (!this.#running) {
      this.#running = true;
      void this.#loop().finally(() => {
        this.#running = false;
      });
    }
  }

  async #loop(): Promise<void> {
    let failures = 0;
    while (this.#watched.size > 0 && !this.#closed.aborted) {
      const poll = new AbortController();
      this.#poll = poll;
      try {
        const answer = await this.#http.request<{ ids: string[] }>('POST', '/v1/cancellations', {
          body: { ids: [...this.#watched.keys()], wait: POLL_MS },
          signal: AbortSignal.any([poll.signal, this.#closed]),
        });
        failures = 0;
        for (const id of answer.body.ids) {
          const abort = this.#watched.get(id);
          this.#watched.delete(id);
          abort?.();
        }
      } catch {
        // Reissued with a new set, or the server is away: lease renewal still catches cancels meanwhile.
        if (!poll.signal.aborted) {
          failures++;
          await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 200 * 2 ** failures)));
        }
      }
    }
  }
}
