/**
 * Every error becomes an `application/problem+json` answer (RFC 9457) here, and only here: the engine's
 * named errors by their `code`, Fastify's own errors (validation, body size, content type, bad JSON) by theirs.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { errorKind, FerryError, RateLimitedError } from '../core/errors.ts';

export const PROBLEM_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
}

export function problem(code: string, status: number, detail: string): Problem {
  return { type: code, title: errorKind(code)?.title ?? 'Error', status, detail };
}

/** Sends a problem; also used by hooks that answer before the route runs. */
export function sendProblem(reply: FastifyReply, body: Problem, retryAfterMs?: number): FastifyReply {
  if (retryAfterMs !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  return reply.code(body.status).type(PROBLEM_TYPE).send(JSON.stringify(body));
}

function fromFastify(error: FastifyError): Problem | null {
  if (error.validation) {
    return problem('invalid_request', 400, validationDetail(error));
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

function validationDetail(error: FastifyError): string {
  const where = error.validationContext ?? 'request';
  const parts = (error.validation ?? []).slice(0, 3).map((v) => {
    const path = v.instancePath ? v.instancePath.replace(/^\//, '').replaceAll('/', '.') : '';
    const params = v.params as Record<string, unknown> | undefined;
    let what = v.message ?? 'is invalid';
    if (v.keyword === 'additionalProperties' && params?.additionalProperties !== undefined) {
      what = `has an unknown field ${JSON.stringify(params.additionalProperties)}`;
    } else if (v.keyword === 'required' && params?.requiredProperties !== undefined) {
      what = `is missing ${JSON.stringify(params.requiredProperties)}`;
    } else if (v.keyword === 'required' && params?.missingProperty !== undefined) {
      what = `is missing ${JSON.stringify(params.missingProperty)}`;
    }
    return `${where}${path ? `.${path}` : ''} ${what}`;
  });
  return parts.join('; ') || `${where} is invalid`;
}

/** Fastify's error handler: never lets an error out as anything but a problem. */
export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof FerryError) {
    const kind = errorKind(error.code);
    const status = kind?.status ?? 500;
    if (status >= 500) request.log.warn({ err: error }, 'store unavailable');
    // A retryable error tells the client when to try again; a rate limit knows exactly when.
    const retry = error instanceof RateLimitedError ? error.retryAfterMs : kind?.retryable ? 1000 : undefined;
    return sendProblem(reply, problem(error.code, status, error.message), retry);
  }
  const known = fromFastify(error);
  if (known) return sendProblem(reply, known);
  request.log.error({ err: error }, 'unexpected error');
  return sendProblem(reply, problem('unavailable', 500, 'internal error; see the server log'));
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = request.url.split('?')[0];
  return sendProblem(reply, problem('not_found', 404, `no route ${request.method} ${path}`));
}
