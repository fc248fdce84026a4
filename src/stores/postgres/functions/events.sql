-- The event log. Seqs are given by one numberer at a time (a transaction-level try-lock, held to commit), so
-- they are gapless and numbered blocks commit in seq order: a reader tailing by seq never misses a late
-- commit, and every reader sees one order. No writer ever waits for it: a transaction that changes state
-- takes the lock if it is free and numbers its own block at once (with a bounded batch of blocks others
-- left unnumbered); if another holds it, the block is staged in event_inbox without a seq, and a pass of
-- the elected sequencer (sequence_events) numbers it soon after. So writers from every connection and
-- process commit in parallel, and in the common case a block costs no second commit.
-- No NOTIFY is sent inside a writing transaction: a notifying transaction takes a database-wide lock at
-- commit and holds it through its WAL flush, which would serialize writers again. Processes send their
-- hints after commit, outside any transaction (events.ts).

-- One event as JSON text, keys in the stored order: type, queue, id, at, attempt, then p_rest (result,
-- error, progress, runAt, already JSON: ',"result":…'). Built by concatenation: json_build_object looks up
-- the type of every argument of every row (about 2 us per object against 0.6 us, migration 004).
CREATE FUNCTION {{schema}}.event(p_type text, p_queue text, p_id text, p_at text, p_attempt int, p_rest text)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT '{"type":"' || p_type || '","queue":' || to_json(p_queue)::text || ',"id":' || to_json(p_id)::text
      || ',"at":' || to_json(p_at)::text || coalesce(',"attempt":' || p_attempt, '') || coalesce(p_rest, '') || '}'
$$;

-- Numbers up to p_max blocks of the inbox (oldest first) with the next seqs. The caller holds the numbering
-- lock. Answers the last seq, and the blocks it moved as one JSON array of {"seq","origin","events"} (null:
-- none): one text, because a client parses a text array of JSON blocks character by character.
CREATE FUNCTION {{schema}}.number_blocks(p_max int, OUT last_seq bigint, OUT moved text)
LANGUAGE plpgsql AS $$
DECLARE v_last bigint; v_n bigint;
BEGIN
  SELECT e.last INTO v_last FROM {{schema}}.event_seq e;
  v_n := 0;
  IF p_max > 0 THEN
    WITH taken AS (
      DELETE FROM {{schema}}.event_inbox i
       WHERE i.id = ANY(ARRAY(SELECT x.id FROM {{schema}}.event_inbox x ORDER BY x.id LIMIT p_max))
      RETURNING i.id, i.at, i.n, i.origin, i.data),
    numbered AS (
      SELECT t.*, v_last + sum(t.n) OVER (ORDER BY t.id) - t.n + 1 AS seq FROM taken t),
    ins AS (
      INSERT INTO {{schema}}.events (seq, n, at, origin, data)
      SELECT nb.seq, nb.n, nb.at, nb.origin, nb.data FROM numbered nb
      RETURNING seq, n, origin, data)
    SELECT '[' || string_agg('{"seq":' || ins.seq || ',"origin":' || to_json(ins.origin)::text || ',"events":'
                             || ins.data || '}', ',' ORDER BY ins.seq) || ']',
           coalesce(sum(ins.n), 0)
      INTO moved, v_n FROM ins;
  END IF;
  last_seq := v_last + v_n;
  IF last_seq > v_last THEN
    UPDATE {{schema}}.event_seq SET last = last_seq;
  END IF;
END $$;

-- Whether the calling transaction numbers its own block now: nothing is staged (so no block committed before
-- it still waits for a number) and it takes the numbering lock, which it then holds to its commit. Numbered
-- here only when nothing is staged: otherwise the block is staged behind the others, and the writer leaves
-- the numbering lock to the sequencer, which numbers the staged blocks many at a time. (Writers used to
-- number staged blocks along with their own, holding the lock through their commit: producers and workers
-- on one schema cost 106-123 us of backend CPU per message then, 96-99 now, in alternated runs of
-- bench/pg-mixed.ts.) A function, so that its probe of the inbox runs with the store's planner settings
-- (an index scan, which passes over an emptied inbox's dead rows by their index) wherever it is called
-- from: stage_events, and a lone send's statement (send.ts).
CREATE FUNCTION {{schema}}.may_number() RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM {{schema}}.event_inbox) THEN RETURN false; END IF;
  RETURN pg_try_advisory_xact_lock(hashtext('ferry.sequence'), hashtext('{{schema}}'));
END $$;

-- The events (p_n comma-joined) of the calling transaction: numbered at once when nothing is staged and the
-- numbering lock is free (answered as {"seq":first,"events":[…]}), else staged in the inbox (answered as the
-- JSON array). Null when
-- there are none. The answer lets the writing process wake its own waiters at once. p_inline false: always
-- staged (a transaction of the caller's may stay open long, and must not hold the numbering lock meanwhile).
CREATE FUNCTION {{schema}}.stage_events(p_events text, p_n int, p_at bigint, p_origin text, p_inline boolean DEFAULT true)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE v_data text; v_seq bigint;
BEGIN
  IF coalesce(p_n, 0) = 0 THEN RETURN NULL; END IF;
  v_data := '[' || p_events || ']';
  IF p_inline AND {{schema}}.may_number() THEN
    WITH s AS (UPDATE {{schema}}.event_seq SET last = last + p_n RETURNING last - p_n + 1 AS seq)
    INSERT INTO {{schema}}.events (seq, n, at, origin, data) SELECT s.seq, p_n, p_at, p_origin, v_data FROM s
    RETURNING seq INTO v_seq;
    RETURN '{"seq":' || v_seq || ',"events":' || v_data || '}';
  END IF;
  INSERT INTO {{schema}}.event_inbox (at, n, origin, data) VALUES (p_at, p_n, p_origin, v_data);
  RETURN v_data;
END $$;

-- One pass of the sequencer: up to p_max staged blocks get seqs. `got` is false when the numbering lock is
-- held (then nothing was done). Answers the moved blocks, so the caller can deliver them without reading.
CREATE FUNCTION {{schema}}.sequence_events(p_max int, OUT got boolean, OUT last_seq bigint, OUT moved text)
LANGUAGE plpgsql AS $$
BEGIN
  got := pg_try_advisory_xact_lock(hashtext('ferry.sequence'), hashtext('{{schema}}'));
  IF NOT got THEN RETURN; END IF;
  SELECT x.last_seq, x.moved INTO last_seq, moved FROM {{schema}}.number_blocks(p_max) x;
END $$;
