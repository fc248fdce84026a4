/**
 * Who may call which route: every route declares its access in `config.access`; one `onRequest` hook
 * authenticates (401), checks scope and queue (403) and the rate limit (429) before the body is even read.
 * Routes naming a message by id learn its queue from the store, only for tokens limited to some queues.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ferry } from '../core/types.ts';
import { problem, sendProblem } from './problem.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { StreamTokens } from './stream-tokens.ts';
import { type Grant, OPEN_GRANT, queueAllowed, type Scope, type TokenSet } from './tokens.ts';

/** A route's access rule. */
export interface Access {
  /** Any one of these scopes lets the request in; `public` needs no token. */
  scopes: readonly Scope[] | 'public';
  /** Route parameters naming queues or topics the token must be allowed. */
  queueParams?: readonly string[];
  /** The route names a message by `:id`: its queue must be allowed. */
  byId?: boolean;
  /** The route accepts a stream token in `?token=`. */
  streamToken?: boolean;
  /** Only a token not limited to some queues may use the route (it reaches every queue, e.g. schedules). */
  allQueues?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    grant: Grant;
    /** Set from a stream token limited to one queue. */
    streamQueue: string | null;
  }
}

export interface AccessDeps {
  tokens: TokenSet;
  streams: StreamTokens;
  limiter: RateLimiter | null;
  ferry: Ferry;
}

function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? (match[1] as string) : null;
}

function authenticate(request: FastifyRequest, access: Access, deps: AccessDeps): Grant | null {
  if (access.streamToken) {
    const query = request.query as Record<string, unknown> | undefined;
    const given = query?.token;
    if (typeof given === 'string') {
      const stream = deps.streams.verify(given);
      if (stream) request.streamQueue = stream.queue;
      return stream?.grant ?? null;
    }
  }
  if (!deps.tokens.required) return OPEN_GRANT;
  const token = bearer(request);
  return token === null ? null : deps.tokens.find(token);
}

export function registerAccess(app: FastifyInstance, deps: AccessDeps): void {
  app.decorateRequest('grant', null as unknown as Grant);
  app.decorateRequest('streamQueue', null);

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    request.grant = OPEN_GRANT;
    const access = request.routeOptions.config?.access;
    // Unmatched URLs (404) carry no access rule; they reveal nothing, so they answer as they are.
    if (!access || access.scopes === 'public') return;
    const grant = authenticate(request, access, deps);
    if (!grant) {
      reply.header('www-authenticate', 'Bearer');
      return sendProblem(reply, problem('unauthorized', 401, 'a valid token is required: Authorization: Bearer TOKEN'));
    }
    request.grant = grant;
    if (deps.limiter) {
      const wait = deps.limiter.take(grant === OPEN_GRANT ? `ip:${request.ip}` : grant.id);
      if (wait > 0) {
        return sendProblem(reply, problem('rate_limited', 429, `too many requests; retry in ${wait} ms`), wait);
      }
    }
    if (!access.scopes.some((s) => grant.scopes.includes(s))) {
      return sendProblem(reply, problem('forbidden', 403, `this token lacks the ${access.scopes.join(' or ')} scope`));
    }
    if (access.allQueues && grant.queues !== null) {
      return sendProblem(
        reply,
        problem('forbidden', 403, 'this route needs a token that is not limited to some queues'),
      );
    }
    const params = request.params as Record<string, unknown>;
    for (const name of access.queueParams ?? []) {
      const queue = params[name];
      if (typeof queue === 'string' && !queueAllowed(grant, queue)) {
        return sendProblem(reply, problem('forbidden', 403, `this token may not use ${name} ${JSON.stringify(queue)}`));
      }
    }
  });

  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    const access = request.routeOptions.config?.access;
    if (!access?.byId || request.grant.queues === null) return;
    const id = (request.params as { id: string }).id;
    const info = await deps.ferry.get(id);
    if (info && !queueAllowed(request.grant, info.queue)) {
      return sendProblem(
        reply,
        problem('forbidden', 403, `this token may not use queue ${JSON.stringify(info.queue)}`),
      );
    }
  });
}
