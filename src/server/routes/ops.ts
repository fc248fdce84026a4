/**
 * Operations: health, Prometheus metrics and the OpenAPI document. Health and the document need no token;
 * metrics name every queue and its counts, so with tokens set they need the `admin` or `metrics` scope.
 */

import type { App, RouteDeps } from '../deps.ts';
import { problem, sendProblem, UNAVAILABLE_RETRY_MS } from '../problem.ts';
import { Health, Problem } from '../schemas.ts';

export async function opsRoutes(app: App, deps: RouteDeps): Promise<void> {
  const publicAccess = { access: { scopes: 'public' } } as const;
  // One question to the store per health timeout: while the last one is unanswered and younger than that,
  // later health checks wait on it, so a prober polling a hung store does not take a connection per poll;
  // an older one (a connection that may never answer) is not waited on again.
  let asking: { question: Promise<unknown>; at: number } | null = null;
  const ask = (): Promise<unknown> => {
    const now = performance.now();
    if (asking === null || now - asking.at >= deps.healthTimeoutMs) {
      // A point lookup of an id that cannot exist: the cheapest question that still reaches the store.
      const question: Promise<unknown> = deps.ferry.get('healthz').finally(() => {
        if (asking?.question === question) asking = null;
      });
      asking = { question, at: now };
    }
    return asking.question;
  };

  app.get(
    '/healthz',
    {
      schema: {
        summary: '200 when the store answers and takes writes, else 503',
        description:
          'The 503 problem names the failing `check`: `store` (it does not answer) or `writes` (writes through this server failed as unavailable, e.g. a full disk, and none succeeded since).',
        response: { 200: Health, 503: Problem },
      },
      config: publicAccess,
    },
    async (_request, reply) => {
      // A store that does not answer within the health timeout is as unhealthy as one that refuses (a probe
      // waits that long at most, not forever: a database host that stopped answering).
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          ask(),
          new Promise((_resolve, reject) => {
            timer = setTimeout(
              () => reject(new Error(`no answer within ${deps.healthTimeoutMs} ms`)),
              deps.healthTimeoutMs,
            );
          }),
        ]);
      } catch (error) {
        const detail = `the store does not answer: ${(error as Error).message}`;
        return sendProblem(reply, { ...problem('unavailable', 503, detail), check: 'store' }, UNAVAILABLE_RETRY_MS);
      } finally {
        clearTimeout(timer);
      }
      const failing = deps.writes.failing();
      if (failing) {
        const detail = `writes to the store fail (since ${failing.since}): ${failing.error}`;
        return sendProblem(reply, { ...problem('unavailable', 503, detail), check: 'writes' }, UNAVAILABLE_RETRY_MS);
      }
      return { ok: true };
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text format)',
        description: 'With tokens set, needs a token with the `admin` or `metrics` scope, not limited to some queues.',
      },
      config: { access: { scopes: ['admin', 'metrics'], allQueues: true } },
    },
    async (_request, reply) => reply.type(deps.metrics.contentType).send(await deps.metrics.text()),
  );

  app.get('/openapi.json', { schema: { summary: 'This document (OpenAPI 3.1)' }, config: publicAccess }, async () =>
    app.swagger(),
  );
}
