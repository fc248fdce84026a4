/**
 * One small class per condition a user can act on. `code` is the HTTP problem type (SPEC §4), so the
 * server maps errors to responses, and the HTTP client maps responses back to the same classes, in one place.
 */
import type { FailureInfo, MessageInfo } from './types.ts';

export type ErrorCode =
  | 'invalid_request'
  | 'not_found'
  | 'lease_lost'
  | 'payload_too_large'
  | 'unauthorized'
  | 'forbidden'
  | 'rate_limited'
  | 'conflict'
  | 'unavailable'
  | 'timeout'
  | 'message_failed';

export class FerryError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An argument was malformed: the message says which and why. Nothing was changed. */
export class InvalidRequestError extends FerryError {
  constructor(message: string) {
    super('invalid_request', message);
  }
}

export class NotFoundError extends FerryError {
  constructor(message: string) {
    super('not_found', message);
  }
}

/** The receipt is not the message's current one: its lease ran out, or it was already settled. */
export class LeaseLostError extends FerryError {
  constructor(message = 'the receipt is stale: the lease ran out or the delivery was already settled') {
    super('lease_lost', message);
  }
}

export class PayloadTooLargeError extends FerryError {
  constructor(message: string) {
    super('payload_too_large', message);
  }
}

/** The request conflicts with the message's state (e.g. retrying a completed message). */
export class ConflictError extends FerryError {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** The store is closed or cannot be reached; retrying later may succeed. */
export class UnavailableError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options);
  }
}

export class UnauthorizedError extends FerryError {
  constructor(message = 'a valid token is required') {
    super('unauthorized', message);
  }
}

export class ForbiddenError extends FerryError {
  constructor(message = 'the token does not allow this') {
    super('forbidden', message);
  }
}

export class RateLimitedError extends FerryError {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super('rate_limited', message);
    this.retryAfterMs = retryAfterMs;
  }
}

/** A wait (`result()`, `call()`) ran out of time. The message itself is untouched. */
export class TimeoutError extends FerryError {
  constructor(message: string) {
    super('timeout', message);
  }
}

/** The awaited message ended `dead` or `cancelled`; `info` holds it, `info.error` why. */
export class MessageFailedError extends FerryError {
  readonly info: MessageInfo;
  constructor(info: MessageInfo) {
    const why = info.error?.message ? `: ${info.error.message}` : '';
    super('message_failed', `message ${info.id} ended ${info.state}${why}`);
    this.info = info;
  }
}

/** Thrown by a handler: the message is dead at once, without retries. */
export class UnrecoverableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnrecoverableError';
  }
}

/** Builds the error kept on a message from whatever a handler threw. */
export function toFailure(error: unknown): FailureInfo {
  if (error instanceof Error) {
    const data = (error as { data?: unknown }).data;
    return data === undefined
      ? { message: error.message, name: error.name }
      : { message: error.message, name: error.name, data };
  }
  if (typeof error === 'string') return { message: error };
  try {
    return { message: String(error), data: JSON.parse(JSON.stringify(error ?? null)) };
  } catch {
    return { message: String(error) };
  }
}

const byCode: Record<string, new (message: string) => FerryError> = {
  invalid_request: InvalidRequestError,
  not_found: NotFoundError,
  lease_lost: LeaseLostError,
  payload_too_large: PayloadTooLargeError,
  conflict: ConflictError,
  unavailable: UnavailableError,
  unauthorized: UnauthorizedError,
  forbidden: ForbiddenError,
  timeout: TimeoutError,
};

/** Rebuilds the error class of a problem type (used by the HTTP client). */
export function errorFromCode(code: string, message: string): FerryError {
  const Ctor = byCode[code];
  return Ctor ? new Ctor(message) : new FerryError('unavailable', message);
}
