-- Settling a delivery: complete, fail, release, extend, progress. Each presents the current receipt of a
-- live lease; a stale one changes nothing. Items carry their own time, so calls of one tick share a statement.
-- A live lease is matched by its receipt alone: a message has a receipt exactly while it is leased (state 1;
-- every way out of that state clears it), and receipts are never reused (seq, attempt, a random nonce).
-- Every join of the items to `messages` says `m.id = ANY(p_ids)` and never `m.state = 1`, so the rows can
-- only be found by primary key: given `state = 1`, the planner may read every active lease through
-- messages_leases (and, with stale statistics, loop over them once per item: 40-70 ms a step, seen), and
-- given the join alone it may hash-join a scan of the whole table.

-- Completes leased messages (cancelled instead when a cancel was requested meanwhile); a flow's parents count
-- their children down. Answers, for the items that settled, their 1-based position and new state (pairs in
-- no particular order: the two arrays are aggregated from the same rows, so their entries correspond).
CREATE FUNCTION {{schema}}.complete_items(p_ids text[], p_receipts text[], p_results text[], p_nows bigint[],
  p_ats text[], OUT n int, OUT events text, OUT ords int[], OUT states int[])
LANGUAGE plpgsql AS $$
DECLARE kq text[]; kk text[]; e_ids text[]; e_now bigint; e_at text; e_n int; e_events text;
BEGIN
  WITH u AS (
    UPDATE {{schema}}.messages m
       SET state = CASE WHEN m.cancel_requested THEN 4 ELSE 2 END, result = i.result, finished_at = i.now,
           receipt = NULL, lease_until = NULL, blocked = false
      FROM unnest(p_ids, p_receipts, p_results, p_nows, p_ats) WITH ORDINALITY AS i(id, receipt, result, now, at, ord)
     WHERE m.id = ANY(p_ids) AND m.id = i.id AND m.receipt = i.receipt AND m.lease_until > i.now
    RETURNING i.ord, i.at, i.now, i.result, m.id, m.queue, m.key, m.state, m.attempts, m.parent_id)
  SELECT count(*)::int,
         string_agg(CASE WHEN u.state = 2
                      THEN {{schema}}.event('completed', u.queue, u.id, u.at, u.attempts,
                                            ',"result":' || coalesce(u.result, 'null'))
                      ELSE {{schema}}.event('cancelled', u.queue, u.id, u.at, u.attempts, NULL) END,
                    ',' ORDER BY u.ord),
         array_agg(u.ord::int), array_agg(u.state::int),
         array_agg(u.queue) FILTER (WHERE u.key IS NOT NULL), array_agg(u.key) FILTER (WHERE u.key IS NOT NULL),
         array_agg(u.id) FILTER (WHERE u.parent_id IS NOT NULL), max(u.now), max(u.at)
    INTO n, events, ords, states, kq, kk, e_ids, e_now, e_at FROM u;
  IF kq IS NOT NULL THEN PERFORM {{schema}}.release_keys(kq, kk); END IF;
  -- The hot path (every ack): no call at all when no completed message has a parent.
  IF e_ids IS NOT NULL THEN
    SELECT x.n, x.events INTO e_n, e_events FROM {{schema}}.children_ended(e_ids, e_now, e_at) x;
    IF e_n > 0 THEN n := n + e_n; events := concat_ws(',', events, e_events); END IF;
  END IF;
END $$;

-- Ends failed attempts. The caller has read the leases (settle.ts) and computed, by the engine's backoff,
-- when each would run again (p_run_ats); here the rule: cancelled when a cancel was requested, dead when the
-- item may not retry or its attempts are spent, else queued again at its run_at. Messages made dead are
-- copied to their dead-letter queue.
CREATE FUNCTION {{schema}}.fail_items(p_ids text[], p_receipts text[], p_errors text[], p_retry boolean[],
  p_run_ats bigint[], p_nows bigint[], p_ats text[], p_max_attempts int, p_origin text,
  OUT data text, OUT ords int[], OUT states int[])
LANGUAGE plpgsql AS $$
DECLARE kq text[]; kk text[]; v_n int; v_events text; e_ids text[]; e_n int; e_events text; v_dead text[]; d_n int; d_events text;
BEGIN
  WITH x AS (
    SELECT i.ord, i.at, i.error, i.run_at, i.now, m.id,
           CASE WHEN m.cancel_requested THEN 4
                WHEN NOT i.retry OR m.attempts >= coalesce(m.max_attempts,
                       {{schema}}.queue_setting(m.queue, 'maxAttempts')::int, p_max_attempts) THEN 3
                ELSE 0 END AS state
      FROM unnest(p_ids, p_receipts, p_errors, p_retry, p_run_ats, p_nows, p_ats) WITH ORDINALITY
             AS i(id, receipt, error, retry, run_at, now, at, ord)
      JOIN {{schema}}.messages m ON m.id = i.id AND m.receipt = i.receipt AND m.lease_until > i.now
     WHERE m.id = ANY(p_ids)
     ORDER BY m.id FOR UPDATE OF m),
  u AS (
    UPDATE {{schema}}.messages m
       SET state = x.state, run_at = CASE WHEN x.state = 0 THEN x.run_at ELSE m.run_at END, error = x.error,
           finished_at = CASE WHEN x.state >= 2 THEN x.now END, receipt = NULL, lease_until = NULL, blocked = false
      FROM x WHERE m.id = ANY(p_ids) AND m.id = x.id
    RETURNING x.ord, x.at, x.error, x.run_at, m.id, m.queue, m.key, m.state, m.attempts, m.parent_id)
  SELECT count(*)::int,
         string_agg({{schema}}.event(CASE u.state WHEN 0 THEN 'retrying' WHEN 3 THEN 'dead' ELSE 'cancelled' END,
                      u.queue, u.id, u.at, u.attempts,
                      ',"error":' || u.error || CASE WHEN u.state = 0 THEN ',"runAt":' || u.run_at ELSE '' END),
                    ',' ORDER BY u.ord),
         array_agg(u.ord::int), array_agg(u.state::int),
         array_agg(u.queue) FILTER (WHERE u.key IS NOT NULL AND u.state >= 2),
         array_agg(u.key) FILTER (WHERE u.key IS NOT NULL AND u.state >= 2),
         array_agg(u.id) FILTER (WHERE u.parent_id IS NOT NULL AND u.state >= 2),
         array_agg(u.id) FILTER (WHERE u.state = 3)
    INTO v_n, v_events, ords, states, kq, kk, e_ids, v_dead FROM u;
  IF kq IS NOT NULL THEN PERFORM {{schema}}.release_keys(kq, kk); END IF;
  IF v_dead IS NOT NULL THEN
    SELECT d.n, d.events INTO d_n, d_events FROM {{schema}}.dead_letter(v_dead, p_nows[1], p_ats[1]) d;
    IF d_n > 0 THEN
      v_events := v_events || ',' || d_events;
      v_n := v_n + d_n;
    END IF;
  END IF;
  SELECT x.n, x.events INTO e_n, e_events FROM {{schema}}.children_ended(e_ids, p_nows[1], p_ats[1]) x;
  IF e_n > 0 THEN v_n := v_n + e_n; v_events := concat_ws(',', v_events, e_events); END IF;
  data := {{schema}}.stage_events(v_events, v_n, p_nows[1], p_origin);
