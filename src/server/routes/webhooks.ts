/** Webhooks (SPEC §6): create or replace, remove, list (without secrets), and the deliveries log. Admin scope. */
import type { App, RouteDeps } from '../deps.ts';
import {
  DeletedReply,
  Problem,
  WebhookBody,
  WebhookDeliveriesQuery,
  WebhookDeliveriesReply,
  WebhookInfo,
  WebhookParams,
  WebhooksReply,
} from '../schemas.ts';

const problems = { 400: Problem, 401: Problem, 403: Problem, 413: Problem, 429: Problem };
const admin = { access: { scopes: ['admin'] as const, allQueues: true } };

export async function webhookRoutes(app: App, deps: RouteDeps): Promise<void> {
  const { ferry } = deps;

  app.put(
    '/v1/webhooks/:name',
    {
      schema: {
        summary: 'Create or replace a webhook: matching events are POSTed to `url`, signed as Standard Webhooks do',
        params: WebhookParams,
        body: WebhookBody,
        response: { 200: WebhookInfo, ...problems },
      },
      config: admin,
    },
    async (request) => ferry.putWebhook(request.params.name, request.body),
  );

  app.delete(
    '/v1/webhooks/:name',
    {
      schema: { summary: 'Remove a webhook', params: WebhookParams, response: { 200: DeletedReply, ...problems } },
      config: admin,
    },
    async (request) => ferry.deleteWebhook(request.params.name),
  );

  app.get(
    '/v1/webhooks',
    {
      schema: { summary: 'Every webhook (secrets are never shown)', response: { 200: WebhooksReply, ...problems } },
      config: admin,
    },
    async () => ({ webhooks: await ferry.webhooks() }),
  );

  app.get(
    '/v1/webhooks/:name/deliveries',
    {
      schema: {
        summary: 'Recent delivery attempts of a webhook, newest first',
        params: WebhookParams,
        querystring: WebhookDeliveriesQuery,
        response: { 200: WebhookDeliveriesReply, 404: Problem, ...problems },
      },
      config: admin,
    },
    async (request) => ({
      deliveries: await ferry.webhookDeliveries(
        request.params.name,
        request.query.limit === undefined ? {} : { limit: request.query.limit },
      ),
    }),
  );
}
