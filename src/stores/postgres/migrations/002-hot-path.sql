-- The hot path as functions, so that a send, a claim or a batch of acks is one statement: one round trip,
-- its own transaction (autocommit), with its events appended last. The event_seq row lock that keeps the log
-- gapless and in commit order is then held from the append to the COMMIT only, with no client round trip
-- in between. Defaults of queue settings come in as parameters, so the code stays their one source.
-- Events are built here as JSON text, in the stored order of keys (type, queue, id, at, attempt, result,
-- error, progress, runAt); `at` arrives as the ISO string the engine's clock gave.

-- Ordering keys: transaction-level advisory locks, taken in sorted order so batches cannot deadlock.
CREATE FUNCTION {{schema}}.lock_keys(p_queues text[], p_keys text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(x.h)
     FROM (SELECT DISTINCT hashtextextended('{{schema}}' || E'\n' || u.q || E'\n' || u.k, 0) AS h
             FROM unnest(p_queues, p_keys) AS u(q, k) WHERE u.k IS NOT NULL ORDER BY 1) x;
END $$;

-- For each key: when no unfinished message of it is unblocked, unblocks the earliest unfinished one.
CREATE FUNCTION {{schema}}.unblock_next(p_queues text[], p_keys text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE {{schema}}.messages m SET blocked = false
    FROM (SELECT DISTINCT ON (x.queue, x.key) x.id
            FROM {{schema}}.messages x
            JOIN unnest(p_queues, p_keys) AS k(queue, key) ON x.queue = k.queue AND x.key = k.key
           WHERE x.key IS NOT NULL AND x.state <= 1
           ORDER BY x.queue, x.key, x.seq) head
   WHERE m.id = head.id AND m.blocked
     AND NOT EXISTS (SELECT 1 FROM {{schema}}.messages y
                      WHERE y.queue = m.queue AND y.key = m.key AND y.state <= 1 AND NOT y.blocked);
END $$;

-- Appends one block of events (a JSON array text of p_n events) and notifies; answers its first seq.
CREATE FUNCTION {{schema}}.append_events(p_data text, p_n int, p_at bigint, p_origin text, p_channel text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE v_last bigint;
BEGIN
  UPDATE {{schema}}.event_seq SET last = last + p_n RETURNING last INTO v_last;
  INSERT INTO {{schema}}.events (seq, n, at, origin, data) VALUES (v_last - p_n + 1, p_n, p_at, p_origin, p_data);
  PERFORM pg_notify(p_channel, p_origin || ':' || v_last);
  RETURN v_last - p_n + 1;
END $$;

-- Settles leases that ran out (of p_queue, or any when null; up to 1000): redelivered, dead or cancelled.
CREATE FUNCTION {{schema}}.expire_leases(p_now bigint, p_at text, p_queue text, p_max_attempts int, p_retention bigint,
  OUT n int, OUT events text) LANGUAGE plpgsql AS $$
DECLARE kq text[]; kk text[];
BEGIN
  WITH x AS (
    SELECT m.id, m.cancel_requested,
           m.attempts >= coalesce(m.max_attempts,
             (SELECT (q.settings->>'maxAttempts')::int FROM {{schema}}.queues q WHERE q.name = m.queue), p_max_attempts) AS used_up,
           coalesce((SELECT (q.settings->>'retention')::bigint FROM {{schema}}.queues q WHERE q.name = m.queue),
                    p_retention) AS retention
      FROM {{schema}}.messages m
     WHERE m.state = 1 AND m.lease_until <= p_now AND (p_queue IS NULL OR m.queue = p_queue)
     ORDER BY m.lease_until LIMIT 1000 FOR UPDATE SKIP LOCKED),
  u AS (
    UPDATE {{schema}}.messages m
       SET state = CASE WHEN x.cancel_requested THEN 4 WHEN x.used_up THEN 3 ELSE 0 END,
           run_at = CASE WHEN x.cancel_requested OR x.used_up THEN m.run_at ELSE p_now END,
           finished_at = CASE WHEN x.cancel_requested OR x.used_up THEN p_now END,
           purge_at = CASE WHEN x.cancel_requested OR x.used_up THEN p_now + x.retention END,
           error = '{"message":"lease expired","name":"LeaseExpired"}', receipt = NULL, lease_until = NULL,
           blocked = false
      FROM x WHERE m.id = x.id
    RETURNING m.id, m.queue, m.key, m.state, m.attempts, m.seq)
  SELECT count(*)::int,
         string_agg(CASE WHEN u.state = 0
           THEN json_build_object('type', 'retrying', 'queue', u.queue, 'id', u.id, 'at', p_at, 'attempt', u.attempts,
                  'error', '{"message":"lease expired","name":"LeaseExpired"}'::json, 'runAt', p_now)
           ELSE json_build_object('type', CASE WHEN u.state = 3 THEN 'dead' ELSE 'cancelled' END, 'queue', u.queue,
                  'id', u.id, 'at', p_at, 'attempt', u.attempts,
                  'error', '{"message":"lease expired","name":"LeaseExpired"}'::json) END::text, ',' ORDER BY u.seq),
         array_agg(u.queue) FILTER (WHERE u.key IS NOT NULL AND u.state >= 2),
         array_agg(u.key) FILTER (WHERE u.key IS NOT NULL AND u.state >= 2)
    INTO n, events, kq, kk FROM u;
  IF kq IS NOT NULL THEN
    PERFORM {{schema}}.lock_keys(kq, kk);
    PERFORM {{schema}}.unblock_next(kq, kk);
  END IF;
END $$;

-- Leases up to p_max deliverable messages of p_queue (expired leases of the queue settled first); the rows
-- come back as a JSON array in delivery order, their `active` events as comma-joined JSON objects.
CREATE FUNCTION {{schema}}.claim_items(p_queue text, p_max int, p_lease int, p_now bigint, p_at text,
  p_default_lease int, p_max_attempts int, p_retention bigint,
  OUT n int, OUT events text, OUT claimed json) LANGUAGE plpgsql AS $$
DECLARE
  v_settings jsonb; v_paused boolean; v_limit int := p_max; v_conc int; v_rmax int; v_rper bigint;
  v_window bigint := 0; v_count int := 0; v_active int; v_n int; v_events text;
BEGIN
  n := 0;
  SELECT q.settings, q.paused INTO v_settings, v_paused FROM {{schema}}.queues q WHERE q.name = p_queue;
  IF EXISTS (SELECT 1 FROM {{schema}}.messages m WHERE m.state = 1 AND m.lease_until <= p_now AND m.queue = p_queue) THEN
    SELECT x.n, x.events INTO n, events FROM {{schema}}.expire_leases(p_now, p_at, p_queue, p_max_attempts, p_retention) x;
  END IF;
  IF coalesce(v_paused, false) THEN RETURN; END IF;
  v_conc := (v_settings->>'concurrency')::int;
  v_rmax := (v_settings->'rateLimit'->>'max')::int;
  v_rper := (v_settings->'rateLimit'->>'per')::bigint;
  IF v_conc IS NOT NULL OR v_rmax IS NOT NULL THEN
    -- Limits hold across processes: claimers of a limited queue serialize on its row.
    SELECT q.rate_window, q.rate_count INTO v_window, v_count FROM {{schema}}.queues q WHERE q.name = p_queue FOR UPDATE;
    IF v_conc IS NOT NULL THEN
      SELECT count(*) INTO v_active FROM {{schema}}.messages m WHERE m.queue = p_queue AND m.state = 1;
      v_limit := least(v_limit, v_conc - v_active);
    END IF;
    IF v_rmax IS NOT NULL THEN
      IF p_now >= coalesce(v_window, 0) + v_rper THEN v_window := p_now; v_count := 0; END IF;
      v_limit := least(v_limit, v_rmax - coalesce(v_count, 0));
    END IF;
  END IF;
  IF v_limit <= 0 THEN RETURN; END IF;
  WITH picked AS (
    SELECT m.id FROM {{schema}}.messages m
     WHERE m.queue = p_queue AND m.state = 0 AND NOT m.blocked AND m.run_at <= p_now
     ORDER BY m.priority DESC, m.run_at, m.seq
     LIMIT v_limit FOR UPDATE SKIP LOCKED),
  u AS (
    UPDATE {{schema}}.messages m
       SET state = 1, attempts = m.attempts + 1, receipt = gen_random_uuid()::text, started_at = p_now,
           lease_until = p_now + coalesce(p_lease, m.lease, (v_settings->>'lease')::int, p_default_lease)
      FROM picked WHERE m.id = picked.id
    RETURNING m.seq, m.id, m.payload, m.attempts, m.receipt, m.priority, m.run_at, m.key, m.headers, m.sent_at,
              m.lease_until)
  SELECT count(*)::int,
         json_agg(json_build_object('id', u.id, 'payload', u.payload, 'attempt', u.attempts, 'receipt', u.receipt,
                    'priority', u.priority, 'key', u.key, 'headers', u.headers, 'sentAt', u.sent_at,
                    'leaseUntil', u.lease_until) ORDER BY u.priority DESC, u.run_at, u.seq),
         string_agg(json_build_object('type', 'active', 'queue', p_queue, 'id', u.id, 'at', p_at,
                      'attempt', u.attempts)::text, ',' ORDER BY u.priority DESC, u.run_at, u.seq)
    INTO v_n, claimed, v_events FROM u;
  IF v_n = 0 THEN RETURN; END IF;
  IF v_rmax IS NOT NULL THEN
    UPDATE {{schema}}.queues SET rate_window = v_window, rate_count = coalesce(v_count, 0) + v_n WHERE name = p_queue;
  END IF;
  events := CASE WHEN events IS NULL THEN v_events ELSE events || ',' || v_events END;
  n := n + v_n;
END $$;

-- Completes leased messages; each item carries its own time. Answers, for the items that settled, their
-- 1-based position and new state.
CREATE FUNCTION {{schema}}.complete_items(p_ids text[], p_receipts text[], p_results text[], p_nows bigint[],
  p_ats text[], p_retention bigint, OUT n int, OUT events text, OUT ords int[], OUT states int[])
LANGUAGE plpgsql AS $$
DECLARE kq text[]; kk text[];
BEGIN
  WITH u AS (
    UPDATE {{schema}}.messages m
       SET state = CASE WHEN m.cancel_requested THEN 4 ELSE 2 END, result = i.result, finished_at = i.now,
           purge_at = i.now + coalesce((SELECT (q.settings->>'retention')::bigint FROM {{schema}}.queues q
                                         WHERE q.name = m.queue), p_retention),
           receipt = NULL, lease_until = NULL, blocked = false
      FROM unnest(p_ids, p_receipts, p_results, p_nows, p_ats) WITH ORDINALITY AS i(id, receipt, result, now, at, ord)
     WHERE m.id = i.id AND m.receipt = i.receipt AND m.state = 1 AND m.lease_until > i.now
    RETURNING i.ord, i.at, i.result, m.id, m.queue, m.key, m.state, m.attempts)
  SELECT count(*)::int,
         string_agg(CASE WHEN u.state = 2
           THEN json_build_object('type', 'completed', 'queue', u.queue, 'id', u.id, 'at', u.at, 'attempt', u.attempts,
                  'result', u.result::json)
           ELSE json_build_object('type', 'cancelled', 'queue', u.queue, 'id', u.id, 'at', u.at,
                  'attempt', u.attempts) END::text, ',' ORDER BY u.ord),
         array_agg(u.ord::int ORDER BY u.ord), array_agg(u.state::int ORDER BY u.ord),
         array_agg(u.queue) FILTER (WHERE u.key IS NOT NULL), array_agg(u.key) FILTER (WHERE u.key IS NOT NULL)
    INTO n, events, ords, states, kq, kk FROM u;
  IF kq IS NOT NULL THEN
    PERFORM {{schema}}.lock_keys(kq, kk);
    PERFORM {{schema}}.unblock_next(kq, kk);
  END IF;
END $$;

-- One round trip of the worker cycle: the acks that arrived in one tick, then one claim, then their events
-- as one block. Either part may be absent (null arrays, null queue).
CREATE FUNCTION {{schema}}.step(
  c_ids text[], c_receipts text[], c_results text[], c_nows bigint[], c_ats text[],
  q_queue text, q_max int, q_lease int, q_now bigint, q_at text,
  p_default_lease int, p_max_attempts int, p_retention bigint, p_origin text, p_channel text,
  OUT first_seq bigint, OUT data text, OUT c_ords int[], OUT c_states int[], OUT claimed json)
LANGUAGE plpgsql AS $$
DECLARE v_n int := 0; v_events text; c_n int; c_events text; q_n int; q_events text; v_at bigint;
BEGIN
  IF c_ids IS NOT NULL AND cardinality(c_ids) > 0 THEN
    SELECT x.n, x.events, x.ords, x.states INTO c_n, c_events, c_ords, c_states
      FROM {{schema}}.complete_items(c_ids, c_receipts, c_results, c_nows, c_ats, p_retention) x;
    v_n := c_n; v_events := c_events; v_at := c_nows[1];
  END IF;
  IF q_queue IS NOT NULL THEN
    SELECT x.n, x.events, x.claimed INTO q_n, q_events, claimed
      FROM {{schema}}.claim_items(q_queue, q_max, q_lease, q_now, q_at, p_default_lease, p_max_attempts, p_retention) x;
    IF q_n > 0 THEN
      v_events := CASE WHEN v_events IS NULL THEN q_events ELSE v_events || ',' || q_events END;
      v_n := v_n + q_n;
      v_at := coalesce(v_at, q_now);
    END IF;
  END IF;
  IF v_n > 0 THEN
    data := '[' || v_events || ']';
    first_seq := {{schema}}.append_events(data, v_n, v_at, p_origin, p_channel);
  END IF;
END $$;

-- Inserts messages in order (dedupe and ordering keys applied), appends a `sent` event per new one. Answers
-- null ids when every message was inserted; else every message's id and whether it was deduplicated.
CREATE FUNCTION {{schema}}.send(
  p_ids text[], p_queues text[], p_priorities int[], p_run_ats bigint[], p_payloads text[], p_headers text[],
  p_keys text[], p_dedupes text[], p_max_attempts int[], p_backoffs text[], p_leases int[],
  p_now bigint, p_at text, p_new_queues text[], p_origin text, p_channel text,
  OUT first_seq bigint, OUT data text, OUT ids text[], OUT deduplicated boolean[])
LANGUAGE plpgsql AS $$
DECLARE v_n int; v_events text; v_keyed boolean; kq text[]; kk text[];
BEGIN
  IF p_new_queues IS NOT NULL AND cardinality(p_new_queues) > 0 THEN
    INSERT INTO {{schema}}.queues (name) SELECT DISTINCT unnest(p_new_queues) ON CONFLICT (name) DO NOTHING;
  END IF;
  v_keyed := EXISTS (SELECT 1 FROM unnest(p_keys) k WHERE k IS NOT NULL);
  IF v_keyed THEN PERFORM {{schema}}.lock_keys(p_queues, p_keys); END IF;
  -- A keyed message is blocked when its key has an unfinished message, or an earlier one in this batch.
  WITH ins AS (
    INSERT INTO {{schema}}.messages (id, seq, queue, state, blocked, priority, run_at, payload, headers, key,
      dedupe_id, max_attempts, backoff, lease, sent_at)
    SELECT u.id, nextval('{{schema}}.messages_seq'), u.queue, 0,
           u.key IS NOT NULL AND (u.first < u.ord OR EXISTS (SELECT 1 FROM {{schema}}.messages x
             WHERE x.queue = u.queue AND x.key = u.key AND x.state <= 1)),
           u.priority, u.run_at, u.payload, u.headers, u.key, u.dedupe_id, u.max_attempts, u.backoff, u.lease, p_now
      FROM (SELECT t.*, min(t.ord) OVER (PARTITION BY t.queue, t.key) AS first
              FROM unnest(p_ids, p_queues, p_priorities, p_run_ats, p_payloads, p_headers, p_keys, p_dedupes,
                          p_max_attempts, p_backoffs, p_leases) WITH ORDINALITY
                   AS t(id, queue, priority, run_at, payload, headers, key, dedupe_id, max_attempts, backoff, lease, ord)
             ORDER BY t.ord) u
     ORDER BY u.ord
    ON CONFLICT (queue, dedupe_id) WHERE dedupe_id IS NOT NULL DO NOTHING
    RETURNING id, queue, run_at, seq)
  SELECT count(*)::int,
         string_agg(json_build_object('type', 'sent', 'queue', ins.queue, 'id', ins.id, 'at', p_at,
                      'runAt', ins.run_at)::text, ',' ORDER BY ins.seq)
    INTO v_n, v_events FROM ins;
  IF v_n < cardinality(p_ids) THEN
    SELECT array_agg(coalesce(CASE WHEN EXISTS (SELECT 1 FROM {{schema}}.messages m WHERE m.id = u.id) THEN u.id END,
                              (SELECT m.id FROM {{schema}}.messages m WHERE m.queue = u.q AND m.dedupe_id = u.d))
                     ORDER BY u.ord),
           array_agg(NOT EXISTS (SELECT 1 FROM {{schema}}.messages m WHERE m.id = u.id) ORDER BY u.ord)
      INTO ids, deduplicated
      FROM unnest(p_ids, p_queues, p_dedupes) WITH ORDINALITY AS u(id, q, d, ord);
    IF array_position(ids, NULL) IS NOT NULL THEN
      RAISE EXCEPTION 'a deduplicating message vanished during the send' USING ERRCODE = '40001';
    END IF;
    -- A deduplicated first message of a key leaves the batch's later ones blocked behind nothing.
    SELECT array_agg(u.q), array_agg(u.k) INTO kq, kk
      FROM unnest(p_queues, p_keys, deduplicated) AS u(q, k, d) WHERE u.d AND u.k IS NOT NULL;
    IF kq IS NOT NULL THEN PERFORM {{schema}}.unblock_next(kq, kk); END IF;
  END IF;
  IF v_n > 0 THEN
    data := '[' || v_events || ']';
    first_seq := {{schema}}.append_events(data, v_n, p_now, p_origin, p_channel);
  END IF;
END $$;
