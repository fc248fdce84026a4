/**
 * Calls of one kind (sends, acks) sharing requests: a call goes out alone, on its own route, while fewer
 * than `slots` requests of its kind are in flight; calls made while every slot is taken go together in the
 * next request, on the joined route (`POST /v1/sends`, `POST /v1/acks`), where each item answers on its
 * own. So a lone call costs no added wait, and many concurrent callers cost one round trip per batch
 * instead of one each.
 *
 * A joined request is capped by items and by characters of JSON, so it stays far below the server's body
 * limit. Should the server refuse it whole anyway (413: its limit was set lower; 400: the joined body broke
 * a rule a lone one keeps, such as the nesting depth; 404: a server without the joined route), nothing of it
 * was stored, and each of its calls goes alone, as it would have without joining.
 */
import { context } from '@opentelemetry/api';
import { InvalidRequestError, NotFoundError, PayloadTooLargeError, UnavailableError } from '../core/errors.ts';

/** Items per joined request (the joined routes' schemas allow 1000). */
export const JOIN_MAX_ITEMS = 1000;
/** Characters of JSON per joined request: at most 3 MiB as UTF-8, a tenth of the server's default limit. */
export const JOIN_MAX_CHARS = 1024 * 1024;

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

interface Waiting<T> {
  json: string;
  alone: () => Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

export class Coalescer<T> {
  /** Requests of this kind in flight, lone or joined. */
  #inFlight = 0;
  /** False once the server answered that it has no joined route. */
  #joinable = true;
  readonly #waiting: Waiting<T>[] = [];

  /**
   * `joined` sends the items' JSON texts as one request and answers each item's outcome, in order; at most
   * `slots` requests are in flight at once, so one slow request does not hold every later call.
   */
  constructor(
    private readonly joined: (jsons: string[]) => Promise<Outcome<T>[]>,
    private readonly slots = 1,
  ) {}

  /**
   * Runs a call: alone at once, or joined to the next request. `item` is the call as the joined route takes
   * it (null: it cannot be joined, and goes alone); `alone` makes the call on its own route.
   */
  run(item: string | null, alone: () => Promise<T>): Promise<T> {
    if (this.#inFlight < this.slots && this.#waiting.length === 0) {
      this.#inFlight++;
      return start(alone).finally(() => {
        this.#inFlight--;
        this.#flush();
      });
    }
    // Too large to share a request, or nowhere to join: alone, beside the requests in flight.
    if (item === null || !this.#joinable || item.length > JOIN_MAX_CHARS) return start(alone);
    return new Promise<T>((resolve, reject) => {
      // Should it go alone after all (a batch of one, a refused joined request), it runs in its caller's
      // trace context, not in that of the call whose completion sent it.
      this.#waiting.push({ json: item, alone: context.bind(context.active(), alone), resolve, reject });
    });
  }

  #flush(): void {
    if (this.#inFlight >= this.slots || this.#waiting.length === 0) return;
    let chars = 0;
    let n = 0;
    for (const w of this.#waiting) {
      if (n === JOIN_MAX_ITEMS || (n > 0 && chars + w.json.length > JOIN_MAX_CHARS)) break;
      chars += w.json.length + 1;
      n++;
    }
    const batch = this.#waiting.splice(0, n);
    this.#inFlight++;
    // A batch of one goes on its own route, as a lone call does.
    const answered =
      batch.length === 1
        ? alone(batch)
        : this.joined(batch.map((w) => w.json)).catch((error: unknown) => this.#refused(error, batch));
    answered
      .then(
        (outcomes) => {
          batch.forEach((w, i) => {
            const o = outcomes[i];
            if (o?.ok) w.resolve(o.value);
            else w.reject(o ? o.error : new UnavailableError('the server gave no answer for this item'));
          });
        },
        (error: unknown) => {
          for (const w of batch) w.reject(error);
        },
      )
      .finally(() => {
        this.#inFlight--;
        this.#flush();
      });
  }

  /** A joined request refused whole: nothing of it was stored, so its calls go alone where that can help. */
  #refused(error: unknown, batch: Waiting<T>[]): Promise<Outcome<T>[]> {
    if (error instanceof NotFoundError) this.#joinable = false;
    else if (!(error instanceof PayloadTooLargeError || error instanceof InvalidRequestError)) throw error;
    return alone(batch);
  }
}

function start<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Each call on its own route, at once. */
async function alone<T>(batch: Waiting<T>[]): Promise<Outcome<T>[]> {
  const settled = await Promise.allSettled(batch.map((w) => start(w.alone)));
  return settled.map((s) => (s.status === 'fulfilled' ? { ok: true, value: s.value } : { ok: false, error: s.reason }));
}
