-- Webhooks: endpoints, the fan-out cursor and the deliveries log.

-- Creates or replaces an endpoint (a replacement keeps created_at). The first endpoint moves the cursor to
-- the end of the log, so it receives events from now on, not the retained history. The lock on the cursor
-- row orders concurrent first puts.
CREATE FUNCTION {{schema}}.put_webhook(p_name text, p_url text, p_queues text[], p_types text[], p_secret text,
  p_at bigint)
RETURNS SETOF {{schema}}.webhooks LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM {{schema}}.webhook_cursor WHERE id = 1 FOR UPDATE;
  IF NOT EXISTS (SELECT 1 FROM {{schema}}.webhooks) THEN
    UPDATE {{schema}}.webhook_cursor SET seq = greatest(seq, (SELECT e.last FROM {{schema}}.event_seq e))
     WHERE id = 1;
  END IF;
  RETURN QUERY
  INSERT INTO {{schema}}.webhooks AS w (name, url, queues, types, secret, created_at, updated_at)
  VALUES (p_name, p_url, p_queues, p_types, p_secret, p_at, p_at)
  ON CONFLICT (name) DO UPDATE SET url = excluded.url, queues = excluded.queues, types = excluded.types,
    secret = excluded.secret, updated_at = excluded.updated_at
  RETURNING w.*;
END $$;

-- Removes an endpoint and its deliveries log; answers whether it existed.
CREATE FUNCTION {{schema}}.delete_webhook(p_name text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {{schema}}.webhook_attempts WHERE webhook = p_name;
  DELETE FROM {{schema}}.webhooks WHERE name = p_name;
  RETURN FOUND;
END $$;

-- The fan-out step: when the cursor is at p_from, inserts the deliveries (through `send`, like any message)
-- and moves the cursor to p_to, in this one transaction; else changes nothing (another process moved it).
-- A concurrent step waits on the cursor row, then finds it moved: each event fans out once.
CREATE FUNCTION {{schema}}.advance_webhooks(p_from bigint, p_to bigint,
  p_ids text[], p_queues text[], p_priorities int[], p_run_ats bigint[], p_payloads text[], p_headers text[],
  p_keys text[], p_dedupes text[], p_max_attempts int[], p_backoffs text[], p_leases int[], p_timeouts int[],
  p_now bigint, p_at text, p_origin text, OUT advanced boolean, OUT data text)
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE {{schema}}.webhook_cursor SET seq = p_to WHERE id = 1 AND seq = p_from;
  advanced := FOUND;
  IF NOT advanced OR cardinality(p_ids) = 0 THEN RETURN; END IF;
  SELECT s.data INTO data
    FROM {{schema}}.send(p_ids, p_queues, p_priorities, p_run_ats, p_payloads, p_headers, p_keys, p_dedupes,
                         p_max_attempts, p_backoffs, p_leases, p_timeouts, p_now, p_at,
                         ARRAY(SELECT DISTINCT unnest(p_queues)), p_origin, true) s;
END $$;

-- Appends attempts to the deliveries log (arrays, one element per attempt) and keeps the newest p_keep of
-- each webhook named.
CREATE FUNCTION {{schema}}.record_webhook_attempts(p_webhooks text[], p_delivery_ids text[], p_seqs bigint[],
  p_types text[], p_queues text[], p_message_ids text[], p_attempts int[], p_statuses int[], p_errors text[],
  p_outcomes text[], p_ats bigint[], p_durations int[], p_keep int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_name text;
BEGIN
  INSERT INTO {{schema}}.webhook_attempts (webhook, delivery_id, seq, type, queue, message_id, attempt, status,
    error, outcome, at, duration_ms)
  SELECT * FROM unnest(p_webhooks, p_delivery_ids, p_seqs, p_types, p_queues, p_message_ids, p_attempts,
                       p_statuses, p_errors, p_outcomes, p_ats, p_durations);
  FOR v_name IN SELECT DISTINCT unnest(p_webhooks) LOOP
    DELETE FROM {{schema}}.webhook_attempts
     WHERE webhook = v_name AND id <= (SELECT a.id FROM {{schema}}.webhook_attempts a WHERE a.webhook = v_name
                                        ORDER BY a.id DESC OFFSET p_keep LIMIT 1);
  END LOOP;
END $$;
