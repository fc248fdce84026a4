-- The event log without a cluster-wide lock on the write path (see functions/events.sql): a writing
-- transaction only appends its block to event_inbox, with no seq; sequence_events numbers committed blocks
-- afterwards. So event_inbox, which held only the events of sends made in callers' transactions, now takes
-- every block: it gains the block's size and the writing process.
ALTER TABLE {{schema}}.event_inbox ADD COLUMN n integer, ADD COLUMN origin text;
UPDATE {{schema}}.event_inbox SET n = json_array_length(data::json), origin = '';
ALTER TABLE {{schema}}.event_inbox ALTER COLUMN n SET NOT NULL, ALTER COLUMN origin SET NOT NULL;

-- Retention is the queue's current setting, read when the sweep runs (as on SQLite), not a time fixed when a
-- message finished: finished rows are found per queue by finish time.
DROP INDEX {{schema}}.messages_purge;
ALTER TABLE {{schema}}.messages DROP COLUMN purge_at;
CREATE INDEX messages_finished ON {{schema}}.messages (queue, finished_at) WHERE state >= 2;

-- The functions of migrations 002-004 are replaced by functions/*.sql, applied after the migrations.
DROP FUNCTION IF EXISTS {{schema}}.step(text[], text[], text[], bigint[], text[], text, int, int, bigint, text, int, int,
  bigint, text, text);
DROP FUNCTION IF EXISTS {{schema}}.claim_items(text, int, int, bigint, text, int, int, bigint);
DROP FUNCTION IF EXISTS {{schema}}.complete_items(text[], text[], text[], bigint[], text[], bigint);
DROP FUNCTION IF EXISTS {{schema}}.send(text[], text[], int[], bigint[], text[], text[], text[], text[], int[], text[],
  int[], bigint, text, text[], text, text);
DROP FUNCTION IF EXISTS {{schema}}.append_events(text, int, bigint, text, text);
DROP FUNCTION IF EXISTS {{schema}}.expire_leases(bigint, text, text, int, bigint);
DROP FUNCTION IF EXISTS {{schema}}.unblock_next(text[], text[]);
DROP FUNCTION IF EXISTS {{schema}}.lock_keys(text[], text[]);
