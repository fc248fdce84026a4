/** Consuming: receive (a long poll), then ack, nack, extend or progress with the delivery's receipt. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Delivery, Ferry } from '../../core/types.ts';
import type { App, RouteDeps } from '../deps.ts';
import { parseWait, requestSignal } from '../long-poll.ts';
import { forbiddenItem, itemFailure } from '../problem.ts';
import {
  AckBody,
  AcksBody,
  AcksReply,
  CancellationsBody,
  CancellationsReply,
  Deliveries,
  Empty,
  ExtendBody,
  IdParams,
  LeaseReply,
  NackBody,
  Problem,
  ProgressBody,
  QueueParams,
  ReceiveBody,
  ReleaseBody,
  StateReply,
} from '../schemas.ts';
import { OPEN_GRANT, queueAllowed } from '../tokens.ts';

/**
 * A client that aborts a long poll may be gone by the time the claim that its wait led to commits: the abort
 * and the send that woke the wait race on different sockets. One turn of the event loop lets the socket's
 * close be seen; deliveries that can no longer reach anyone are released at once (waiting again, the attempt
 * not counted) instead of staying leased until they expire.
 */
async function giveBackIfGone(ferry: Ferry, request: FastifyRequest, reply: FastifyReply, messages: Delivery[]) {
  await new Promise((resolve) => setImmediate(resolve));
  if (!reply.raw.destroyed && !request.raw.socket?.destroyed) return;
  await Promise.allSettled(messages.map((d) => ferry.release(d)));
}

const problems = { 400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 413: Problem, 429: Problem };
const settle = { scopes: ['receive'], byId: true } as const;

export async function deliveryRoutes(app: App, deps: RouteDeps): Promise<void> {
  const { ferry, metrics } = deps;

  app.post(
    '/v1/queues/:queue/receive',
    {
      schema: {
        summary: 'Lease messages',
        description: 'Waits up to `wait` (≤ 60s) for the first message; answers as soon as one is there.',
        params: QueueParams,
        body: ReceiveBody,
        response: { 200: Deliveries, ...problems },
      },
      config: { access: { scopes: ['receive'], queueParams: ['queue'] } },
      // Every field is optional, so a bodiless POST means all defaults.
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    },
    async (request, reply) => {
      const { max, lease, timeout } = request.body;
      const wait = parseWait(request.body.wait);
      const signal = wait > 0 ? requestSignal(request, reply, deps.shutdown) : undefined;
      let messages: Delivery[];
      try {
        messages = await ferry.receive(request.params.queue, { max, wait, lease, timeout, signal });
      } catch (error) {
        // The client left or the server is closing: nothing was leased by this call.
        if (signal?.aborted) return { messages: [] };
        throw error;
      }
      if (messages.length > 0 && wait > 0) await giveBackIfGone(ferry, request, reply, messages);
      return { messages: reply.raw.destroyed ? [] : messages };
    },
  );

  app.post(
    '/v1/cancellations',
    {
      schema: {
        summary: 'Which of these active messages were cancelled (for remote workers)',
        description:
          'Answers the ids among `ids` whose cancel was requested through this server, waiting up to `wait` (≤ 60s) for one. ' +
          "A poll naming a `watcher` answers that watcher's earlier poll, if still waiting, with no ids.",
        body: CancellationsBody,
        response: { 200: CancellationsReply, ...problems },
      },
      config: { access: { scopes: ['receive'] } },
    },
    async (request, reply) => {
      const wait = parseWait(request.body.wait);
      const signal = requestSignal(request, reply, deps.shutdown);
      const { grant } = request;
      const allowed = (queue: string) => queueAllowed(grant, queue);
      const { ids, watcher } = request.body;
      // A watcher is the caller's own: one token (or, open, one address) cannot answer another's poll.
      const owner =
        watcher === undefined ? undefined : `${grant === OPEN_GRANT ? `ip:${request.ip}` : grant.id} ${watcher}`;
      return { ids: await deps.cancellations.wait(ids, wait, signal, allowed, owner) };
    },
  );

  app.post(
    '/v1/messages/:id/ack',
    {
      schema: {
        summary: 'Complete a delivery, with an optional result',
        params: IdParams,
        body: AckBody,
        response: { 200: Empty, ...problems },
      },
      config: { access: settle },
    },
    async (request) => {
      const { receipt, result } = request.body;
      await ferry.ack({ id: request.params.id, receipt }, result);
      metrics.settled('ack');
      return {};
    },
  );

  app.post(
    '/v1/messages/:id/nack',
    {
      schema: {
        summary: 'Fail a delivery: retried after the backoff (or `delay`), or dead with `retry: false`',
        params: IdParams,
        body: NackBody,
        response: { 200: StateReply, ...problems },
      },
      config: { access: settle },
    },
    async (request) => {
      const { receipt, ...options } = request.body;
      const answer = await ferry.nack({ id: request.params.id, receipt }, options);
      metrics.settled('nack');
      return answer;
    },
  );

  app.post(
    '/v1/acks',
    {
      schema: {
        summary: 'Acknowledge many deliveries in one request; each answers on its own (ok, or why not)',
        body: AcksBody,
        response: { 200: AcksReply, ...problems },
      },
      config: { access: { scopes: ['receive'] } },
    },
    async (request) => {
      const { acks } = request.body;
      const { grant } = request;
      const results = await Promise.all(
        acks.map(async ({ id, receipt, result }, i) => {
          try {
            if (grant.queues !== null) {
              const info = await ferry.get(id);
              if (info && !queueAllowed(grant, info.queue)) return { id, ...forbiddenItem(info.queue) };
            }
            await ferry.ack({ id, receipt }, result);
            metrics.settled('ack');
            return { id, ok: true };
          } catch (error) {
            return { id, ...itemFailure(error, request.log, i) };
          }
        }),
      );
      return { results };
    },
  );

  app.post(
    '/v1/messages/:id/release',
    {
      schema: {
        summary: 'Hand a delivery back unprocessed: waiting again at once, the attempt not counted',
        params: IdParams,
        body: ReleaseBody,
        response: { 200: StateReply, ...problems },
      },
      config: { access: settle },
    },
    async (request) => ferry.release({ id: request.params.id, receipt: request.body.receipt }),
  );

  app.post(
    '/v1/messages/:id/extend',
    {
      schema: {
        summary: 'Extend a lease',
        params: IdParams,
        body: ExtendBody,
        response: { 200: LeaseReply, ...problems },
      },
      config: { access: settle },
    },
    async (request) => ferry.extend({ id: request.params.id, receipt: request.body.receipt }, request.body.lease),
  );

  app.post(
    '/v1/messages/:id/progress',
    {
      schema: {
        summary: 'Report progress',
        params: IdParams,
        body: ProgressBody,
        response: { 200: Empty, ...problems },
      },
      config: { access: settle },
    },
    async (request) => {
      await ferry.progress({ id: request.params.id, receipt: request.body.receipt }, request.body.progress);
      return {};
    },
  );
}
