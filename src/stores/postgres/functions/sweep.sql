-- Housekeeping: leases that ran out, finished messages past their queue's retention, old events, closed key
-- rate windows.

-- The effective maxAttempts and retention of a message's queue (the queue's setting, else the default).
CREATE FUNCTION {{schema}}.queue_setting(p_queue text, p_name text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT q.settings->>p_name FROM {{schema}}.queues q WHERE q.name = p_queue
$$;

-- The wait before the attempt after failed attempt p_attempt, by p_backoff (the message's, else the queue's;
-- absent fields take DEFAULT_SETTINGS.backoff's values). The formula of src/engine/backoff.ts, for the one
-- failure decided inside a statement: an attempt that ran past its deadline, found by expire_leases.
CREATE FUNCTION {{schema}}.retry_delay(p_attempt int, p_backoff jsonb) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_delay bigint := coalesce((p_backoff->>'delay')::bigint, 1000);
  v_full float8;
BEGIN
  IF p_backoff->>'type' = 'fixed' THEN RETURN v_delay; END IF;
  v_full := least(coalesce((p_backoff->>'max')::bigint, greatest(3600000, v_delay))::float8,
                  v_delay * power(2::float8, least(greatest(p_attempt - 1, 0), 52)));
  IF coalesce((p_backoff->>'jitter')::boolean, true) THEN RETURN round(v_full / 2 + random() * v_full / 2); END IF;
  RETURN v_full;
END $$;

-- Settles leases that ran out (of p_queue, or any when null; up to 1000): a failed attempt, or dead when its
-- attempts are spent, or cancelled when a cancel was requested. A lease that reached its attempt's deadline
-- (leases are capped there) is a timeout: a TimeoutError, retried by the backoff; any other lapsed lease is
-- delivered again at once. Messages made dead are copied to their dead-letter queue. Answers how many leases
-- (n) and the events (comma-joined, n_events of them).
CREATE FUNCTION {{schema}}.expire_leases(p_now bigint, p_at text, p_queue text, p_max_attempts int,
  OUT n int, OUT events text, OUT n_events int) LANGUAGE plpgsql AS $$
DECLARE kq text[]; kk text[]; v_dead text[]; d_n int; d_events text; e_ids text[]; e_n int; e_events text;
  v_error constant text := '{"message":"lease expired","name":"LeaseExpired"}'; v_ids text[];
BEGIN
  -- The leases are picked by one of two statements, each with a plan of its own (one statement for both,
  -- `p_queue IS NULL OR m.queue = p_queue`, has a generic plan that cannot use the queue to find rows). Both
  -- read messages_leases (queue, lease_until) by range: one queue's lapsed leases, or each queue's in turn.
  IF p_queue IS NULL THEN
    SELECT array_agg(p.id) INTO v_ids
      FROM (SELECT f.id FROM {{schema}}.queues q
              CROSS JOIN LATERAL (SELECT m.id FROM {{schema}}.messages m
                                   WHERE m.queue = q.name AND m.state = 1 AND m.lease_until <= p_now
                                   ORDER BY m.lease_until LIMIT 1000 FOR UPDATE SKIP LOCKED) f
             LIMIT 1000) p;
  ELSE
    SELECT array_agg(p.id) INTO v_ids
      FROM (SELECT m.id FROM {{schema}}.messages m WHERE m.queue = p_queue AND m.state = 1 AND m.lease_until <= p_now
             ORDER BY m.lease_until LIMIT 1000 FOR UPDATE SKIP LOCKED) p;
  END IF;
  n := 0;
  n_events := 0;
  IF v_ids IS NULL THEN RETURN; END IF;
  WITH x AS (
    SELECT m.id, m.cancel_requested,
           m.attempts >= coalesce(m.max_attempts, {{schema}}.queue_setting(m.queue, 'maxAttempts')::int,
                                  p_max_attempts) AS used_up,
           CASE WHEN m.deadline IS NOT NULL AND m.lease_until >= m.deadline
                THEN '{"message":"the attempt ran past its timeout of ' || (m.deadline - m.started_at)
                     || ' ms","name":"TimeoutError"}' ELSE v_error END AS error,
           CASE WHEN m.deadline IS NOT NULL AND m.lease_until >= m.deadline
                THEN p_now + {{schema}}.retry_delay(m.attempts, coalesce(m.backoff::jsonb,
                       (SELECT q.settings->'backoff' FROM {{schema}}.queues q WHERE q.name = m.queue), '{}'))
                ELSE p_now END AS retry_at
      FROM {{schema}}.messages m
     WHERE m.id = ANY(v_ids)),
  u AS (
    UPDATE {{schema}}.messages m
       SET state = CASE WHEN x.cancel_requested THEN 4 WHEN x.used_up THEN 3 ELSE 0 END,
           run_at = CASE WHEN x.cancel_requested OR x.used_up THEN m.run_at ELSE x.retry_at END,
           finished_at = CASE WHEN x.cancel_requested OR x.used_up THEN p_now END,
           error = x.error, receipt = NULL, lease_until = NULL, blocked = false
      FROM x WHERE m.id = ANY(ARRAY(SELECT x.id FROM x)) AND m.id = x.id
    RETURNING m.id, m.queue, m.key, m.state, m.attempts, m.seq, m.parent_id, x.error, x.retry_at)
  SELECT count(*)::int,
         string_agg({{schema}}.event(CASE u.state WHEN 0 THEN 'retrying' WHEN 3 THEN 'dead' ELSE 'cancelled' END,
                      u.queue, u.id, p_at, u.attempts,
                      ',"error":' || u.error || CASE WHEN u.state = 0 THEN ',"runAt":' || u.retry_at ELSE '' END),
                    ',' ORDER BY u.seq),
         array_agg(u.queue) FILTER (WHERE u.key IS NOT NULL AND u.state >= 2),
         array_agg(u.key) FILTER (WHERE u.key IS NOT NULL AND u.state >= 2),
         array_agg(u.id) FILTER (WHERE u.state = 3),
         array_agg(u.id) FILTER (WHERE u.parent_id IS NOT NULL AND u.state >= 2)
    INTO n, events, kq, kk, v_dead, e_ids FROM u;
  IF kq IS NOT NULL THEN PERFORM {{schema}}.release_keys(kq, kk); END IF;
  n_events := n;
  IF v_dead IS NOT NULL THEN
    SELECT d.n, d.events INTO d_n, d_events FROM {{schema}}.dead_letter(v_dead, p_now, p_at) d;
    IF d_n > 0 THEN
      events := events || ',' || d_events;
      n_events := n_events + d_n;
    END IF;
  END IF;
  SELECT x.n, x.events INTO e_n, e_events FROM {{schema}}.children_ended(e_ids, p_now, p_at) x;
  IF e_n > 0 THEN n_events := n_events + e_n; events := concat_ws(',', events, e_events); END IF;
END $$;

-- Settles the expired leases of p_queue (lapsed or timed out) and stages their events; answers how many.
CREATE FUNCTION {{schema}}.expire_queue(p_queue text, p_now bigint, p_at text, p_max_attempts int, p_origin text,
  OUT n int, OUT data text) LANGUAGE plpgsql AS $$
DECLARE v_events text; v_n int;
BEGIN
  SELECT x.n, x.events, x.n_events INTO n, v_events, v_n FROM {{schema}}.expire_leases(p_now, p_at, p_queue, p_max_attempts) x;
  data := {{schema}}.stage_events(v_events, v_n, p_now, p_origin);
END $$;

-- One housekeeping pass, bounded: expired leases, then finished messages whose queue's current retention has
-- passed (so changing a queue's retention acts on messages already finished), then the oldest events past
-- p_event_before. Looks at each queue's finished states through the index on (queue, state, finished_at):
-- one probe per queue and state.
CREATE FUNCTION {{schema}}.sweep(p_now bigint, p_at text, p_event_before bigint, p_max_attempts int,
  p_retention bigint, p_origin text, OUT expired int, OUT removed int, OUT data text)
LANGUAGE plpgsql SET jit = off AS $$
DECLARE v_events text; v_n int; v_keep bigint;
BEGIN
  SELECT x.n, x.events, x.n_events INTO expired, v_events, v_n
    FROM {{schema}}.expire_leases(p_now, p_at, NULL, p_max_attempts) x;
  data := {{schema}}.stage_events(v_events, v_n, p_now, p_origin);
  -- By primary key (= ANY of an array): an IN (subquery) here is planned as a hash join over the whole table.
  DELETE FROM {{schema}}.messages d WHERE d.id = ANY(ARRAY(
    SELECT f.id
      FROM {{schema}}.queues q
      CROSS JOIN (VALUES (2::smallint), (3::smallint), (4::smallint)) st(state)
      CROSS JOIN LATERAL (
        SELECT m.id FROM {{schema}}.messages m
         -- `state >= 2` too: a constant the plan can match to the partial index (st.state is not one).
         WHERE m.queue = q.name AND m.state >= 2 AND m.state = st.state
           AND m.finished_at <= p_now - coalesce((q.settings->>'retention')::bigint, p_retention)
         ORDER BY m.finished_at LIMIT 1000) f
     LIMIT 1000));
  GET DIAGNOSTICS removed = ROW_COUNT;
  -- Among the oldest key rate windows, those closed by their queue's current keyRateLimit (every one, when the
  -- queue has none now). A window is never longer than a day, so older rows always go.
  DELETE FROM {{schema}}.key_rates d USING (
    SELECT k.queue, k.key FROM (SELECT w.queue, w.key, w.window_start FROM {{schema}}.key_rates w
                                 ORDER BY w.window_start LIMIT 1000) k
      LEFT JOIN {{schema}}.queues q ON q.name = k.queue
     WHERE k.window_start + coalesce((q.settings->'keyRateLimit'->>'per')::bigint, 0) <= p_now) c
   WHERE d.queue = c.queue AND d.key = c.key;
  -- Only the oldest blocks are looked at: `at` grows with seq (nearly), so this never scans the whole log.
  -- While a webhook exists, the block holding the first event not yet fanned out (v_keep) stays, and every
  -- later one (webhooks.sql). The bound is read first: as one correlated query, its cost estimate on a fresh
  -- schema passed jit_above_cost, and compiling it took 100-180 ms of every sweep.
  SELECT coalesce((SELECT max(k.seq) FROM {{schema}}.events k WHERE k.seq <= c.seq + 1), c.seq + 1) INTO v_keep
    FROM {{schema}}.webhook_cursor c WHERE EXISTS (SELECT 1 FROM {{schema}}.webhooks);
  DELETE FROM {{schema}}.events WHERE seq = ANY(ARRAY(
    SELECT o.seq FROM (SELECT e.seq, e.at FROM {{schema}}.events e ORDER BY e.seq LIMIT 1000) o
     WHERE o.at < p_event_before AND (v_keep IS NULL OR o.seq < v_keep)));
END $$;
