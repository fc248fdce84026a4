/**
 * TypeBox schemas of every request and response of the HTTP API (SPEC §4). Fastify validates requests with
 * them and `@fastify/swagger` turns them into `GET /openapi.json`, so the document cannot drift from the code.
 * Bounds mirror src/core/validate.ts; the engine checks again what a schema cannot express.
 */
import { type Static, Type } from 'typebox';
import { EVENT_TYPES } from '../core/types.ts';
import { MAX_RECEIPT, MAX_RECEIVE, QUEUE_NAME } from '../core/validate.ts';

const PRIORITY_LIMIT = 2 ** 31 - 1;

export const QueueName = Type.String({ pattern: QUEUE_NAME.source, description: 'a queue or topic name' });
export const MessageId = Type.String({ minLength: 1, maxLength: 64, description: 'a message id' });
export const Duration = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 32 })], {
  description: 'whole milliseconds, or a string such as "250ms", "30s", "5m", "2h", "7d"',
});
export const State = Type.Union(
  [
    Type.Literal('pending'),
    Type.Literal('waiting'),
    Type.Literal('delayed'),
    Type.Literal('active'),
    Type.Literal('completed'),
    Type.Literal('dead'),
    Type.Literal('cancelled'),
  ],
  { description: 'a message state' },
);
const Headers = Type.Record(Type.String(), Type.String(), { description: 'string metadata carried by the message' });
const Time = Type.Union([Type.String({ maxLength: 64 }), Type.Integer({ minimum: 0 })], {
  description: 'an ISO 8601 time or epoch milliseconds',
});
const Iso = Type.String({ format: 'date-time' });
const NullableIso = Type.Union([Iso, Type.Null()]);

export const Backoff = Type.Object(
  {
    type: Type.Union([Type.Literal('exponential'), Type.Literal('fixed')]),
    delay: Type.Optional(Duration),
    max: Type.Optional(Duration),
    jitter: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const sendFields = {
  delay: Type.Optional(Duration),
  runAt: Type.Optional(Time),
  priority: Type.Optional(Type.Integer({ minimum: -PRIORITY_LIMIT, maximum: PRIORITY_LIMIT })),
  key: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  dedupeId: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  backoff: Type.Optional(Backoff),
  lease: Type.Optional(Duration),
  timeout: Type.Optional(Duration),
  headers: Type.Optional(Headers),
};

export const SendBody = Type.Object({ payload: Type.Unknown(), ...sendFields }, { additionalProperties: false });

export const ScheduleParams = Type.Object({
  name: Type.String({ pattern: QUEUE_NAME.source, description: 'a schedule name' }),
});
export const ScheduleBody = Type.Object(
  {
    cron: Type.String({ minLength: 1, maxLength: 200, description: 'five fields, or six with seconds first' }),
    tz: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'IANA time zone, default UTC' })),
    queue: QueueName,
    payload: Type.Optional(Type.Unknown()),
    options: Type.Optional(Type.Object(sendFields, { additionalProperties: false })),
  },
  { additionalProperties: false },
);
export const ScheduleInfo = Type.Object({
  name: Type.String(),
  cron: Type.String(),
  tz: Type.String(),
  queue: Type.String(),
  payload: Type.Unknown(),
  options: Type.Object({}, { additionalProperties: true }),
  nextRunAt: Type.String({ format: 'date-time' }),
  lastRunAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
export const SchedulesReply = Type.Object({ schedules: Type.Array(ScheduleInfo) });
export const DeletedReply = Type.Object({ deleted: Type.Boolean() });

export const WebhookParams = Type.Object({
  name: Type.String({ pattern: QUEUE_NAME.source, description: 'a webhook name' }),
});
const EventTypeName = Type.Union(
  EVENT_TYPES.map((t) => Type.Literal(t)),
  { description: 'an event type' },
);
export const WebhookBody = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2048,
      description: 'http:// or https:// URL the events are POSTed to',
    }),
    queues: Type.Optional(
      Type.Array(QueueName, { minItems: 1, maxItems: 100, description: 'only events of these queues (default all)' }),
    ),
    types: Type.Optional(
      Type.Array(EventTypeName, {
        minItems: 1,
        maxItems: 16,
        description: 'only these types (default completed, dead)',
      }),
    ),
    secret: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'Standard Webhooks signing secret: whsec_ and the base64 of 24 to 64 bytes; never shown back',
    }),
  },
  { additionalProperties: false },
);
export const WebhookInfo = Type.Object({
  name: Type.String(),
  url: Type.String(),
  queues: Type.Union([Type.Array(Type.String()), Type.Null()]),
  types: Type.Array(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
export const WebhooksReply = Type.Object({ webhooks: Type.Array(WebhookInfo) });
export const WebhookDeliveriesQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'newest first; default 50' })) },
  { additionalProperties: false },
);
export const WebhookDelivery = Type.Object({
  id: Type.String({ description: 'the webhook-id header: one per event and endpoint, the same on retries' }),
  event: Type.Object({ seq: Type.Integer(), type: Type.String(), queue: Type.String(), id: Type.String() }),
  attempt: Type.Integer(),
  status: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status answered; null when none came' }),
  error: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.Union([Type.Literal('delivered'), Type.Literal('retrying'), Type.Literal('gave_up')]),
  at: Type.String({ format: 'date-time' }),
  durationMs: Type.Integer(),
});
export const WebhookDeliveriesReply = Type.Object({ deliveries: Type.Array(WebhookDelivery) });
export type SendBody = Static<typeof SendBody>;

