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

/** The `ferry` CLI's exit codes, so scripts can tell what went wrong without parsing stderr. */
export const EXIT = Object.freeze({
  ok: 0,
  error: 1,
  usage: 2,
  notFound: 3,
  leaseLost: 4,
  unauthorized: 5,
  conflict: 6,
  timeout: 7,
  failed: 8,
} as const);

/** What each error code means to every side: the HTTP answer, the CLI's exit, the SDK's class. */
export interface ErrorKind {
  /** The HTTP status of its problem answer. */
  readonly status: number;
  /** The problem's title. */
  readonly title: string;
  /** The CLI's exit code. */
  readonly exit: number;
  /** The same call, unchanged, may succeed later (the server adds Retry-After). */
  readonly retryable: boolean;
  /** The error rebuilt from a problem answer (by the HTTP client). */
  readonly create: (detail: string, retryAfterMs?: number) => FerryError;
}

/**
 * The one table of error codes. Order matters where statuses repeat: a bare status with no problem
 * document maps back to the first code listed with it (409 to conflict, 503 to unavailable).
 */
export const ERRORS: Readonly<Record<ErrorCode, ErrorKind>> = Object.freeze({
  invalid_request: kind(400, 'Invalid request', EXIT.usage, false, (d) => new InvalidRequestError(d)),
  unauthorized: kind(401, 'Unauthorized', EXIT.unauthorized, false, (d) => new UnauthorizedError(d)),
  forbidden: kind(403, 'Forbidden', EXIT.unauthorized, false, (d) => new ForbiddenError(d)),
  not_found: kind(404, 'Not found', EXIT.notFound, false, (d) => new NotFoundError(d)),
  conflict: kind(409, 'Conflict', EXIT.conflict, false, (d) => new ConflictError(d)),
  lease_lost: kind(409, 'Lease lost', EXIT.leaseLost, false, (d) => new LeaseLostError(d)),
  // Over HTTP the message's info is not in the problem: the code and detail still say what happened.
  message_failed: kind(409, 'Message failed', EXIT.failed, false, (d) => new FerryError('message_failed', d)),
  payload_too_large: kind(413, 'Payload too large', EXIT.usage, false, (d) => new PayloadTooLargeError(d)),
  rate_limited: kind(429, 'Rate limited', EXIT.error, true, (d, ms) => new RateLimitedError(d, ms ?? 1000)),
  unavailable: kind(503, 'Unavailable', EXIT.error, true, (d) => new UnavailableError(d)),
  timeout: kind(503, 'Timeout', EXIT.timeout, true, (d) => new TimeoutError(d)),
});

function kind(status: number, title: string, exit: number, retryable: boolean, create: ErrorKind['create']): ErrorKind {
  return Object.freeze({ status, title, exit, retryable, create });
}

/** The entry of `code`, or undefined for a code this version does not know. */
export function errorKind(code: string): ErrorKind | undefined {
  return Object.hasOwn(ERRORS, code) ? ERRORS[code as ErrorCode] : undefined;
}

/** Rebuilds the error class of a problem type (used by the HTTP client); an unknown code is unavailable. */
export function errorFromCode(code: string, message: string, retryAfterMs?: number): FerryError {
  const known = errorKind(code);
  return known ? known.create(message, retryAfterMs) : new FerryError('unavailable', message);
}

/** The code of an answer that carries only a status (a proxy's error page). */
export function codeOfStatus(status: number): ErrorCode {
  for (const [code, entry] of Object.entries(ERRORS)) if (entry.status === status) return code as ErrorCode;
  return status >= 400 && status < 500 ? 'invalid_request' : 'unavailable';
}