END $$;

-- Hands leased messages back unprocessed: the attempt is not counted (cancelled instead when a cancel was
-- requested meanwhile).
CREATE FUNCTION {{schema}}.release_items(p_ids text[], p_receipts text[], p_now bigint, p_at text, p_origin text,
  OUT data text, OUT ords int[], OUT states int[])
LANGUAGE plpgsql AS $$
DECLARE kq text[]; kk text[]; v_n int; v_events text; e_ids text[]; e_n int; e_events text;
BEGIN
  WITH u AS (
    UPDATE {{schema}}.messages m
       SET state = CASE WHEN m.cancel_requested THEN 4 ELSE 0 END,
           attempts = CASE WHEN m.cancel_requested THEN m.attempts ELSE m.attempts - 1 END,
           run_at = CASE WHEN m.cancel_requested THEN m.run_at ELSE p_now END,
           finished_at = CASE WHEN m.cancel_requested THEN p_now END,
           receipt = NULL, lease_until = NULL, blocked = CASE WHEN m.cancel_requested THEN false ELSE m.blocked END
      FROM unnest(p_ids, p_receipts) WITH ORDINALITY AS i(id, receipt, ord)
     WHERE m.id = ANY(p_ids) AND m.id = i.id AND m.receipt = i.receipt AND m.lease_until > p_now
    RETURNING i.ord, m.id, m.queue, m.key, m.state, m.attempts, m.parent_id)
  SELECT count(*)::int,
         string_agg(CASE WHEN u.state = 0
                      THEN {{schema}}.event('retrying', u.queue, u.id, p_at, u.attempts, ',"runAt":' || p_now)
                      ELSE {{schema}}.event('cancelled', u.queue, u.id, p_at, u.attempts, NULL) END,
                    ',' ORDER BY u.ord),
         array_agg(u.ord::int), array_agg(u.state::int),
         array_agg(u.queue) FILTER (WHERE u.key IS NOT NULL AND u.state >= 2),
         array_agg(u.key) FILTER (WHERE u.key IS NOT NULL AND u.state >= 2),
         array_agg(u.id) FILTER (WHERE u.parent_id IS NOT NULL AND u.state >= 2)
    INTO v_n, v_events, ords, states, kq, kk, e_ids FROM u;
  IF kq IS NOT NULL THEN PERFORM {{schema}}.release_keys(kq, kk); END IF;
  SELECT x.n, x.events INTO e_n, e_events FROM {{schema}}.children_ended(e_ids, p_now, p_at) x;
  IF e_n > 0 THEN v_n := v_n + e_n; v_events := concat_ws(',', v_events, e_events); END IF;
  data := {{schema}}.stage_events(v_events, v_n, p_now, p_origin);
END $$;

-- Moves a live lease's end, never past the attempt's deadline; null when the receipt is stale or a cancel was
-- requested.
CREATE FUNCTION {{schema}}.extend_lease(p_id text, p_receipt text, p_now bigint, p_until bigint) RETURNS bigint
LANGUAGE sql AS $$
  UPDATE {{schema}}.messages SET lease_until = least(p_until, deadline)
   WHERE id = p_id AND receipt = p_receipt AND state = 1 AND lease_until > p_now AND NOT cancel_requested
  RETURNING lease_until
$$;

-- Records a handler's progress (JSON text) on a live lease; false when the receipt is stale.
CREATE FUNCTION {{schema}}.progress_item(p_id text, p_receipt text, p_value text, p_now bigint, p_at text,
  p_origin text, OUT ok boolean, OUT data text)
LANGUAGE plpgsql AS $$
DECLARE v_queue text; v_attempts int;
BEGIN
  UPDATE {{schema}}.messages SET progress = p_value
   WHERE id = p_id AND receipt = p_receipt AND state = 1 AND lease_until > p_now
  RETURNING queue, attempts INTO v_queue, v_attempts;
  ok := FOUND;
  IF ok THEN
    data := {{schema}}.stage_events({{schema}}.event('progress', v_queue, p_id, p_at, v_attempts,
                                                     ',"progress":' || p_value), 1, p_now, p_origin);
  END IF;
END $$;
