-- Claiming, and the worker's round trip: the acks that arrived in one tick and the next claim, in one
-- statement and one commit.

-- Leases up to p_max deliverable messages of p_queue (expired leases of the queue settled first): queued,
-- due, not blocked behind an earlier message of their key, queue not paused, within its concurrency and rate
-- limit and, with a keyRateLimit, the windows of their keys (a held key's messages are passed over, so they
-- never hold back other keys); by priority, then runAt, then send order. The rows come back as a JSON array
-- in that order (payload and headers as the JSON they are stored as, so the client parses them once, with
-- the rest), their `active` events as comma-joined JSON. Each attempt's deadline is p_now plus the timeout
-- (p_timeout, else the message's, else the queue's; none: null), and caps the lease.
CREATE FUNCTION {{schema}}.claim_items(p_queue text, p_max int, p_lease int, p_timeout int, p_now bigint, p_at text,
  p_default_lease int, p_max_attempts int, OUT n int, OUT events text, OUT claimed text, OUT expired int)
LANGUAGE plpgsql AS $$
DECLARE
  v_settings jsonb; v_paused boolean; v_limit int := p_max; v_conc int; v_rmax int; v_rper bigint;
  v_window bigint := 0; v_count int := 0; v_active int; v_n int; v_events text;
  v_kmax int; v_kper bigint; v_ids text[]; v_kstart bigint; v_kcount int; v_nonce text; r record;
BEGIN
  n := 0;
  expired := 0;
  SELECT q.settings, q.paused INTO v_settings, v_paused FROM {{schema}}.queues q WHERE q.name = p_queue;
  IF EXISTS (SELECT 1 FROM {{schema}}.messages m WHERE m.state = 1 AND m.lease_until <= p_now AND m.queue = p_queue) THEN
    SELECT x.n, x.events, x.n_events INTO expired, events, n
      FROM {{schema}}.expire_leases(p_now, p_at, p_queue, p_max_attempts) x;
  END IF;
  IF coalesce(v_paused, false) THEN RETURN; END IF;
  v_conc := (v_settings->>'concurrency')::int;
  v_rmax := (v_settings->'rateLimit'->>'max')::int;
  v_rper := (v_settings->'rateLimit'->>'per')::bigint;
  v_kmax := (v_settings->'keyRateLimit'->>'max')::int;
  v_kper := (v_settings->'keyRateLimit'->>'per')::bigint;
  IF v_conc IS NOT NULL OR v_rmax IS NOT NULL OR v_kmax IS NOT NULL THEN
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
  IF v_kmax IS NOT NULL THEN
    -- Walks the deliverable rows in delivery order, passing over those of keys whose window is used up; each
    -- key's window opens at its first delivery after the last one closed.
    v_ids := ARRAY[]::text[];
    FOR r IN SELECT m.id, m.key FROM {{schema}}.messages m
              WHERE m.queue = p_queue AND m.state = 0 AND NOT m.blocked AND m.run_at <= p_now
              ORDER BY m.priority DESC, m.run_at, m.seq FOR UPDATE SKIP LOCKED LOOP
      IF r.key IS NOT NULL THEN
        SELECT k.window_start, k.count INTO v_kstart, v_kcount
          FROM {{schema}}.key_rates k WHERE k.queue = p_queue AND k.key = r.key;
        IF NOT FOUND OR p_now >= v_kstart + v_kper THEN v_kstart := p_now; v_kcount := 0; END IF;
        CONTINUE WHEN v_kcount >= v_kmax;
        INSERT INTO {{schema}}.key_rates (queue, key, window_start, count) VALUES (p_queue, r.key, v_kstart, v_kcount + 1)
        ON CONFLICT (queue, key) DO UPDATE SET window_start = excluded.window_start, count = excluded.count;
      END IF;
      v_ids := v_ids || r.id;
      EXIT WHEN cardinality(v_ids) >= v_limit;
    END LOOP;
    IF cardinality(v_ids) = 0 THEN RETURN; END IF;
  END IF;
  -- Without a keyRateLimit (v_ids null) the rows are picked here; with one, the walk above picked them. The
  -- update finds them by primary key (= ANY of the picked ids): joined to the picking query instead, the
  -- planner may hash-join a sequential scan of the whole table, which grows with every finished row kept.
  IF v_ids IS NULL THEN
    SELECT array_agg(p.id) INTO v_ids
      FROM (SELECT m.id FROM {{schema}}.messages m
             WHERE m.queue = p_queue AND m.state = 0 AND NOT m.blocked AND m.run_at <= p_now
             ORDER BY m.priority DESC, m.run_at, m.seq
             LIMIT v_limit FOR UPDATE SKIP LOCKED) p;
    IF v_ids IS NULL THEN RETURN; END IF;
  END IF;
  -- A receipt is unique per delivery: the message's seq and attempt, and a random nonce drawn once per claim
  -- (a strong random draw per row is a syscall's worth of work for every message claimed).
  -- The update names the rows by id alone: they were picked queued, FOR UPDATE, in this transaction, so
  -- they are still queued. Given `m.state = 0` as well, a cached plan may find them through an index of
  -- the queue's queued rows instead, walking every one of them (seen with auto_explain, with the index on
  -- (queue, state, seq) of the time: 111 buffers a claim in bench/pg-mixed.ts).
  v_nonce := '.' || replace(gen_random_uuid()::text, '-', '');
  WITH u AS (
    UPDATE {{schema}}.messages m
       SET state = 1, attempts = m.attempts + 1, receipt = m.seq || '.' || (m.attempts + 1) || v_nonce,
           started_at = p_now,
           deadline = p_now + coalesce(p_timeout, m.timeout, (v_settings->>'timeout')::int),
           lease_until = least(p_now + coalesce(p_lease, m.lease, (v_settings->>'lease')::int, p_default_lease),
                               p_now + coalesce(p_timeout, m.timeout, (v_settings->>'timeout')::int))
     WHERE m.id = ANY(v_ids)
    RETURNING m.seq, m.id, m.payload, m.attempts, m.receipt, m.priority, m.run_at, m.key, m.headers, m.sent_at,
              m.lease_until, m.deadline,
              coalesce(p_lease, m.lease, (v_settings->>'lease')::int, p_default_lease) AS lease)
  -- Both texts in delivery order, from one sort (aggregates take a sorted subquery's rows in its order, as
  -- the picking above relies on too; an ORDER BY in each aggregate sorted twice).
  SELECT count(*)::int, '[' || string_agg(o.json, ',') || ']', string_agg(o.event, ',')
    INTO v_n, claimed, v_events
    FROM (SELECT '{"id":' || to_json(u.id) || ',"payload":' || u.payload || ',"attempt":'
                   || u.attempts || ',"receipt":"' || u.receipt || '","priority":' || u.priority || ',"key":'
                   || coalesce(to_json(u.key)::text, 'null') || ',"headers":' || coalesce(u.headers, 'null')
                   || ',"sentAt":' || u.sent_at || ',"leaseUntil":' || u.lease_until || ',"lease":' || u.lease
                   || ',"deadline":' || coalesce(u.deadline::text, 'null') || '}' AS json,
                 {{schema}}.event('active', p_queue, u.id, p_at, u.attempts, NULL) AS event
            FROM u ORDER BY u.priority DESC, u.run_at, u.seq) o;
  IF v_n = 0 THEN RETURN; END IF;
  IF v_rmax IS NOT NULL THEN
    UPDATE {{schema}}.queues SET rate_window = v_window, rate_count = coalesce(v_count, 0) + v_n WHERE name = p_queue;
  END IF;
  events := CASE WHEN events IS NULL THEN v_events ELSE events || ',' || v_events END;
  n := n + v_n;
