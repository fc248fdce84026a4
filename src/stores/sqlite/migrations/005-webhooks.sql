-- Webhook endpoints (queues and types as JSON arrays; queues NULL: every queue).
CREATE TABLE webhooks (
  name TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  queues TEXT,
  types TEXT NOT NULL,
  secret TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
-- The seq of the last event turned into deliveries (one row); moved by compare-and-set.
CREATE TABLE webhook_cursor (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL
);
INSERT INTO webhook_cursor (id, seq) VALUES (1, 0);
-- The deliveries log: recent attempts per webhook (the newest few, trimmed as attempts are added).
CREATE TABLE webhook_attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  webhook TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  queue TEXT NOT NULL,
  message_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  status INTEGER,
  error TEXT,
  outcome TEXT NOT NULL,
  at INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook, id);
