/** Flows: a tree of messages sent in one transaction, and a message's children. */

import { ForbiddenError } from '../../core/errors.ts';
import type { FlowNode } from '../../core/types.ts';
import type { App, RouteDeps } from '../deps.ts';
import { ChildrenReply, FlowBody, FlowReply, IdParams, Problem } from '../schemas.ts';
import { type Grant, queueAllowed } from '../tokens.ts';

const problems = { 400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 413: Problem, 429: Problem };

/** A flow touches every queue of its tree: a token limited to some queues must be allowed each one. */
function checkQueues(grant: Grant, node: unknown): void {
  if (grant.queues === null) return;
  const stack = [node];
  while (stack.length > 0) {
    const n = stack.pop() as { queue?: unknown; children?: unknown } | null;
    if (n === null || typeof n !== 'object') continue; // malformed: the engine refuses it with a clear error
    if (typeof n.queue === 'string' && !queueAllowed(grant, n.queue)) {
      throw new ForbiddenError(`this token may not use queue ${JSON.stringify(n.queue)}`);
    }
    if (Array.isArray(n.children)) stack.push(...n.children);
  }
}

export async function flowRoutes(app: App, deps: RouteDeps): Promise<void> {
  const { ferry } = deps;

  app.post(
    '/v1/flows',
    {
      schema: {
        summary: 'Send a flow: a parent and its children (nested, in any queues), all or nothing',
        description:
          'Each parent is `pending` until every child has finished, then `waiting`. Answers 201 with the same tree and each node’s id.',
        body: FlowBody,
        response: { 201: FlowReply, ...problems },
      },
      config: { access: { scopes: ['send'] } },
    },
    async (request, reply) => {
      checkQueues(request.grant, request.body);
      const sent = await ferry.sendFlow(request.body as FlowNode);
      return reply.code(201).send(sent);
    },
  );

  app.get(
    '/v1/messages/:id/children',
    {
      schema: {
        summary: 'A message’s flow children, oldest first, each with its result or error',
        params: IdParams,
        response: { 200: ChildrenReply, ...problems },
      },
      config: { access: { scopes: ['send', 'receive', 'admin'], byId: true } },
    },
    async (request) => {
      const messages = await ferry.children(request.params.id);
      for (const child of messages) {
        if (!queueAllowed(request.grant, child.queue)) {
          throw new ForbiddenError(`this token may not use queue ${JSON.stringify(child.queue)} (a child's)`);
        }
      }
      return { messages };
    },
  );
}
