-- Administration that changes state: configure, cancel, retry, redrive, purge. Reads (get, list, stats,
-- settings) are plain queries in admin.ts.

-- Merges p_settings into the queue's settings (creating the queue), and p_paused when not null. A change of
-- keyConcurrency re-balances the queue's keys under its exclusive key lock (keys.sql).
CREATE FUNCTION {{schema}}.configure_queue(p_queue text, p_settings jsonb, p_paused boolean,
  OUT settings jsonb, OUT paused boolean)
LANGUAGE plpgsql AS $$
DECLARE v_before int;
BEGIN
  IF p_settings ? 'keyConcurrency' THEN
    PERFORM {{schema}}.lock_queue_keys(p_queue);
    SELECT coalesce((q.settings->>'keyConcurrency')::int, 1) INTO v_before FROM {{schema}}.queues q WHERE q.name = p_queue;
  END IF;
  INSERT INTO {{schema}}.queues AS q (name, settings, paused) VALUES (p_queue, p_settings, coalesce(p_paused, false))
  ON CONFLICT (name) DO UPDATE SET settings = q.settings || excluded.settings, paused = coalesce(p_paused, q.paused)
  RETURNING q.settings, q.paused INTO settings, paused;
  IF p_settings ? 'keyConcurrency' AND (p_settings->>'keyConcurrency')::int <> coalesce(v_before, 1) THEN
    PERFORM {{schema}}.set_key_concurrency(p_queue, (p_settings->>'keyConcurrency')::int);
  END IF;
END $$;

-- When message p_id is active on a lease that ran out, settles that lease first (as a claim or the sweep
-- would), so an admin action acts on the message's true state. Answers the events (comma-joined), if any.
CREATE FUNCTION {{schema}}.settle_lapsed(p_id text, p_now bigint, p_at text, p_max_attempts int,
  OUT n int, OUT events text)
LANGUAGE plpgsql AS $$
DECLARE v_queue text;
BEGIN
  n := 0;
  SELECT m.queue INTO v_queue FROM {{schema}}.messages m WHERE m.id = p_id AND m.state = 1 AND m.lease_until <= p_now;
  IF NOT FOUND THEN RETURN; END IF;
  SELECT x.n_events, x.events INTO n, events FROM {{schema}}.expire_leases(p_now, p_at, v_queue, p_max_attempts) x;
END $$;

-- Cancels a queued or pending message at once, or flags an active one (its handler is told; it ends
-- cancelled), and its unfinished flow descendants likewise; a parent counts the cancelled child as ended. A
-- finished message is left as it is.
CREATE FUNCTION {{schema}}.cancel_message(p_id text, p_now bigint, p_at text, p_max_attempts int, p_origin text,
  OUT data text)
LANGUAGE plpgsql AS $$
DECLARE v_queue text; v_key text; v_attempts int; v_parent text; v_n int; v_events text; x record;
BEGIN
  SELECT s.n, s.events INTO v_n, v_events FROM {{schema}}.settle_lapsed(p_id, p_now, p_at, p_max_attempts) s;
  UPDATE {{schema}}.messages SET state = 4, finished_at = p_now, receipt = NULL, lease_until = NULL, blocked = false
   WHERE id = p_id AND state IN (0, 5)
  RETURNING queue, key, attempts, parent_id INTO v_queue, v_key, v_attempts, v_parent;
  IF FOUND THEN
    PERFORM {{schema}}.release_keys(ARRAY[v_queue], ARRAY[v_key]);
    v_events := concat_ws(',', v_events, {{schema}}.event('cancelled', v_queue, p_id, p_at, v_attempts, NULL));
    v_n := v_n + 1;
    SELECT c.n, c.events INTO x FROM {{schema}}.cancel_below(p_id, p_now, p_at) c;
    IF x.n > 0 THEN v_events := concat_ws(',', v_events, x.events); v_n := v_n + x.n; END IF;
    IF v_parent IS NOT NULL THEN
      SELECT c.n, c.events INTO x
        FROM {{schema}}.children_report(ARRAY[p_id], ARRAY[v_queue], ARRAY[v_parent], ARRAY[4], p_now, p_at) c;
      IF x.n > 0 THEN v_events := concat_ws(',', v_events, x.events); v_n := v_n + x.n; END IF;
    END IF;
  ELSE
    UPDATE {{schema}}.messages SET cancel_requested = true WHERE id = p_id AND state = 1;
    IF FOUND THEN
      SELECT c.n, c.events INTO x FROM {{schema}}.cancel_below(p_id, p_now, p_at) c;
      IF x.n > 0 THEN v_events := concat_ws(',', v_events, x.events); v_n := v_n + x.n; END IF;
    END IF;
  END IF;
  data := {{schema}}.stage_events(v_events, v_n, p_now, p_origin);
