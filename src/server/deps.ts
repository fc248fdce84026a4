/** What the route modules share. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { Ferry } from '../core/types.ts';
import type { Cancellations } from './cancellations.ts';
import type { WriteHealth } from './health.ts';
import type { Metrics } from './metrics.ts';
import type { StreamTokens } from './stream-tokens.ts';

/** The Fastify instance with TypeBox as its type provider, as routes see it. */
export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface RouteDeps {
  ferry: Ferry;
  /** Fires when the server starts closing: long polls answer and event streams end. */
  shutdown: AbortSignal;
  metrics: Metrics;
  cancellations: Cancellations;
  streams: StreamTokens;
  /** Whether the store takes writes, for /healthz. */
  writes: WriteHealth;
  /** Milliseconds between SSE heartbeat comments. */
  heartbeatMs: number;
  /** Milliseconds /healthz waits for the store. */
  healthTimeoutMs: number;
}
