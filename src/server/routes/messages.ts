/** Producing and following messages: send, batch, get (with `?wait`), cancel, retry. */

import { Type } from 'typebox';
import { InvalidRequestError, MessageFailedError, NotFoundError, UnavailableError } from '../../core/errors.ts';
import { type Ferry, FINAL_STATES, type MessageInfo, type SendOptions } from '../../core/types.ts';
import type { App, RouteDeps } from '../deps.ts';
import { parseWait, requestSignal } from '../long-poll.ts';
import { forbiddenItem, itemFailure } from '../problem.ts';
import {
  BatchBody,
  BatchReply,
  IdParams,
  MessageInfo as MessageInfoSchema,
  Problem,
  QueueParams,
  SendBody,
  SendsBody,
  SendsReply,
  SentReply,
  StateReply,
  WaitQuery,
} from '../schemas.ts';
import { queueAllowed } from '../tokens.ts';

const problems = { 400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 413: Problem, 429: Problem };

/** Waits up to `ms` for the message to end, then answers what is known of it (null: no such message). */
async function waitForEnd(ferry: Ferry, id: string, ms: number, signal: AbortSignal): Promise<MessageInfo | null> {
  if (ms > 0) {
    try {
      await ferry.result(id, { timeout: ms, signal });
    } catch (error) {
      if (error instanceof MessageFailedError) return error.info;
      // A timeout, the client leaving or shutdown: answer the current state. Anything else is real.
      if (!signal.aborted && (error as { code?: string }).code !== 'timeout') throw error;
    }
  }
  return ferry.get(id);
}

const isFinal = (info: MessageInfo): boolean => FINAL_STATES.includes(info.state);

/** One item of `POST /v1/sends`, its shape checked; its fields are checked by `send()` as any send's are. */
function sendsItem(item: unknown, i: number): { queue: string; payload: unknown; options: SendOptions } {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    throw new InvalidRequestError(`sends[${i}] must be an object { queue, payload, ...options }`);
  }
  const { queue, payload, ...options } = item as Record<string, unknown>;
  if (typeof queue !== 'string') throw new InvalidRequestError(`sends[${i}].queue must be a queue name`);
  if (!('payload' in item)) throw new InvalidRequestError(`sends[${i}].payload is required (null for none)`);
  if ('transaction' in options) throw new InvalidRequestError(`sends[${i}]: a transaction cannot be sent over HTTP`);
  return { queue, payload, options: options as SendOptions };
}

export async function messageRoutes(app: App, deps: RouteDeps): Promise<void> {
  const { ferry } = deps;

  app.post(
    '/v1/queues/:queue/messages',
    {
      schema: {
        summary: 'Send a message',
        description:
          'Answers 201 once the message is durable (200 when deduplicated). With `?wait`, waits up to that long (≤ 60s) for it to end: 200 with the message, else 202 with `Location`.',
        params: QueueParams,
        querystring: WaitQuery,
        body: SendBody,
        response: { 200: Type.Union([MessageInfoSchema, SentReply]), 201: SentReply, 202: SentReply, ...problems },
      },
      config: { access: { scopes: ['send'], queueParams: ['queue'] } },
    },
    async (request, reply) => {
      const wait = parseWait(request.query.wait);
      const { payload, ...options } = request.body;
      const sent = await ferry.send(request.params.queue, payload, options);
      const answer = { id: sent.id, queue: sent.queue, deduplicated: sent.deduplicated };
      if (wait === 0) return reply.code(sent.deduplicated ? 200 : 201).send(answer);
      const info = await waitForEnd(ferry, sent.id, wait, requestSignal(request, reply, deps.shutdown));
      if (info && isFinal(info)) return reply.code(200).send(info);
      return reply
        .code(202)
        .header('location', `/v1/messages/${encodeURIComponent(sent.id)}`)
        .send(answer);
    },
  );

  app.post(
    '/v1/queues/:queue/batch',
    {
      schema: {
        summary: 'Send many messages, all or nothing',
        params: QueueParams,
        body: BatchBody,
        response: { 201: BatchReply, ...problems },
      },
      config: { access: { scopes: ['send'], queueParams: ['queue'] } },
    },
    async (request, reply) => {
      const sents = await ferry.sendBatch(request.params.queue, request.body.messages);
      return reply.code(201).send({ messages: sents.map((s) => ({ id: s.id, deduplicated: s.deduplicated })) });
    },
  );

  app.post(
    '/v1/sends',
    {
      schema: {
        summary: 'Send single messages to any queues in one request; each answers on its own (ok, or why not)',
        description:
          'Each item is what the body of `POST /v1/queues/{queue}/messages` would be, with its `queue`. Unlike a batch, the items are independent: each is checked, allowed and stored as its own request would be, and a refused item refuses only itself. `connect()` sends here the sends its callers start while two of its sends are in flight.',
        body: SendsBody,
        response: { 200: SendsReply, ...problems },
      },
      config: { access: { scopes: ['send'] } },
    },
    async (request) => {
      const { grant } = request;
      let stored = 0;
      let unavailable: UnavailableError | undefined;
      const results = await Promise.all(
        request.body.sends.map(async (item, i) => {
          try {
            const { queue, payload, options } = sendsItem(item, i);
            if (!queueAllowed(grant, queue)) return forbiddenItem(queue);
            const sent = await ferry.send(queue, payload, options);
            stored++;
            return { ok: true, id: sent.id, queue: sent.queue, deduplicated: sent.deduplicated };
          } catch (error) {
            // Every item answers for itself, whatever the others did (failing the request would make the
            // callers of items already stored send them again).
            if (error instanceof UnavailableError) unavailable = error;
            return itemFailure(error, request.log, i);
          }
        }),
      );
      // Nothing stored because the store is unavailable: the request fails as a lone send would (503), which
      // /healthz counts as a failed write.
      if (stored === 0 && unavailable) throw unavailable;
      return { results };
    },
  );

  app.get(
    '/v1/messages/:id',
    {
      schema: {
        summary: 'Read a message',
        description: 'With `?wait`, waits up to that long (≤ 60s) for it to be completed, dead or cancelled.',
        params: IdParams,
        querystring: WaitQuery,
        response: { 200: MessageInfoSchema, ...problems },
      },
      config: { access: { scopes: ['send', 'receive', 'admin'], byId: true } },
    },
    async (request, reply) => {
      const wait = parseWait(request.query.wait);
      const { id } = request.params;
      const info =
        wait === 0
          ? await ferry.get(id)
          : await waitForEnd(ferry, id, wait, requestSignal(request, reply, deps.shutdown));
      if (!info) throw new NotFoundError(`no message ${JSON.stringify(id)}`);
      return info;
    },
  );

  app.delete(
    '/v1/messages/:id',
    {
      schema: { summary: 'Cancel a message', params: IdParams, response: { 200: StateReply, ...problems } },
      config: { access: { scopes: ['send', 'admin'], byId: true } },
    },
    async (request) => {
      const answer = await ferry.cancel(request.params.id);
      if (answer.state === 'active') {
        // The queue is kept with the flag so that only tokens allowed that queue hear of it.
        const info = await ferry.get(request.params.id);
        if (info) deps.cancellations.flag(info.id, info.queue);
      }
      return answer;
    },
  );

  app.post(
    '/v1/messages/:id/retry',
    {
      schema: {
        summary: 'Retry a dead or cancelled message, or run a delayed one now',
        params: IdParams,
        response: { 200: StateReply, ...problems },
      },
      config: { access: { scopes: ['admin'], byId: true } },
    },
    async (request) => ferry.retry(request.params.id),
  );
}