/** A flow's node. Its `children` are nodes of the same shape, checked whole by the engine (depth, size, every field). */
export const FlowBody = Type.Object(
  {
    queue: QueueName,
    payload: Type.Optional(Type.Unknown()),
    options: Type.Optional(
      Type.Object(
        {
          ...sendFields,
          children: Type.Optional(
            Type.Union([Type.Literal('fail-parent'), Type.Literal('ignore-failures')], {
              description:
                'on a node with children: fail-parent (default) makes it dead when a child ends dead or cancelled; ignore-failures waits for every child',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    children: Type.Optional(
      Type.Array(Type.Unknown({ description: 'a node: { queue, payload?, options?, children? }' }), {
        maxItems: 10_000,
      }),
    ),
  },
  { additionalProperties: false, description: 'a flow node: the root of a tree of messages' },
);
export const FlowReply = Type.Object({
  id: Type.String(),
  queue: Type.String(),
  deduplicated: Type.Boolean(),
  children: Type.Optional(
    Type.Array(Type.Unknown({ description: 'the same shape: { id, queue, deduplicated, children? }' })),
  ),
});

export const BatchBody = Type.Object(
  { messages: Type.Array(SendBody, { minItems: 0, maxItems: 100_000 }) },
  { additionalProperties: false },
);

/**
 * `POST /v1/sends`: single sends to any queues, each answering on its own. Items are not checked by the schema
 * (one bad item would refuse the whole request) but one by one, as `send()` checks its arguments.
 */
export const SendsBody = Type.Object(
  {
    sends: Type.Array(
      Type.Unknown({
        description: 'one send: { queue, payload, ...the fields of POST /v1/queues/{queue}/messages }',
      }),
      { minItems: 1, maxItems: 1000 },
    ),
  },
  { additionalProperties: false },
);
export const SendsReply = Type.Object({
  results: Type.Array(
    Type.Object({
      ok: Type.Boolean(),
      id: Type.Optional(Type.String()),
      queue: Type.Optional(Type.String()),
      deduplicated: Type.Optional(Type.Boolean()),
      type: Type.Optional(Type.String({ description: 'when not ok: the problem type, as a request would answer' })),
      detail: Type.Optional(Type.String()),
    }),
  ),
});

export const WaitQuery = Type.Object(
  { wait: Type.Optional(Duration) },
  { additionalProperties: false, description: 'wait up to this long (at most 60s) for the message to end' },
);

export const ReceiveBody = Type.Object(
  {
    max: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RECEIVE })),
    wait: Type.Optional(Duration),
    lease: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
  },
  { additionalProperties: false },
);

export const Failure = Type.Object(
  {
    message: Type.String({ maxLength: 65_536 }),
    name: Type.Optional(Type.String({ maxLength: 512 })),
    data: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
);

const Receipt = Type.String({ minLength: 1, maxLength: MAX_RECEIPT });
export const AckBody = Type.Object(
  { receipt: Receipt, result: Type.Optional(Type.Unknown()) },
  { additionalProperties: false },
);
export const AcksBody = Type.Object(
  {
    acks: Type.Array(
      Type.Object(
        { id: MessageId, receipt: Receipt, result: Type.Optional(Type.Unknown()) },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 1000 },
    ),
  },
  { additionalProperties: false },
);
export const AcksReply = Type.Object({
  results: Type.Array(
    Type.Object({
      id: Type.String(),
      ok: Type.Boolean(),
      type: Type.Optional(Type.String()),
      detail: Type.Optional(Type.String()),
    }),
  ),
});
export const NackBody = Type.Object(
  {
    receipt: Receipt,
    error: Type.Optional(Type.Union([Failure, Type.String({ maxLength: 65_536 })])),
    delay: Type.Optional(Duration),
    retry: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export const ReleaseBody = Type.Object({ receipt: Receipt }, { additionalProperties: false });
export const ExtendBody = Type.Object({ receipt: Receipt, lease: Duration }, { additionalProperties: false });
export const ProgressBody = Type.Object(
  { receipt: Receipt, progress: Type.Unknown() },
  { additionalProperties: false },
);

/** A `{ max, per }` window limit, or null to remove it. */
const WindowLimit = (description: string) =>
  Type.Union(
    [
      Type.Object(
        { max: Type.Integer({ minimum: 1, maximum: 1_000_000 }), per: Duration },
        { additionalProperties: false },
      ),
      Type.Null(),
    ],
    { description },
  );

export const QueuePatch = Type.Object(
  {
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    backoff: Type.Optional(Backoff),
    lease: Type.Optional(Duration),
    retention: Type.Optional(Duration),
    concurrency: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 100_000 }), Type.Null()])),
    rateLimit: Type.Optional(WindowLimit('most deliveries per window, across every consumer')),
    keyConcurrency: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100_000,
        description: 'most messages of one ordering key active at once (default 1: one at a time, in send order)',
      }),
    ),
    timeout: Type.Optional(Type.Union([Duration, Type.Null()])),
    deadLetter: Type.Optional(
      Type.Union([Type.String({ pattern: QUEUE_NAME.source, description: 'a queue name' }), Type.Null()]),
    ),
    keyRateLimit: Type.Optional(WindowLimit('most deliveries of one ordering key per window')),
    metadata: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description: 'string entries kept with the queue for tools built on Ferry; replaces the whole map',
      }),
    ),
    paused: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type QueuePatch = Static<typeof QueuePatch>;

