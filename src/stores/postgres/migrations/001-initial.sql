-- Ferry's PostgreSQL schema; {{schema}} is replaced by the quoted schema name.
-- state: 0 queued (waiting or delayed by run_at), 1 active, 2 completed, 3 dead, 4 cancelled.
-- blocked: true while an earlier unfinished message of the same key exists (ordering keys).
-- Times are epoch milliseconds from the engine's clock (corrected to the database clock).
CREATE TABLE {{schema}}.queues (
  name text PRIMARY KEY,
  settings jsonb NOT NULL DEFAULT '{}',
  paused boolean NOT NULL DEFAULT false,
  rate_window bigint NOT NULL DEFAULT 0,
  rate_count integer NOT NULL DEFAULT 0
);

CREATE SEQUENCE {{schema}}.messages_seq;

CREATE TABLE {{schema}}.messages (
  id text PRIMARY KEY,
  seq bigint NOT NULL,
  queue text NOT NULL,
  state smallint NOT NULL,
  blocked boolean NOT NULL DEFAULT false,
  priority integer NOT NULL,
  run_at bigint NOT NULL,
  payload text NOT NULL,
  result text,
  error text,
  progress text,
  headers text,
  key text,
  dedupe_id text,
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer,
  backoff text,
  lease integer,
  receipt text,
  lease_until bigint,
  cancel_requested boolean NOT NULL DEFAULT false,
  sent_at bigint NOT NULL,
  started_at bigint,
  finished_at bigint,
  purge_at bigint
) WITH (fillfactor = 80);

-- The hot path: only deliverable rows, in delivery order. Finished rows leave every partial index at once.
CREATE INDEX messages_ready ON {{schema}}.messages (queue, priority DESC, run_at, seq) WHERE state = 0 AND NOT blocked;
CREATE INDEX messages_lease ON {{schema}}.messages (lease_until) WHERE state = 1;
CREATE UNIQUE INDEX messages_dedupe ON {{schema}}.messages (queue, dedupe_id) WHERE dedupe_id IS NOT NULL;
CREATE INDEX messages_key ON {{schema}}.messages (queue, key, seq) WHERE key IS NOT NULL AND state <= 1;
CREATE INDEX messages_state ON {{schema}}.messages (queue, state, seq);
CREATE INDEX messages_purge ON {{schema}}.messages (purge_at) WHERE purge_at IS NOT NULL;

CREATE TABLE {{schema}}.subscriptions (
  topic text NOT NULL,
  queue text NOT NULL,
  PRIMARY KEY (topic, queue)
);

-- One row per committed transaction: its events (a JSON array, without seqs) get seq .. seq + n - 1.
-- Seqs come from event_seq, updated as the last statement before COMMIT: its row lock orders commits, so
-- seqs are gapless and commit in order, and a reader tailing by seq never skips a late commit.
CREATE TABLE {{schema}}.events (
  seq bigint PRIMARY KEY,
  n integer NOT NULL,
  at bigint NOT NULL,
  origin text NOT NULL,
  data text NOT NULL
);

CREATE TABLE {{schema}}.event_seq (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  last bigint NOT NULL
);
INSERT INTO {{schema}}.event_seq (one, last) VALUES (true, 0);

-- Events of sends made in a caller's transaction: they cannot hold event_seq until the caller commits, so
-- they wait here, unordered, until a process moves them into the log.
CREATE TABLE {{schema}}.event_inbox (
  id bigserial PRIMARY KEY,
  at bigint NOT NULL,
  data text NOT NULL
);