END $$;

-- Makes dead or cancelled messages (p_ids, of the states p_from) queued again with fresh attempts; a keyed one
-- waits behind its key's unfinished messages, and a pending parent waits for its revived children again.
-- Answers how many, and their `retrying` events.
CREATE FUNCTION {{schema}}.revive(p_ids text[], p_from int[], p_now bigint, p_at text, OUT n int, OUT events text)
LANGUAGE plpgsql AS $$
DECLARE kq text[]; kk text[]; v_parents text[];
BEGIN
  WITH u AS (
    UPDATE {{schema}}.messages SET state = 0, blocked = key IS NOT NULL, attempts = 0, run_at = p_now, result = NULL,
           finished_at = NULL, cancel_requested = false, progress = NULL
     WHERE id = ANY(p_ids) AND state = ANY(p_from)
    RETURNING id, queue, key, seq, parent_id)
  SELECT count(*)::int,
         string_agg({{schema}}.event('retrying', u.queue, u.id, p_at, 0, ',"runAt":' || p_now), ',' ORDER BY u.seq),
         array_agg(u.queue) FILTER (WHERE u.key IS NOT NULL), array_agg(u.key) FILTER (WHERE u.key IS NOT NULL),
         array_agg(u.parent_id) FILTER (WHERE u.parent_id IS NOT NULL)
    INTO n, events, kq, kk, v_parents FROM u;
  IF v_parents IS NOT NULL THEN PERFORM {{schema}}.children_revived(v_parents); END IF;
  IF kq IS NOT NULL THEN PERFORM {{schema}}.release_keys(kq, kk); END IF;
END $$;

-- Retries one message: a dead or cancelled one is queued again with fresh attempts; a delayed one becomes
-- due now. Others are left as they are.
CREATE FUNCTION {{schema}}.retry_message(p_id text, p_now bigint, p_at text, p_max_attempts int, p_origin text,
  OUT data text)
LANGUAGE plpgsql AS $$
DECLARE v_n int; v_events text; r_n int; r_events text;
BEGIN
  SELECT x.n, x.events INTO v_n, v_events FROM {{schema}}.settle_lapsed(p_id, p_now, p_at, p_max_attempts) x;
  SELECT x.n, x.events INTO r_n, r_events FROM {{schema}}.revive(ARRAY[p_id], ARRAY[3, 4], p_now, p_at) x;
  IF r_n = 0 THEN
    UPDATE {{schema}}.messages SET run_at = p_now WHERE id = p_id AND state = 0 AND run_at > p_now;
  END IF;
  data := {{schema}}.stage_events(concat_ws(',', v_events, r_events), v_n + r_n, p_now, p_origin);
END $$;

-- Queues every dead message of p_queue again, in batches of 1000, in the order they died (the order of the
-- index on finished messages, so each batch reads its own rows only). Answers how many.
CREATE FUNCTION {{schema}}.redrive_queue(p_queue text, p_now bigint, p_at text, p_origin text,
  OUT moved int, OUT data text)
LANGUAGE plpgsql AS $$
DECLARE v_ids text[]; v_n int; v_events text; v_all text;
BEGIN
  moved := 0;
  LOOP
    SELECT array_agg(x.id) INTO v_ids
      FROM (SELECT m.id FROM {{schema}}.messages m WHERE m.queue = p_queue AND m.state = 3 ORDER BY m.finished_at LIMIT 1000) x;
    EXIT WHEN v_ids IS NULL;
    SELECT r.n, r.events INTO v_n, v_events FROM {{schema}}.revive(v_ids, ARRAY[3], p_now, p_at) r;
    moved := moved + v_n;
    IF v_n > 0 THEN v_all := CASE WHEN v_all IS NULL THEN v_events ELSE v_all || ',' || v_events END; END IF;
    EXIT WHEN cardinality(v_ids) < 1000;
  END LOOP;
  data := {{schema}}.stage_events(v_all, moved, p_now, p_origin);