/** Whole numbers in a query string are matched as text: a converting validator would truncate `1.5` to 1. */
const Digits = (description: string) => Type.String({ pattern: '^[0-9]{1,15}$', description });

export const ListQuery = Type.Object(
  {
    state: Type.Optional(State),
    limit: Type.Optional(Digits('1–1000, default 50')),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  },
  { additionalProperties: false },
);

export const PurgeQuery = Type.Object(
  {
    state: Type.Optional(
      Type.String({
        maxLength: 128,
        description: 'a state, or several separated by commas; default every state but active',
      }),
    ),
  },
  { additionalProperties: false },
);

export const EventsQuery = Type.Object(
  {
    queue: Type.Optional(QueueName),
    types: Type.Optional(
      Type.String({ maxLength: 256, description: `event types separated by commas: ${EVENT_TYPES.join(', ')}` }),
    ),
    after: Type.Optional(Digits('resume after this seq, as Last-Event-ID')),
    token: Type.Optional(Type.String({ maxLength: 2048, description: 'a stream token from POST /v1/stream-tokens' })),
  },
  { additionalProperties: false },
);

export const StreamTokenBody = Type.Object(
  {
    queue: Type.Optional(QueueName),
    ttl: Type.Optional(Duration),
  },
  { additionalProperties: false },
);
export const StreamToken = Type.Object({ token: Type.String(), expiresAt: Iso });

export const QueueParams = Type.Object({ queue: QueueName });
export const TopicParams = Type.Object({ topic: QueueName });
export const SubscriptionParams = Type.Object({ topic: QueueName, queue: QueueName });
export const SubscriptionsReply = Type.Object({ queues: Type.Array(QueueName) });
export const IdParams = Type.Object({ id: MessageId });

