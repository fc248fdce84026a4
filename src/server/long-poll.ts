/**
 * Long polls wait inside the Ferry (its receive `wait` and `result()`), woken by the engine's events, never
 * by a polling loop here. Their signal fires when the client goes away or the server shuts down, so a
 * waiter is freed at once.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseDuration } from '../core/duration.ts';
import type { Duration } from '../core/types.ts';

/** The longest a request may wait: below common proxies' 60–100 s idle timeouts, with the server's own margin. */
export const MAX_WAIT_MS = 60_000;

/** A wait from a body or a query string, where plain digits (`?wait=5000`) are milliseconds. */
export function parseWait(value: Duration | undefined, what = 'wait'): number {
  if (value === undefined) return 0;
  const ms = typeof value === 'string' && /^\d{1,12}$/.test(value) ? Number(value) : value;
  return parseDuration(ms, what, 0, MAX_WAIT_MS);
}

/** An AbortSignal that fires when the client disconnects before its answer is written, or at `shutdown`. */
export function requestSignal(request: FastifyRequest, reply: FastifyReply, shutdown: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const res = reply.raw;
  const onClose = (): void => {
    if (!res.writableFinished) controller.abort(new Error('client disconnected'));
  };
  res.once('close', onClose);
  // A socket that already closed (the body took a while to arrive) never emits again.
  if (request.raw.socket?.destroyed) controller.abort(new Error('client disconnected'));
  // A wait is bounded by MAX_WAIT_MS, not by the idle timeout, which may be shorter; Node arms the keep-alive
  // timeout again once the answer is written. (`inject()`'s stand-in socket has no timeout to switch off.)
  else request.raw.socket?.setTimeout?.(0);
  return AbortSignal.any([controller.signal, shutdown]);
}
