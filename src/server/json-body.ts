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
import { jsonDepth } from '../core/validate.ts';

export function registerJsonParser(app: FastifyInstance, maxDepth: number): void {
  const parse = app.getDefaultJsonParser('ignore', 'ignore');
  app.removeContentTypeParser('application/json');
  // Every body is JSON: a text/plain one (a browser's fetch with a string body and no Content-Type) is
  // refused as the media type it is (415, naming application/json), not parsed into a string that the
  // route's schema then calls "not an object".
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string' },
    (request: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
      const encoding = request.headers['content-encoding'];
      if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
        done(
          Object.assign(new Error(`Content-Encoding ${encoding} is not supported; send the body uncompressed`), {
            statusCode: 415,
          }),
        );
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
