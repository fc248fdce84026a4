-- Ordering keys. At most a queue's keyConcurrency (default 1) unfinished messages of a key are unblocked, the
-- earliest sent. Whoever may change which messages of a key are deliverable (a send, a message finishing, a
-- cancel, a retry, a purge) takes a transaction-level advisory lock on the key, so "how many unfinished
-- messages of this key are unblocked?" and unblocking the next ones never race; before the key locks, a
-- shared lock on the key's queue, which a configure changing the queue's keyConcurrency takes exclusively
-- (set_key_concurrency), so no one decides by a limit that is being replaced. Lock order, everywhere: the
-- rows an operation changes first, then the queues' locks, then their keys (each sorted), so two operations
-- cannot wait on each other in a circle.

CREATE FUNCTION {{schema}}.lock_keys(p_queues text[], p_keys text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(x.h)
     FROM (SELECT DISTINCT hashtextextended('{{schema}}' || E'\n' || u.q, 1) AS h
             FROM unnest(p_queues, p_keys) AS u(q, k) WHERE u.k IS NOT NULL ORDER BY 1) x;
  PERFORM pg_advisory_xact_lock(x.h)
     FROM (SELECT DISTINCT hashtextextended('{{schema}}' || E'\n' || u.q || E'\n' || u.k, 0) AS h
             FROM unnest(p_queues, p_keys) AS u(q, k) WHERE u.k IS NOT NULL ORDER BY 1) x;
END $$;

-- For each key: unblocks its earliest blocked unfinished messages, as many as its queue's keyConcurrency
-- leaves room for beside the unfinished ones already unblocked.
CREATE FUNCTION {{schema}}.unblock_next(p_queues text[], p_keys text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE {{schema}}.messages m SET blocked = false
    FROM (SELECT k.queue, k.key, coalesce((q.settings->>'keyConcurrency')::int, 1) AS n
            FROM (SELECT DISTINCT u.queue, u.key FROM unnest(p_queues, p_keys) AS u(queue, key)
                   WHERE u.key IS NOT NULL) k
            LEFT JOIN {{schema}}.queues q ON q.name = k.queue) k
    CROSS JOIN LATERAL (SELECT count(*)::int AS free
                          FROM (SELECT 1 FROM {{schema}}.messages y
                                 WHERE y.queue = k.queue AND y.key = k.key AND y.state <= 1 AND NOT y.blocked
                                 LIMIT k.n) y) f
    CROSS JOIN LATERAL (SELECT x.id FROM {{schema}}.messages x
                         WHERE x.queue = k.queue AND x.key = k.key AND x.state <= 1 AND x.blocked
                         ORDER BY x.seq LIMIT greatest(k.n - f.free, 0)) nx
   WHERE m.id = nx.id;
END $$;

-- After messages finished or were removed: under their keys' locks, the next messages of each key may go.
CREATE FUNCTION {{schema}}.release_keys(p_queues text[], p_keys text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p_queues IS NULL OR cardinality(p_queues) = 0 THEN RETURN; END IF;
  PERFORM {{schema}}.lock_keys(p_queues, p_keys);
  PERFORM {{schema}}.unblock_next(p_queues, p_keys);
END $$;

-- A queue's keyConcurrency set to p_n (the caller has written it): with its queue's lock held exclusively,
-- so every send and release that read the old limit has committed, each key's active messages and then its
-- earliest queued ones, up to p_n, are unblocked and its other queued ones blocked. Active messages stay as
-- they are: a lowered limit lets them finish and holds the key until fewer than p_n are active.
CREATE FUNCTION {{schema}}.set_key_concurrency(p_queue text, p_n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE {{schema}}.messages m SET blocked = r.b
    FROM (SELECT x.id, row_number() OVER (PARTITION BY x.key ORDER BY x.state DESC, x.seq) > p_n AS b
            FROM {{schema}}.messages x WHERE x.queue = p_queue AND x.key IS NOT NULL AND x.state <= 1) r
   WHERE m.id = r.id AND m.state = 0 AND m.blocked <> r.b;
END $$;

-- The exclusive side of lock_keys's queue lock.
CREATE FUNCTION {{schema}}.lock_queue_keys(p_queue text) RETURNS void LANGUAGE sql AS $$
  SELECT pg_advisory_xact_lock(hashtextextended('{{schema}}' || E'\n' || p_queue, 1))
$$;
