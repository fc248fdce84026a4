-- Webhook endpoints (queues NULL: every queue).
CREATE TABLE {{schema}}.webhooks (
  name text PRIMARY KEY,
  url text NOT NULL,
  queues text[],
  types text[] NOT NULL,
  secret text NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
-- The seq of the last event turned into deliveries (one row); moved by compare-and-set.
CREATE TABLE {{schema}}.webhook_cursor (
  id int PRIMARY KEY CHECK (id = 1),
  seq bigint NOT NULL
);
INSERT INTO {{schema}}.webhook_cursor (id, seq) VALUES (1, 0);
-- The deliveries log: recent attempts per webhook (the newest few, trimmed as attempts are added).
CREATE TABLE {{schema}}.webhook_attempts (
  id bigserial PRIMARY KEY,
  webhook text NOT NULL,
  delivery_id text NOT NULL,
  seq bigint NOT NULL,
  type text NOT NULL,
  queue text NOT NULL,
  message_id text NOT NULL,
  attempt int NOT NULL,
  status int,
  error text,
  outcome text NOT NULL,
  at bigint NOT NULL,
  duration_ms int NOT NULL
);
CREATE INDEX webhook_attempts_by_webhook ON {{schema}}.webhook_attempts (webhook, id);
