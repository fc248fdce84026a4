-- Inserting messages: dedupe and ordering keys. Every way in (send, sendBatch, publish, a schedule's tick, a
-- send in the caller's own transaction) goes through insert_messages.

-- Inserts messages in order; a `sent` event per new one. A flow's nodes (send_flow) also give their parent,
-- their count of children (a node with children is pending: state 5), whether they ignore children's failures,
-- and their seqs (taken in the tree's order, as it is inserted level by level). Answers null ids when every message was inserted;
-- else every message's id (the existing one when deduplicated) and whether it was deduplicated.
CREATE FUNCTION {{schema}}.insert_messages(
  p_ids text[], p_queues text[], p_priorities int[], p_run_ats bigint[], p_payloads text[], p_headers text[],
  p_keys text[], p_dedupes text[], p_max_attempts int[], p_backoffs text[], p_leases int[], p_timeouts int[],
  p_now bigint, p_at text, p_parents text[] DEFAULT NULL, p_children int[] DEFAULT NULL,
  p_ignore boolean[] DEFAULT NULL, p_seqs bigint[] DEFAULT NULL, OUT n int, OUT events text, OUT ids text[], OUT deduplicated boolean[])
LANGUAGE plpgsql AS $$
DECLARE kq text[]; kk text[]; v_keyed boolean; v_deduped boolean;
BEGIN
  SELECT bool_or(u.k IS NOT NULL), bool_or(u.d IS NOT NULL) INTO v_keyed, v_deduped
    FROM unnest(p_keys, p_dedupes) AS u(k, d);
  -- Most sends: no key, no dedupe id, not a flow. Then nothing can be blocked or deduplicated, and the rows
  -- go in as they are, without the general statement's window function, per-row subqueries and sorts
  -- (bench/pg-costs.ts, a single send's server time: 181-203 -> 103-120 us with this and stage_events' path).
  IF NOT v_keyed AND NOT v_deduped AND p_parents IS NULL THEN
    WITH ins AS (
      INSERT INTO {{schema}}.messages (id, seq, queue, state, priority, run_at, payload, headers, max_attempts,
        backoff, lease, timeout, sent_at)
      SELECT u.id, nextval('{{schema}}.messages_seq'), u.queue, 0, u.priority, u.run_at, u.payload, u.headers,
             u.max_attempts, u.backoff, u.lease, u.timeout, p_now
        FROM unnest(p_ids, p_queues, p_priorities, p_run_ats, p_payloads, p_headers, p_max_attempts, p_backoffs,
                    p_leases, p_timeouts) WITH ORDINALITY
               AS u(id, queue, priority, run_at, payload, headers, max_attempts, backoff, lease, timeout, ord)
       ORDER BY u.ord
      RETURNING id, queue, run_at, seq)
    SELECT count(*)::int,
           string_agg({{schema}}.event('sent', ins.queue, ins.id, p_at, NULL, ',"runAt":' || ins.run_at), ','
                      ORDER BY ins.seq)
      INTO n, events FROM ins;
    RETURN;
  END IF;
  IF v_keyed THEN
    PERFORM {{schema}}.lock_keys(p_queues, p_keys);
  END IF;
  -- A keyed message is blocked when its queue's keyConcurrency (default 1) unfinished messages of its key
  -- exist before it: in the table, or earlier in this batch.
  WITH ins AS (
    INSERT INTO {{schema}}.messages (id, seq, queue, state, blocked, priority, run_at, payload, headers, key,
      dedupe_id, max_attempts, backoff, lease, timeout, sent_at, parent_id, children_left, ignore_child_failures)
    SELECT u.id, coalesce(u.seq, nextval('{{schema}}.messages_seq')), u.queue, CASE WHEN u.children > 0 THEN 5 ELSE 0 END,
           CASE WHEN u.key IS NULL THEN false
                WHEN u.n = 1 THEN u.before > 0 OR EXISTS (SELECT 1 FROM {{schema}}.messages x
                  WHERE x.queue = u.queue AND x.key = u.key AND x.state <= 1)
                ELSE u.before + (SELECT count(*) FROM (SELECT 1 FROM {{schema}}.messages x
                  WHERE x.queue = u.queue AND x.key = u.key AND x.state <= 1 LIMIT u.n) c) >= u.n END,
           u.priority, u.run_at, u.payload, u.headers, u.key, u.dedupe_id, u.max_attempts, u.backoff, u.lease,
           u.timeout, p_now, u.parent, coalesce(u.children, 0), coalesce(u.ignore, false)
      FROM (SELECT t.*, row_number() OVER (PARTITION BY t.queue, t.key ORDER BY t.ord) - 1 AS before,
                   CASE WHEN t.key IS NULL THEN 1
                        ELSE coalesce((SELECT (q.settings->>'keyConcurrency')::int FROM {{schema}}.queues q
                                        WHERE q.name = t.queue), 1) END AS n
              FROM unnest(p_ids, p_queues, p_priorities, p_run_ats, p_payloads, p_headers, p_keys, p_dedupes,
                          p_max_attempts, p_backoffs, p_leases, p_timeouts, p_parents, p_children, p_ignore, p_seqs) WITH ORDINALITY
                   AS t(id, queue, priority, run_at, payload, headers, key, dedupe_id, max_attempts, backoff, lease,
                        timeout, parent, children, ignore, seq, ord)
             ORDER BY t.ord) u
     ORDER BY u.ord
    ON CONFLICT (queue, dedupe_id) WHERE dedupe_id IS NOT NULL DO NOTHING
    RETURNING id, queue, run_at, seq)
  SELECT count(*)::int,
         string_agg({{schema}}.event('sent', ins.queue, ins.id, p_at, NULL, ',"runAt":' || ins.run_at), ','
                    ORDER BY ins.seq)
    INTO n, events FROM ins;
  IF n < cardinality(p_ids) THEN
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
END $$;

-- A send: the queues it names exist, the messages are inserted, their events staged. One statement, so
-- concurrent sends of a process can share it (one round trip, one commit) and a caller's transaction can
-- run it as it is (p_inline false: see stage_events). Answers the events (stage_events) for the process's own
-- waiters.
CREATE FUNCTION {{schema}}.send(
  p_ids text[], p_queues text[], p_priorities int[], p_run_ats bigint[], p_payloads text[], p_headers text[],
  p_keys text[], p_dedupes text[], p_max_attempts int[], p_backoffs text[], p_leases int[], p_timeouts int[],
  p_now bigint, p_at text, p_new_queues text[], p_origin text, p_inline boolean,
  OUT data text, OUT ids text[], OUT deduplicated boolean[])
LANGUAGE plpgsql AS $$
DECLARE v_n int; v_events text;
BEGIN
  IF p_new_queues IS NOT NULL AND cardinality(p_new_queues) > 0 THEN
    INSERT INTO {{schema}}.queues (name) SELECT DISTINCT unnest(p_new_queues) ON CONFLICT (name) DO NOTHING;
  END IF;
  SELECT x.n, x.events, x.ids, x.deduplicated INTO v_n, v_events, ids, deduplicated
    FROM {{schema}}.insert_messages(p_ids, p_queues, p_priorities, p_run_ats, p_payloads, p_headers, p_keys,
                                    p_dedupes, p_max_attempts, p_backoffs, p_leases, p_timeouts, p_now, p_at) x;
  data := {{schema}}.stage_events(v_events, v_n, p_now, p_origin, p_inline);
END $$;

-- One message with no key, dedupe id or parent, sent alone (not in a caller's transaction): what `send` does
-- for it, with each column a plain parameter. A single awaited send is what this path serves: arrays to bind
-- and unnest, and the general function's nesting, cost it more than its insert (bench/pg-sends.ts, alternated
-- with the commit before: 0.41-0.54x -> 0.60-0.67x of raw single-row commits). Where statements are prepared
-- and the queue is known, the store runs the same as one statement instead (send.ts, loneSendSql); this
-- function serves a queue's first send, unprepared statements (PgBouncer in transaction mode), and processes
-- of the previous release. Answers the events as `send` does.
CREATE FUNCTION {{schema}}.send_one(
  p_id text, p_queue text, p_priority int, p_run_at bigint, p_payload text, p_headers text, p_max_attempts int,
  p_backoff text, p_lease int, p_timeout int, p_now bigint, p_at text, p_new_queue boolean, p_origin text)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF p_new_queue THEN
    INSERT INTO {{schema}}.queues (name) VALUES (p_queue) ON CONFLICT (name) DO NOTHING;
  END IF;
  INSERT INTO {{schema}}.messages (id, seq, queue, state, priority, run_at, payload, headers, max_attempts,
    backoff, lease, timeout, sent_at)
  VALUES (p_id, nextval('{{schema}}.messages_seq'), p_queue, 0, p_priority, p_run_at, p_payload, p_headers,
          p_max_attempts, p_backoff, p_lease, p_timeout, p_now);
  RETURN {{schema}}.stage_events({{schema}}.event('sent', p_queue, p_id, p_at, NULL, ',"runAt":' || p_run_at),
                                 1, p_now, p_origin);
END $$;
