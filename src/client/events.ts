/**
 * `events()` over HTTP: an SSE stream read with fetch, reconnecting after a drop with `Last-Event-ID` set to
 * the last seq seen, so the server replays from its durable log with no gap and no duplicate.
 */
import { FerryError } from '../core/errors.ts';
import type { EventStream, EventsOptions, FerryEvent } from '../core/types.ts';
import { type Transport, toError } from './http.ts';
import { readSse } from './sse.ts';

/** Errors that another attempt cannot fix. */
const FATAL = new Set(['invalid_request', 'unauthorized', 'forbidden', 'not_found']);

export class HttpEventStream implements EventStream {
  readonly #transport: Transport;
  readonly #options: EventsOptions;
  readonly #stop = new AbortController();
  #started = false;
  #since: Promise<number>;
  #sinceKnown: (seq: number) => void = () => {};

  constructor(transport: Transport, options: EventsOptions, closed: AbortSignal) {
    this.#transport = transport;
    this.#options = options;
    this.#since =
      options.after !== undefined
        ? Promise.resolve(options.after)
        : new Promise<number>((resolve) => {
            this.#sinceKnown = resolve;
          });
    const signals = [closed, ...(options.signal ? [options.signal] : [])];
    for (const s of signals) {
      if (s.aborted) this.#stop.abort();
      else s.addEventListener('abort', () => this.close(), { once: true });
    }
  }

  /** With no `after`, known once the stream is being read: the server's first `id:` line. */
  since(): Promise<number> {
    return this.#since;
  }

  close(): void {
    this.#stop.abort();
  }

  [Symbol.asyncIterator](): AsyncIterator<FerryEvent> {
    if (this.#started) throw new FerryError('invalid_request', 'an event stream can be iterated only once');
    this.#started = true;
    return this.#follow();
  }

  async *#follow(): AsyncGenerator<FerryEvent> {
    try {
      yield* this.#loop();
    } finally {
      // The consumer stopped (break, return, close): end the request too.
      this.#stop.abort();
    }
  }

  async *#loop(): AsyncGenerator<FerryEvent> {
    const { queue, types } = this.#options;
    const signal = this.#stop.signal;
    let after = this.#options.after;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        if (after !== undefined) headers['last-event-id'] = String(after);
        const response = await this.#transport.raw('GET', '/v1/events', {
          query: { queue, types: types?.join(',') },
          headers,
          signal,
        });
        if (!response.ok || !response.body) throw await toError(response);
        for await (const message of readSse(response.body)) {
          if (message.id !== undefined && /^\d+$/.test(message.id)) {
            const seq = Number(message.id);
            if (after === undefined) this.#sinceKnown(seq);
            after = Math.max(after ?? 0, seq);
          }
          if (!message.data) continue;
          const event = JSON.parse(message.data) as FerryEvent;
          after = event.seq;
          failures = 0;
          yield event;
          if (signal.aborted) return;
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof FerryError && FATAL.has(error.code)) throw error;
      }
      // The stream ended or failed: the server restarted, a proxy cut it. Resume after a short pause.
      failures++;
      await pause(Math.min(5000, 100 * 2 ** Math.min(failures, 6)), signal);
    }
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
