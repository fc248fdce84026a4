-- Fewer index entries per message, and cheaper ones.
--
-- Every version of a row had an entry in (queue, state, seq): three per message (sent, claimed, finished),
-- one of the two updates' three index writes. Each state now lives in exactly one partial index, and the
-- readers of the old one (list, stats, redrive, purge, retention) go through those:
--   queued (0)          messages_ready: all of a queue's queued rows, the unblocked ones first, in claim order;
--   active (1)          messages_leases (011);
--   completed and after messages_finished, by state, then the time it finished.
-- A claim and an ack now write two index entries each (the primary key's, and their new state's). The
-- indexes go first, so the collation change below does not rebuild them only to drop them.
DROP INDEX {{schema}}.messages_state;
DROP INDEX {{schema}}.messages_ready;
DROP INDEX {{schema}}.messages_finished;

-- Text keys compare bytewise. Under a database's linguistic collation (en_US.UTF-8, and C.UTF-8 before
-- PostgreSQL 17) every comparison of an id, queue name or key in a B-tree goes through strcoll; `perf record`
-- during a drain had those comparisons at about a tenth of the backends' CPU. The order of names in listings
-- is now byte order, as on SQLite. The rows keep their bytes (the table is not rewritten); the indexes on
-- these columns are rebuilt, holding the table's lock meanwhile: on a large table, the first start after an
-- upgrade takes that long.
ALTER TABLE {{schema}}.messages
  ALTER COLUMN id TYPE text COLLATE "C",
  ALTER COLUMN queue TYPE text COLLATE "C",
  ALTER COLUMN key TYPE text COLLATE "C",
  ALTER COLUMN dedupe_id TYPE text COLLATE "C",
  ALTER COLUMN parent_id TYPE text COLLATE "C";
ALTER TABLE {{schema}}.queues ALTER COLUMN name TYPE text COLLATE "C";
ALTER TABLE {{schema}}.key_rates ALTER COLUMN queue TYPE text COLLATE "C", ALTER COLUMN key TYPE text COLLATE "C";
ALTER TABLE {{schema}}.subscriptions ALTER COLUMN topic TYPE text COLLATE "C", ALTER COLUMN queue TYPE text COLLATE "C";

CREATE INDEX messages_ready ON {{schema}}.messages (queue, blocked, priority DESC, run_at, seq) WHERE state = 0;
CREATE INDEX messages_finished ON {{schema}}.messages (queue, state, finished_at) WHERE state >= 2;

-- A column's type change drops its statistics; the plain queries of the store (list) plan with them.
ANALYZE {{schema}}.messages, {{schema}}.queues, {{schema}}.key_rates, {{schema}}.subscriptions;
