/** Fan-out: publish to a topic, and manage which queues are subscribed to it. */
import type { App, RouteDeps } from '../deps.ts';
import {
  Empty,
  Problem,
  PublishReply,
  SendBody,
  SubscriptionParams,
  SubscriptionsReply,
  TopicParams,
} from '../schemas.ts';

const problems = { 400: Problem, 401: Problem, 403: Problem, 413: Problem, 429: Problem };

export async function topicRoutes(app: App, deps: RouteDeps): Promise<void> {
  const { ferry } = deps;

  app.post(
    '/v1/topics/:topic/messages',
    {
      schema: {
        summary: 'Publish: one copy into every queue subscribed to the topic now',
        params: TopicParams,
        body: SendBody,
        response: { 201: PublishReply, ...problems },
      },
      // A token limited to some queues must list the topic's name to publish to it.
      config: { access: { scopes: ['send'], queueParams: ['topic'] } },
    },
    async (request, reply) => {
      const { payload, ...options } = request.body;
      return reply.code(201).send(await ferry.publish(request.params.topic, payload, options));
    },
  );

  const subscription = {
    schema: { params: SubscriptionParams, response: { 200: Empty, ...problems } },
    config: { access: { scopes: ['admin'], queueParams: ['topic', 'queue'] } },
  } as const;

  app.get(
    '/v1/topics/:topic/subscriptions',
    {
      schema: {
        summary: 'The queues subscribed to a topic',
        params: TopicParams,
        response: { 200: SubscriptionsReply, ...problems },
      },
      config: { access: { scopes: ['admin'], queueParams: ['topic'] } },
    },
    async (request) => ({ queues: await ferry.subscriptions(request.params.topic) }),
  );

  app.put(
    '/v1/topics/:topic/subscriptions/:queue',
    { ...subscription, schema: { ...subscription.schema, summary: 'Subscribe a queue to a topic' } },
    async (request) => {
      await ferry.subscribe(request.params.topic, request.params.queue);
      return {};
    },
  );

  app.delete(
    '/v1/topics/:topic/subscriptions/:queue',
    { ...subscription, schema: { ...subscription.schema, summary: 'Unsubscribe a queue from a topic' } },
    async (request) => {
      await ferry.unsubscribe(request.params.topic, request.params.queue);
      return {};
    },
  );
}
