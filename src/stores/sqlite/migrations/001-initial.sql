-- Ferry's embedded schema. `messages.seq` is the send order; `id` is the public UUIDv7.
-- state: 0 queued (waiting or delayed by run_at), 1 active, 2 completed, 3 dead, 4 cancelled.
-- blocked: 1 while an earlier unfinished message of the same key exists (ordering keys).
CREATE TABLE queues (
  name TEXT PRIMARY KEY,
  settings TEXT NOT NULL DEFAULT '{}',
  paused INTEGER NOT NULL DEFAULT 0,
  rate_window INTEGER NOT NULL DEFAULT 0,
  rate_count INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE messages (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  queue TEXT NOT NULL,
  state INTEGER NOT NULL,
  blocked INTEGER NOT NULL DEFAULT 0,
  priority INTEGER NOT NULL,
  run_at INTEGER NOT NULL,
  payload TEXT NOT NULL,
  result TEXT,
  error TEXT,
  progress TEXT,
  headers TEXT,
  key TEXT,
  dedupe_id TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER,
  backoff TEXT,
  lease INTEGER,
  receipt TEXT,
  lease_until INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  sent_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
);

-- Every index on a column that changes with state costs an index write per state change, so the hot path
-- (claim, complete) touches only small partial indexes: `ready` (claim's scan, in delivery order) and
-- `leases` (expiry). `messages_queue` is on immutable columns: written once, at send. Listing and counting
-- finished messages scan it; retention walks it oldest first (no index write when a message finishes).
CREATE INDEX messages_queue ON messages (queue, seq);
CREATE INDEX messages_ready ON messages (queue, priority DESC, run_at, seq) WHERE state = 0 AND blocked = 0;
CREATE INDEX messages_leases ON messages (queue, lease_until) WHERE state = 1;
CREATE INDEX messages_dead ON messages (queue, seq) WHERE state = 3;
CREATE INDEX messages_cancelled ON messages (queue, seq) WHERE state = 4;
CREATE UNIQUE INDEX messages_dedupe ON messages (queue, dedupe_id) WHERE dedupe_id IS NOT NULL;
CREATE INDEX messages_key ON messages (queue, key, seq) WHERE key IS NOT NULL AND state <= 1;

CREATE TABLE subscriptions (
  topic TEXT NOT NULL,
  queue TEXT NOT NULL,
  PRIMARY KEY (topic, queue)
) WITHOUT ROWID;

-- One row per committed transaction: its events as a JSON array, with seqs seq .. seq + n - 1.
CREATE TABLE events (
  seq INTEGER PRIMARY KEY,
  n INTEGER NOT NULL,
  at INTEGER NOT NULL,
  origin TEXT NOT NULL,
  data TEXT NOT NULL
);
-- No index on `at`: blocks are appended in time order, so retention deletes from the oldest seq.
