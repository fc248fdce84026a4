/**
 * Calls of one kind (sends, acks) sharing requests: a call goes out alone, on its own route, when no call of
 * its kind is in flight; calls made while one is go together in the next request, on the joined route
 * (`POST /v1/sends`, `POST /v1/acks`), where each item answers on its own. So a lone call costs no added
 * wait, and many concurrent callers cost one round trip per batch instead of one each.
 *
 * A joined request is capped by items and by characters of JSON, so it stays far below the server's body
 * limit. Should the server refuse it whole anyway (413: its limit was set lower; 404: a server without the
 * joined route), each of its calls goes alone, as it would have without joining.
 */
import { NotFoundError, PayloadTooLargeError, UnavailableError } from '../core/errors.ts';

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
  #inFlight = false;
  /** False once the server answered that it has no joined route. */
  #joinable = true;
  readonly #waiting: Waiting<T>[] = [];

  /** `joined` sends the items' JSON texts as one request and answers each item's outcome, in order. */
  constructor(private readonly joined: (jsons: string[]) => Promise<Outcome<T>[]>) {}

  /**
   * Runs a call: alone at once, or joined to the next request. `json` gives the item as the joined route
   * takes it; it may throw (a value JSON cannot hold), and the call then goes alone, to fail as it would.
   */
  run(json: () => string, alone: () => Promise<T>): Promise<T> {
    if (!this.#inFlight && this.#waiting.length === 0) {
      this.#inFlight = true;
      return alone().finally(() => {
        this.#inFlight = false;
        this.#flush();
      });
    }
    let text: string;
    try {
      text = json();
    } catch {
      return alone();
    }
    // Too large to share a request, or nowhere to join: alone, beside the request in flight.
    if (!this.#joinable || text.length > JOIN_MAX_CHARS) return alone();
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ json: text, alone, resolve, reject });
    });
  }

  #flush(): void {
    if (this.#inFlight || this.#waiting.length === 0) return;
    let chars = 0;
    let n = 0;
    for (const w of this.#waiting) {
      if (n === JOIN_MAX_ITEMS || (n > 0 && chars + w.json.length > JOIN_MAX_CHARS)) break;
      chars += w.json.length + 1;
      n++;
    }
    const batch = this.#waiting.splice(0, n);
    this.#inFlight = true;
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
        this.#inFlight = false;
        this.#flush();
      });
  }

  /** A joined request refused whole: its calls go alone where that can succeed; otherwise they all fail. */
  #refused(error: unknown, batch: Waiting<T>[]): Promise<Outcome<T>[]> {
    if (error instanceof NotFoundError) this.#joinable = false;
    else if (!(error instanceof PayloadTooLargeError)) throw error;
    return alone(batch);
  }
}

/** Each call on its own route, at once. */
async function alone<T>(batch: Waiting<T>[]): Promise<Outcome<T>[]> {
  const settled = await Promise.allSettled(batch.map((w) => w.alone()));
  return settled.map((s) => (s.status === 'fulfilled' ? { ok: true, value: s.value } : { ok: false, error: s.reason }));
}