END $$;

-- One round trip of the worker cycle: the acks that arrived in one tick, then one claim, their events
-- staged as one block. Either part may be absent (null arrays, null queue). c_settled answers each ack's
-- outcome as one character, in order: its new state's code, or '-' when its lease was not live (a string,
-- because node-postgres parses array results character by character, and these arrays have an entry per ack).
-- A step holding only a claim commits without waiting for its WAL flush (synchronous_commit off for this
-- transaction): a server crash can lose such a claim, and losing it loses only a lease, as when a lease runs
-- out (the message is delivered again; the lost delivery's ack finds no lease). A step with any durable
-- change (acks, expired leases settled) commits synchronously, and a synchronous commit flushes the WAL of
-- every earlier asynchronous one, so a later durable step never depends on a lost claim.
-- `deliveries` holds payloads and headers as their JSON (migration 012); before, as JSON strings, in a column
-- named `claimed`. The new name makes a process still running the old code fail its claims loudly, with
-- nothing leased, instead of reading the new text the old way after a newer process replaced this function.
CREATE FUNCTION {{schema}}.step(
  c_ids text[], c_receipts text[], c_results text[], c_nows bigint[], c_ats text[],
  q_queue text, q_max int, q_lease int, q_timeout int, q_now bigint, q_at text,
  p_default_lease int, p_max_attempts int, p_origin text,
  OUT data text, OUT c_settled text, OUT deliveries text)
LANGUAGE plpgsql AS $$
DECLARE v_n int := 0; v_events text; c_n int; c_ords int[]; c_states int[]; q_n int; q_events text; v_at bigint;
  q_expired int := 0;
BEGIN
  IF c_ids IS NOT NULL AND cardinality(c_ids) > 0 THEN
    SELECT x.n, x.events, x.ords, x.states INTO c_n, v_events, c_ords, c_states
      FROM {{schema}}.complete_items(c_ids, c_receipts, c_results, c_nows, c_ats) x;
    v_n := c_n;
    v_at := c_nows[1];
    IF c_n = cardinality(c_ids) AND 4 <> ALL(c_states) THEN
      c_settled := repeat('2', c_n);
    ELSE
      SELECT string_agg(coalesce(x.state::text, '-'), '' ORDER BY g.i) INTO c_settled
        FROM generate_series(1, cardinality(c_ids)) AS g(i)
        LEFT JOIN unnest(c_ords, c_states) AS x(ord, state) ON x.ord = g.i;
    END IF;
  END IF;
  IF q_queue IS NOT NULL THEN
    SELECT x.n, x.events, x.claimed, x.expired INTO q_n, q_events, deliveries, q_expired
      FROM {{schema}}.claim_items(q_queue, q_max, q_lease, q_timeout, q_now, q_at, p_default_lease, p_max_attempts) x;
    IF q_n > 0 THEN
      v_events := CASE WHEN v_events IS NULL THEN q_events ELSE v_events || ',' || q_events END;
      v_n := v_n + q_n;
      v_at := coalesce(v_at, q_now);
    END IF;
  END IF;
  IF coalesce(cardinality(c_ids), 0) = 0 AND q_expired = 0 THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  data := {{schema}}.stage_events(v_events, v_n, v_at, p_origin);
END $$;
