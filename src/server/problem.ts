/**
 * Every error becomes an `application/problem+json` answer (RFC 9457) here, and only here: the engine's
 * named errors by their `code`, Fastify's own errors (validation, body size, content type, bad JSON) by theirs.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { errorKind, FerryError, RateLimitedError, UnavailableError } from '../core/errors.ts';

export const PROBLEM_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** On /healthz: the check that failed. */
  check?: string;
}

export function problem(code: string, status: number, detail: string): Problem {
  return { type: code, title: errorKind(code)?.title ?? 'Error', status, detail };
}

/** A refused item of a request that carries many (`POST /v1/sends`, `/v1/acks`): each answers on its own. */
export interface ItemFailure {
  ok: false;
  type: string;
  detail: string;
}

/** An item in a queue the token may not use, refused alone. */
export function forbiddenItem(queue: string): ItemFailure {
  return { ok: false, type: 'forbidden', detail: `this token may not use queue ${JSON.stringify(queue)}` };
}

/**
 * An item that failed, as its own request would have answered; an error that is not the engine's is logged
 * and its text kept from the caller, as `errorHandler` does for a whole request.
 */
export function itemFailure(error: unknown, log: FastifyBaseLogger, item: number): ItemFailure {
  if (error instanceof FerryError) return { ok: false, type: error.code, detail: error.message };
  log.error({ err: error, item }, 'an item of a joined request failed');
  return { ok: false, type: 'unavailable', detail: 'the server failed to handle this item' };
}

/** The wait (Retry-After) given with an unavailable answer: a store restart or failover takes seconds. */
export const UNAVAILABLE_RETRY_MS = 2000;

