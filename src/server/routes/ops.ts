/**
 * Operations: health, Prometheus metrics and the OpenAPI document. Health and the document need no token;
 * metrics name every queue and its counts, so with tokens set they need the `admin` or `metrics` scope.
 */
import { UnavailableError } from '../../core/errors.ts';
import type { App, RouteDeps } from '../deps.ts';
import { Health, Problem } from '../schemas.ts';

export async function opsRoutes(app: App, deps: RouteDeps): Promise<void> {
  const publicAccess = { access: { scopes: 'public' } } as const;

  app.get(
    '/healthz',
    {
      schema: { summary: '200 when the store answers, else 503', response: { 200: Health, 503: Problem } },
      config: publicAccess,
    },
    async () => {
      // A point lookup of an id that cannot exist: the cheapest question that still reaches the store.
      try {
        await deps.ferry.get('healthz');
      } catch (error) {
        throw new UnavailableError(`the store does not answer: ${(error as Error).message}`, { cause: error });
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
