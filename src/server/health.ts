/**
 * Whether the store takes writes, as seen from the answers of this server's own writes. A read probe alone
 * says nothing of a full disk or a read-only replica (reads still answer), and a probe that writes would have
 * to write something real. So a write that failed as unavailable marks the write path failing until a later
 * write succeeds, or until `windowMs` passes with no write at all: then the next /healthz says healthy again
 * and traffic comes back to try, so a store that recovered while nothing wrote is not shut out for good.
 */
export class WriteHealth {
  readonly #windowMs: number;
  #failedAt = 0;
  #error = '';

  constructor(windowMs = 30_000) {
    this.#windowMs = windowMs;
  }

  failed(error: Error, now = Date.now()): void {
    this.#failedAt = now;
    this.#error = error.message;
  }

  succeeded(): void {
    this.#failedAt = 0;
  }

  /** Why writes are failing, or null when they are not known to fail. */
  failing(now = Date.now()): { since: string; error: string } | null {
    if (this.#failedAt === 0 || now - this.#failedAt > this.#windowMs) return null;
    return { since: new Date(this.#failedAt).toISOString(), error: this.#error };
  }
}

/** Routes answered without a store write even when they succeed: their success says nothing of writes. */
const NOT_WRITES = new Set(['/v1/queues/:queue/receive', '/v1/cancellations', '/v1/stream-tokens']);

/** Whether a route's success proves a store write went through. */
export function writesStore(method: string, route: string | undefined): boolean {
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || route === undefined) return false;
  return route.startsWith('/v1/') && !NOT_WRITES.has(route);
}
