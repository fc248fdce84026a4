-- Ordering keys. Whoever may change which message of a key is deliverable (a send, a message finishing, a
-- cancel, a retry, a purge) takes a transaction-level advisory lock on the key, so "is an earlier message of
-- this key unfinished?" and unblocking the next one never race. Lock order, everywhere: the rows an
-- operation changes first, then their keys (sorted), so two operations cannot wait on each other in a circle.

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

-- After messages finished or were removed: under their keys' locks, the next message of each key may go.
CREATE FUNCTION {{schema}}.release_keys(p_queues text[], p_keys text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p_queues IS NULL OR cardinality(p_queues) = 0 THEN RETURN; END IF;
  PERFORM {{schema}}.lock_keys(p_queues, p_keys);
  PERFORM {{schema}}.unblock_next(p_queues, p_keys);
END $$;