END $$;

-- Removes p_queue's messages in the given states (codes; waiting and delayed are queued rows split by run_at).
-- Rows first, then their keys, so the next message of a key whose head was removed can go. An unfinished flow
-- child removed counts for its parent as cancelled.
CREATE FUNCTION {{schema}}.purge_queue(p_queue text, p_states int[], p_waiting boolean, p_delayed boolean,
  p_now bigint, p_at text, p_origin text, OUT purged int, OUT data text)
LANGUAGE plpgsql AS $$
DECLARE kk text[]; e_ids text[]; e_parents text[]; v_n int := 0; v_events text;
BEGIN
  -- The rows are found through the index of each state (no index holds every state) and deleted by id,
  -- their state checked again as they are.
  WITH d AS (
    DELETE FROM {{schema}}.messages m
     WHERE m.id = ANY(ARRAY(
             SELECT x.id FROM {{schema}}.messages x
              WHERE x.queue = p_queue AND x.state = 0
                AND ((p_waiting AND x.run_at <= p_now) OR (p_delayed AND x.run_at > p_now))
             UNION ALL
             SELECT x.id FROM {{schema}}.messages x WHERE x.queue = p_queue AND x.state = 1 AND 1 = ANY(p_states)
             UNION ALL
             SELECT x.id FROM {{schema}}.messages x
              WHERE x.queue = p_queue AND x.state >= 2 AND x.state = ANY(p_states)))
       AND m.queue = p_queue
       AND (m.state = ANY(p_states)
            OR (m.state = 0 AND ((p_waiting AND m.run_at <= p_now) OR (p_delayed AND m.run_at > p_now))))
    RETURNING m.id, m.queue, m.key, m.state, m.parent_id)
  SELECT count(*)::int, array_agg(DISTINCT d.key) FILTER (WHERE d.key IS NOT NULL),
         array_agg(d.id) FILTER (WHERE d.parent_id IS NOT NULL AND d.state IN (0, 1, 5)),
         array_agg(d.parent_id) FILTER (WHERE d.parent_id IS NOT NULL AND d.state IN (0, 1, 5))
    INTO purged, kk, e_ids, e_parents FROM d;
  IF kk IS NOT NULL THEN
    PERFORM {{schema}}.release_keys(array_fill(p_queue, ARRAY[cardinality(kk)]), kk);
  END IF;
  IF e_ids IS NOT NULL THEN
    SELECT x.n, x.events INTO v_n, v_events
      FROM {{schema}}.children_report(e_ids, array_fill(p_queue, ARRAY[cardinality(e_ids)]), e_parents,
                                     array_fill(4, ARRAY[cardinality(e_ids)]), p_now, p_at) x;
  END IF;
  data := {{schema}}.stage_events(v_events, v_n, p_now, p_origin);
END $$;

-- Each named queue's count of messages by state, the queued ones also counted as delayed (run_at past
-- p_now): every state from its own index (no index holds them all, see migration 012), and never by reading
-- the table, however many queues there are (the planner settings every function of the store has).
CREATE FUNCTION {{schema}}.queue_counts(p_names text[], p_now bigint)
  RETURNS TABLE (name text, state int, n bigint, later bigint)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY
    SELECT q.name, c.state, c.n, c.later
      FROM unnest(p_names) AS q(name)
      CROSS JOIN LATERAL (
        SELECT 0 AS state, count(*) AS n, count(*) FILTER (WHERE m.run_at > p_now) AS later
          FROM {{schema}}.messages m WHERE m.queue = q.name AND m.state = 0
        UNION ALL
        SELECT 1, count(*), 0 FROM {{schema}}.messages m WHERE m.queue = q.name AND m.state = 1
        UNION ALL
        SELECT m.state, count(*), 0 FROM {{schema}}.messages m WHERE m.queue = q.name AND m.state >= 2
         GROUP BY m.state) c;
END $$;
