/** Managing queues: stats, configuration, pause, listing, purge, redrive. */

import type { Ferry, QueueConfig } from '../../core/types.ts';
import { checkState } from '../../core/validate.ts';
import type { App, RouteDeps } from '../deps.ts';
import {
  ListQuery,
  MessagePage,
  Problem,
  PurgeQuery,
  PurgeReply,
  QueueParams,
  QueuePatch,
  QueueReply,
  QueuesReply,
  RedriveReply,
} from '../schemas.ts';
import { queueAllowed } from '../tokens.ts';

const problems = { 400: Problem, 401: Problem, 403: Problem, 404: Problem, 413: Problem, 429: Problem };
const admin = { scopes: ['admin'], queueParams: ['queue'] } as const;

async function describe(ferry: Ferry, queue: string) {
  const [stats, settings] = await Promise.all([ferry.stats(queue), ferry.configure(queue)]);
  return { ...stats, settings };
}

export async function queueRoutes(app: App, deps: RouteDeps): Promise<void> {
  const { ferry } = deps;

  app.get(
    '/v1/queues',
    {
      schema: { summary: 'Every queue with its counts by state', response: { 200: QueuesReply, ...problems } },
      config: { access: { scopes: ['admin'] } },
    },
    async (request) => {
      const queues = await ferry.queues();
      return { queues: queues.filter((q) => queueAllowed(request.grant, q.name)) };
    },
  );

  app.get(
    '/v1/queues/:queue',
    {
      schema: {
        summary: 'A queue’s counts by state and its configuration',
        params: QueueParams,
        response: { 200: QueueReply, ...problems },
      },
      config: { access: admin },
    },
    async (request) => describe(ferry, request.params.queue),
  );

  app.patch(
    '/v1/queues/:queue',
    {
      schema: {
        summary: 'Change a queue’s defaults, pause or resume it',
        params: QueueParams,
        body: QueuePatch,
        response: { 200: QueueReply, ...problems },
      },
      config: { access: admin },
    },
    async (request) => {
      const { queue } = request.params;
      const { paused, ...config } = request.body;
      // Configuration first: it validates everything, so a bad patch pauses nothing.
      if (Object.keys(config).length > 0) await ferry.configure(queue, config as QueueConfig);
      if (paused === true) await ferry.pause(queue);
      if (paused === false) await ferry.resume(queue);
      return describe(ferry, queue);
    },
  );

  app.get(
    '/v1/queues/:queue/messages',
    {
      schema: {
        summary: 'List a queue’s messages, a page at a time',
        params: QueueParams,
        querystring: ListQuery,
        response: { 200: MessagePage, ...problems },
      },
      config: { access: admin },
    },
    async (request) => {
      const { state, limit, cursor } = request.query;
      return ferry.list(request.params.queue, {
        state,
        limit: limit === undefined ? undefined : Number(limit),
        cursor,
      });
    },
  );

  app.delete(
    '/v1/queues/:queue/messages',
    {
      schema: {
        summary: 'Remove a queue’s messages in some states (default: every state but active)',
        params: QueueParams,
        querystring: PurgeQuery,
        response: { 200: PurgeReply, ...problems },
      },
      config: { access: admin },
    },
    async (request) => {
      const raw = request.query.state;
      const state = raw === undefined ? undefined : raw.split(',').map((s) => checkState(s.trim()));
      return ferry.purge(request.params.queue, { state });
    },
  );

  app.post(
    '/v1/queues/:queue/redrive',
    {
      schema: {
        summary: 'Move every dead message back to waiting, with fresh attempts',
        params: QueueParams,
        response: { 200: RedriveReply, ...problems },
      },
      config: { access: admin },
    },
    async (request) => ferry.redrive(request.params.queue),
  );
}