/** Sends a problem; also used by hooks that answer before the route runs. */
export function sendProblem(reply: FastifyReply, body: Problem, retryAfterMs?: number): FastifyReply {
  if (retryAfterMs !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  return reply.code(body.status).type(PROBLEM_TYPE).send(JSON.stringify(body));
}

function fromFastify(error: FastifyError, request: FastifyRequest): Problem | null {
  if (error.validation) {
    const context = error.validationContext;
    const schema = context
      ? (request.routeOptions.schema as Record<string, unknown> | undefined)?.[context]
      : undefined;
    return problem('invalid_request', 400, validationDetail(error, schema));
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem('payload_too_large', 413, `the request body is larger than the limit: ${error.message}`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem('invalid_request', 415, `${error.message}; send JSON with Content-Type: application/json`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return problem('invalid_request', 400, 'the body is empty but Content-Type is application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return problem('invalid_request', 400, 'Content-Length does not match the body');
  }
  const status = error.statusCode;
  if (status === 413) return problem('payload_too_large', 413, error.message);
  if (status !== undefined && status >= 400 && status < 500) {
    const detail = error instanceof SyntaxError ? `the body is not valid JSON: ${error.message}` : error.message;
    return problem('invalid_request', status, detail || 'the request is malformed');
  }
  return null;
}

function validationDetail(error: FastifyError, schema: unknown): string {
  const where = error.validationContext ?? 'request';
  // TypeBox reports an unknown field twice: as "schema is false" at the field and as additionalProperties at
  // its object. The second says more.
  let errors = (error.validation ?? []).filter(
    (v) => !(v.keyword === 'boolean' && v.schemaPath.endsWith('/additionalProperties')),
  );
  // A choice among constants (a state, a backoff type) fails once per choice, each "must be equal to
  // constant", and then as a whole: said once, with the choices.
  const choices = new Map<string, string[]>();
  for (const v of errors) {
    if (v.keyword !== 'anyOf') continue;
    // The union itself (TypeBox's compiler names it) or its anyOf list (Ajv names that).
    const node = pointer(schema, v.schemaPath);
    const branches = Array.isArray(node) ? node : (node as { anyOf?: unknown } | undefined)?.anyOf;
    if (!Array.isArray(branches)) continue;
    const values = branches.map((b) => (b as { const?: unknown } | null)?.const);
    if (values.every((value) => value !== undefined)) choices.set(v.schemaPath, values.map(String));
  }
  errors = errors.filter((v) => ![...choices.keys()].some((path) => v.schemaPath.startsWith(`${path}/`)));
  const parts = errors.slice(0, 3).map((v) => {
    const path = v.instancePath ? v.instancePath.replace(/^\//, '').replaceAll('/', '.') : '';
    const params = v.params as Record<string, unknown> | undefined;
    let what = v.message ?? 'is invalid';
    const among = choices.get(v.schemaPath);
    if (among !== undefined) {
      what = `must be one of ${among.join(', ')}`;
    } else if (v.keyword === 'additionalProperties' && params?.additionalProperties !== undefined) {
      what = unknownFields([params.additionalProperties].flat().map(String), pointer(schema, v.schemaPath));
    } else if (v.keyword === 'required' && params?.requiredProperties !== undefined) {
      what = `is missing ${JSON.stringify(params.requiredProperties)}`;
    } else if (v.keyword === 'required' && params?.missingProperty !== undefined) {
      what = `is missing ${JSON.stringify(params.missingProperty)}`;
    }
    return `${where}${path ? `.${path}` : ''} ${what}`;
  });
  return parts.join('; ') || `${where} is invalid`;
}

/** "has an unknown field "priorty" (did you mean "priority"?); allowed: payload, delay, …". */
function unknownFields(names: string[], object: unknown): string {
  const properties = (object as { properties?: Record<string, unknown> } | undefined)?.properties;
  const allowed = properties ? Object.keys(properties) : [];
  const listed = names.map((name) => {
    const near = allowed.find((a) => editDistance(a.toLowerCase(), name.toLowerCase()) <= 2);
    return near ? `${JSON.stringify(name)} (did you mean ${JSON.stringify(near)}?)` : JSON.stringify(name);
  });
  const noun = names.length === 1 ? 'an unknown field' : 'unknown fields';
  return `has ${noun} ${listed.join(', ')}${allowed.length > 0 ? `; allowed: ${allowed.join(', ')}` : ''}`;
}

/** The part of `schema` a validator's `schemaPath` (`#/properties/backoff/anyOf/1`) points at. */
function pointer(schema: unknown, path: string): unknown {
  let node = schema;
  for (const key of path.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return node;
}

/** Levenshtein distance, for "did you mean" on names a few characters long. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
    }
    previous = row;
  }
  return previous[b.length] as number;
}

/** Fastify's error handler: never lets an error out as anything but a problem. */
export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof FerryError) {
    const kind = errorKind(error.code);
    const status = kind?.status ?? 500;
    if (status >= 500) request.log.warn({ err: error, type: error.code }, error.message);
    // A retryable error tells the client when to try again; a rate limit knows exactly when.
    let retry: number | undefined;
    if (error instanceof RateLimitedError) retry = error.retryAfterMs;
    else if (error instanceof UnavailableError) retry = UNAVAILABLE_RETRY_MS;
    else if (kind?.retryable) retry = 1000;
    return sendProblem(reply, problem(error.code, status, error.message), retry);
  }
  const known = fromFastify(error, request);
  if (known) return sendProblem(reply, known);
  request.log.error({ err: error }, 'unexpected error');
  return sendProblem(reply, problem('unavailable', 500, 'internal error; see the server log'));
}

/** The methods a path answers to (an empty list: no route has it), for 405 and `Allow`. */
export type AllowedMethods = (path: string) => string[];

/** 404 for a path no route has; 405 with `Allow` for a path that exists under other methods. */
export function notFoundHandler(allowed: AllowedMethods) {
  return (request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const path = request.url.split('?')[0] ?? '/';
    const methods = allowed(path);
    if (methods.length > 0) {
      reply.header('allow', methods.join(', '));
      return sendProblem(
        reply,
        problem('invalid_request', 405, `${request.method} is not allowed on ${path}; use ${methods.join(' or ')}`),
      );
    }
    return sendProblem(reply, problem('not_found', 404, `no route ${request.method} ${path}`));
  };
}

/**
 * Requests Node's parser refuses before Fastify sees them (malformed HTTP, headers over the size limit, a
 * request too slow to arrive) get a problem too, written on the socket as Node's own answer would be.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  // A reset connection has no one left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let body: Problem;
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    body = problem('invalid_request', 431, 'the request line and headers are larger than the 16 KiB limit');
  } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    body = problem('timeout', 408, 'the request took too long to arrive');
  } else {
    body = problem('invalid_request', 400, `the request is not valid HTTP/1.1 (${error.code ?? error.message})`);
  }
  // As Node does: no answer where one is already being written on this socket.
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !answering?.headersSent) {
    const text = JSON.stringify(body);
    socket.write(
      `HTTP/1.1 ${body.status} ${STATUS_CODES[body.status]}\r\nConnection: close\r\n` +
        `Content-Type: ${PROBLEM_TYPE}\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
    );
  }
  socket.destroySoon();
}
