/**
 * The JSON body parser: Fastify's own, after a linear scan that refuses nesting deeper than `maxDepth` before
 * anything is built, so a hostile body cannot make later recursion (validation, serialization, the store)
 * overflow the stack. Keys named `__proto__` or `constructor` are kept, as JSON.parse keeps them (own data
 * properties, which set no prototype): payloads and results are the caller's data, which the SDK takes as
 * they are, and nothing here merges a body into another object. Fastify's default refused such a body as
 * "not valid JSON", so a message an embedded producer sent could not be completed by a worker over HTTP.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidRequestError } from '../core/errors.ts';
import { jsonDepth, MAX_JSON_DEPTH } from '../core/validate.ts';
import { FLOW_MAX_DEPTH } from '../store/constants.ts';

/**
 * The default nesting limit of a body: room for the deepest value the SDK accepts (MAX_JSON_DEPTH) where a
 * body puts it deepest, a flow's leaf: each level of a flow adds two (a node, its children array), and a
 * few more for the wrapping objects. So every store and the HTTP API refuse the same values (1072).
 */
export const MAX_BODY_DEPTH = MAX_JSON_DEPTH + 2 * FLOW_MAX_DEPTH + 8;

export function registerJsonParser(app: FastifyInstance, maxDepth: number): void {
  const parse = app.getDefaultJsonParser('ignore', 'ignore');
  app.removeContentTypeParser('application/json');
  // Every body is JSON: a text/plain one (a browser's fetch with a string body and no Content-Type) is
  // refused as the media type it is (415, naming application/json), not parsed into a string that the
  // route's schema then calls "not an object". An empty one is no body at all (`fetch(url, { method:
  // 'POST', body: '' })` sends text/plain).
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => {
    if (body.length === 0) done(null, undefined);
    else done(unsupported('Content-Type text/plain is not supported; send JSON with Content-Type: application/json'));
  });
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string' },
    (request: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
      const encoding = request.headers['content-encoding']?.trim().toLowerCase();
      if (encoding && encoding !== 'identity') {
        done(unsupported(`Content-Encoding ${encoding} is not supported; send the body uncompressed`));
        return;
      }
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (jsonDepth(text, maxDepth) > maxDepth) {
        done(new InvalidRequestError(`the body is nested deeper than ${maxDepth} levels`));
        return;
      }
      void parse(request, text, done);
    },
  );
}

/** A 415 answer (problem.ts turns a 4xx status into an `invalid_request` problem with this message). */
function unsupported(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 415 });
}
