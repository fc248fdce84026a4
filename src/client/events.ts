/**
 * `events()` over HTTP: an SSE stream read with fetch, reconnecting after a drop with `Last-Event-ID` set to
 * the last seq seen, so the server replays from its durable log with no gap and no duplicate.
 */
import { FerryError } from '../core/errors.ts';
import type { EventStream, EventsOptions, FerryEvent } from '../core/types.ts';
import { type Transport, toError } from './http.ts';
import { readSse, type SseMessage } from './sse.ts';

/** Errors that another attempt cannot fix. */
const FATAL = new Set(['invalid_request', 'unauthorized', 'forbidden', 'not_found']);

export class HttpEventStream implements EventStream {
  readonly #transport: Transport;
  readonly #options: EventsOptions;
  readonly #stop = new AbortController();
  #started = false;
  #since: Promise<number>;
  #sinceKnown: (seq: number) => void = () => {};
  #sinceFailed: (error: unknown) => void = () => {};
  /** The first connection, opened by `since()` before the stream is iterated; the iteration reads it on. */
  #early: Promise<AsyncGenerator<SseMessage>> | undefined;

  constructor(transport: Transport, options: EventsOptions, closed: AbortSignal) {
    this.#transport = transport;
    this.#options = options;
    this.#since =
      options.after !== undefined
        ? Promise.resolve(options.after)
        : new Promise<number>((resolve, reject) => {
            this.#sinceKnown = resolve;
            this.#sinceFailed = reject;
          });
    const signals = [closed, ...(options.signal ? [options.signal] : [])];
    for (const s of signals) {
      if (s.aborted) this.#stop.abort();
      else s.addEventListener('abort', () => this.close(), { once: true });
    }
  }

  /**
   * With no `after`, the server's first `id:` line. Asked before the stream is iterated, it opens the
   * connection now, as the embedded stream reads the newest seq when it opens, so both resolve without a
   * reader; the iteration then goes on from that same connection and misses nothing.
   */
  since(): Promise<number> {
    if (this.#options.after === undefined && !this.#started && this.#early === undefined) {
      const early = this.#connect(undefined).then(async (messages) => {
        // The server opens with an id-only block; it is handed to the iteration again below, which tracks it too.
        const first = await messages.next();
        if (!first.done && first.value.id !== undefined && /^\d+$/.test(first.value.id)) {
          this.#sinceKnown(Number(first.value.id));
        }
        return replay(first, messages);
      });
      early.catch((error: unknown) => this.#sinceFailed(error));
      this.#early = early;
    }
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

  /** Opens the SSE request, resuming after `after` when known; rejects with the server's error. */
  async #connect(after: number | undefined): Promise<AsyncGenerator<SseMessage>> {
    const { queue, types } = this.#options;
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (after !== undefined) headers['last-event-id'] = String(after);
    const response = await this.#transport.raw('GET', '/v1/events', {
      query: { queue, types: types?.join(',') },
      headers,
      signal: this.#stop.signal,
    });
    if (!response.ok || !response.body) throw await toError(response);
    return readSse(response.body);
  }

  async *#loop(): AsyncGenerator<FerryEvent> {
    const signal = this.#stop.signal;
    let after = this.#options.after;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const early = this.#early;
        this.#early = undefined;
        const messages = await (early ?? this.#connect(after));
        for await (const message of messages) {
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

/** `first`, already read from `rest`, then the rest. */
async function* replay(
  first: IteratorResult<SseMessage>,
  rest: AsyncGenerator<SseMessage>,
): AsyncGenerator<SseMessage> {
  if (first.done) return;
  yield first.value;
  yield* rest;
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
