/** The error table is the one source for the server's answers, the HTTP client's classes and the CLI's exits. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { exitCodeOf } from '../../src/cli/context.ts';
import { toError } from '../../src/client/http.ts';
import {
  codeOfStatus,
  ERRORS,
  type ErrorCode,
  errorFromCode,
  FerryError,
  RateLimitedError,
} from '../../src/core/errors.ts';
import { errorHandler } from '../../src/server/problem.ts';

const codes = Object.keys(ERRORS) as ErrorCode[];

describe('error table', () => {
  it('each code goes server → client → CLI and comes back as itself', async () => {
    const app = Fastify();
    app.setErrorHandler(errorHandler);
    app.get('/:code', async (request) => {
      throw errorFromCode((request.params as { code: string }).code, 'detail text', 2000);
    });
    try {
      for (const code of codes) {
        const entry = ERRORS[code];
        const answer = await app.inject({ method: 'GET', url: `/${code}` });
        assert.equal(answer.statusCode, entry.status, `${code}: status`);
        assert.equal(answer.json().title, entry.title, `${code}: title`);
        assert.equal(answer.headers['retry-after'] !== undefined, entry.retryable, `${code}: Retry-After`);
        const rebuilt = await toError(
          new Response(answer.body, { status: answer.statusCode, headers: answer.headers as HeadersInit }),
        );
        assert.ok(rebuilt instanceof FerryError);
        assert.equal(rebuilt.code, code, `${code}: the client rebuilds the same code`);
        assert.equal(rebuilt.constructor, entry.create('x', 1).constructor, `${code}: the same class`);
        assert.equal(rebuilt.message, 'detail text');
        assert.equal(exitCodeOf(rebuilt), entry.exit, `${code}: exit code`);
      }
    } finally {
      await app.close();
    }
  });

  it('a rate limit keeps its Retry-After through the client', async () => {
    const rebuilt = await toError(
      new Response(JSON.stringify({ type: 'rate_limited', detail: 'slow down' }), {
        status: 429,
        headers: { 'retry-after': '3' },
      }),
    );
    assert.ok(rebuilt instanceof RateLimitedError);
    assert.equal(rebuilt.retryAfterMs, 3000);
  });

  it('a bare status maps to the first code listed with it; unknown 4xx are invalid requests, the rest unavailable', () => {
    assert.equal(codeOfStatus(409), 'conflict');
    assert.equal(codeOfStatus(503), 'unavailable');
    assert.equal(codeOfStatus(415), 'invalid_request');
    assert.equal(codeOfStatus(502), 'unavailable');
    for (const code of codes) assert.equal(ERRORS[codeOfStatus(ERRORS[code].status)].status, ERRORS[code].status);
  });

  it('an unknown code becomes an unavailable FerryError; the table cannot be changed', () => {
    const e = errorFromCode('from_a_newer_server', 'x');
    assert.equal(e.code, 'unavailable');
    assert.equal(e.constructor, FerryError, 'not a class the server never sent');
    assert.ok(Object.isFrozen(ERRORS) && Object.isFrozen(ERRORS.unavailable));
  });
});