// Responses.
export const SentReply = Type.Object({ id: Type.String(), queue: Type.String(), deduplicated: Type.Boolean() });
export const BatchReply = Type.Object({
  messages: Type.Array(Type.Object({ id: Type.String(), deduplicated: Type.Boolean() })),
});
export const MessageInfo = Type.Object({
  id: Type.String(),
  queue: Type.String(),
  state: State,
  payload: Type.Unknown(),
  result: Type.Unknown(),
  error: Type.Union([Failure, Type.Null()]),
  attempts: Type.Integer(),
  maxAttempts: Type.Integer(),
  priority: Type.Integer(),
  key: Type.Union([Type.String(), Type.Null()]),
  dedupeId: Type.Union([Type.String(), Type.Null()]),
  progress: Type.Unknown(),
  headers: Headers,
  sentAt: Iso,
  runAt: Iso,
  startedAt: NullableIso,
  finishedAt: NullableIso,
  leaseUntil: NullableIso,
  parentId: Type.Union([Type.String(), Type.Null()], { description: 'the flow parent, if any' }),
});
export const ChildrenReply = Type.Object({ messages: Type.Array(MessageInfo) });
export const Delivery = Type.Object({
  id: Type.String(),
  queue: Type.String(),
  payload: Type.Unknown(),
  attempt: Type.Integer(),
  receipt: Type.String(),
  priority: Type.Integer(),
  key: Type.Union([Type.String(), Type.Null()]),
  headers: Headers,
  sentAt: Iso,
  leaseUntil: Iso,
  deadline: NullableIso,
});
export const Deliveries = Type.Object({ messages: Type.Array(Delivery) });
export const StateReply = Type.Object({ state: State });
export const LeaseReply = Type.Object({ leaseUntil: Iso });
export const Empty = Type.Object({});
export const QueueStats = Type.Object({
  name: Type.String(),
  pending: Type.Integer({ description: 'flow parents waiting for their children' }),
  waiting: Type.Integer(),
  delayed: Type.Integer(),
  active: Type.Integer(),
  completed: Type.Integer(),
  dead: Type.Integer(),
  cancelled: Type.Integer(),
  paused: Type.Boolean(),
});
export const QueuesReply = Type.Object({ queues: Type.Array(QueueStats) });
export const QueueSettings = Type.Object({
  maxAttempts: Type.Integer(),
  backoff: Type.Object({
    type: Type.Union([Type.Literal('exponential'), Type.Literal('fixed')]),
    delay: Type.Integer(),
    max: Type.Integer(),
    jitter: Type.Boolean(),
  }),
  lease: Type.Integer({ description: 'milliseconds' }),
  retention: Type.Integer({ description: 'milliseconds' }),
  concurrency: Type.Union([Type.Integer(), Type.Null()]),
  rateLimit: Type.Union([Type.Object({ max: Type.Integer(), per: Type.Integer() }), Type.Null()]),
  timeout: Type.Union([Type.Integer({ description: 'milliseconds' }), Type.Null()]),
  deadLetter: Type.Union([Type.String(), Type.Null()]),
  keyConcurrency: Type.Integer(),
  keyRateLimit: Type.Union([Type.Object({ max: Type.Integer(), per: Type.Integer() }), Type.Null()]),
  metadata: Type.Record(Type.String(), Type.String()),
  paused: Type.Boolean(),
});
export const QueueReply = Type.Object({ ...QueueStats.properties, settings: QueueSettings });
export const MessagePage = Type.Object({
  messages: Type.Array(MessageInfo),
  cursor: Type.Union([Type.String(), Type.Null()]),
});
export const PurgeReply = Type.Object({ purged: Type.Integer() });
export const RedriveReply = Type.Object({ moved: Type.Integer() });
export const PublishReply = Type.Object({
  messages: Type.Array(Type.Object({ queue: Type.String(), id: Type.String() })),
});
export const Problem = Type.Object(
  {
    type: Type.String({ description: 'invalid_request, not_found, lease_lost, payload_too_large, unauthorized, …' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    check: Type.Optional(Type.String({ description: 'On /healthz: the failing check, `store` or `writes`' })),
  },
  { description: 'application/problem+json (RFC 9457)' },
);
export const Health = Type.Object({ ok: Type.Boolean() });
export const CancellationsBody = Type.Object(
  {
    ids: Type.Array(MessageId, { minItems: 1, maxItems: 10_000 }),
    wait: Type.Optional(Duration),
    watcher: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: "the caller's poll: a new poll of the same watcher answers the one it replaces, empty",
      }),
    ),
  },
  { additionalProperties: false },
);
export const CancellationsReply = Type.Object({ ids: Type.Array(Type.String()) });
