-- Flows: a tree inserted in one statement, and what a child's end does to its parent. A parent is pending
-- (state 5) on children_left, its count of unfinished children; a child's end costs the parent one update by
-- primary key. Only a failure under fail-parent, and cancels, walk a subtree (through messages_parent).
-- Lock order: the children's rows (the caller's), then their parents' rows, then keys.

-- Cancels the unfinished descendants of p_id: queued and pending ones at once, active ones flagged (their
-- handlers are told; they end cancelled). Answers the events (comma-joined).
CREATE FUNCTION {{schema}}.cancel_below(p_id text, p_now bigint, p_at text, OUT n int, OUT events text)
LANGUAGE plpgsql AS $$
DECLARE kq text[]; kk text[];
BEGIN
  WITH RECURSIVE below(id) AS (
    SELECT m.id FROM {{schema}}.messages m WHERE m.parent_id = p_id AND m.state IN (0, 1, 5)
    UNION ALL
    SELECT m.id FROM {{schema}}.messages m JOIN below b ON m.parent_id = b.id WHERE m.state IN (0, 1, 5)),
  flagged AS (
    UPDATE {{schema}}.messages m SET cancel_requested = true FROM below b WHERE m.id = b.id AND m.state = 1),
  u AS (
    UPDATE {{schema}}.messages m
       SET state = 4, finished_at = p_now, receipt = NULL, lease_until = NULL, blocked = false
      FROM below b WHERE m.id = b.id AND m.state IN (0, 5)
    RETURNING m.id, m.queue, m.key, m.attempts, m.seq)
  SELECT count(*)::int,
         string_agg({{schema}}.event('cancelled', u.queue, u.id, p_at, u.attempts, NULL), ',' ORDER BY u.seq),
         array_agg(u.queue) FILTER (WHERE u.key IS NOT NULL), array_agg(u.key) FILTER (WHERE u.key IS NOT NULL)
    INTO n, events, kq, kk FROM u;
  IF kq IS NOT NULL THEN PERFORM {{schema}}.release_keys(kq, kk); END IF;
END $$;

-- Messages p_ids (flow children) just ended in this transaction: their parents learn it (children_report).
-- Null: none. Every function that ends a message calls this with the ended rows that have a parent.
CREATE FUNCTION {{schema}}.children_ended(p_ids text[], p_now bigint, p_at text, OUT n int, OUT events text)
LANGUAGE plpgsql AS $$
DECLARE v_queues text[]; v_parents text[]; v_states int[]; v_ids text[];
BEGIN
  n := 0;
  IF p_ids IS NULL THEN RETURN; END IF;
  SELECT array_agg(m.id ORDER BY u.ord), array_agg(m.queue ORDER BY u.ord), array_agg(m.parent_id ORDER BY u.ord),
         array_agg(m.state::int ORDER BY u.ord)
    INTO v_ids, v_queues, v_parents, v_states
    FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord) JOIN {{schema}}.messages m ON m.id = u.id
   WHERE m.id = ANY(p_ids);
  SELECT x.n, x.events INTO n, events
    FROM {{schema}}.children_report(v_ids, v_queues, v_parents, v_states, p_now, p_at) x;
END $$;

-- Messages that ended (p_states: 2 completed, 3 dead, 4 cancelled), with their parents (null: none):
-- each pending parent counts its child down, and is queued when none is left (event `waiting`); a child dead
-- or cancelled makes a fail-parent parent dead (error ChildFailedError) and cancels its other unfinished
-- descendants, and that parent's end counts for its own parent in turn. Answers the events (comma-joined).
CREATE FUNCTION {{schema}}.children_report(p_ids text[], p_queues text[], p_parents text[], p_states int[],
  p_now bigint, p_at text, OUT n int, OUT events text)
LANGUAGE plpgsql AS $$
DECLARE
  w_ids text[]; w_queues text[]; w_parents text[]; w_states int[]; k int := 1;
  v_state text; v_error text; r record; c record;
BEGIN
  n := 0;
  IF p_ids IS NULL THEN RETURN; END IF;
  -- Parents in id order, so two transactions ending children of the same parents lock them in one order.
  SELECT array_agg(u.id ORDER BY u.parent, u.ord), array_agg(u.queue ORDER BY u.parent, u.ord),
         array_agg(u.parent ORDER BY u.parent, u.ord), array_agg(u.state ORDER BY u.parent, u.ord)
    INTO w_ids, w_queues, w_parents, w_states
    FROM unnest(p_ids, p_queues, p_parents, p_states) WITH ORDINALITY AS u(id, queue, parent, state, ord)
   WHERE u.parent IS NOT NULL;
  WHILE k <= coalesce(cardinality(w_ids), 0) LOOP
    IF w_states[k] IN (3, 4) THEN
      v_state := CASE w_states[k] WHEN 3 THEN 'dead' ELSE 'cancelled' END;
      v_error := '{"message":' || to_json('child ' || w_ids[k] || ' in queue ' || w_queues[k] || ' ended ' || v_state)::text
              || ',"name":"ChildFailedError","data":{"id":' || to_json(w_ids[k])::text || ',"queue":'
              || to_json(w_queues[k])::text || ',"state":"' || v_state || '"}}';
      UPDATE {{schema}}.messages m SET state = 3, error = v_error, finished_at = p_now, children_left = 0
       WHERE m.id = w_parents[k] AND m.state = 5 AND NOT m.ignore_child_failures
      RETURNING m.id, m.queue, m.parent_id, m.attempts INTO r;
      IF FOUND THEN
        events := concat_ws(',', events, {{schema}}.event('dead', r.queue, r.id, p_at, r.attempts, ',"error":' || v_error));
        n := n + 1;
        -- Dead like any other: its copy to its queue's dead-letter queue, in this transaction.
        SELECT d.n, d.events INTO c FROM {{schema}}.dead_letter(ARRAY[r.id], p_now, p_at) d;
        IF c.n > 0 THEN events := concat_ws(',', events, c.events); n := n + c.n; END IF;
        SELECT x.n, x.events INTO c FROM {{schema}}.cancel_below(r.id, p_now, p_at) x;
        IF c.n > 0 THEN events := concat_ws(',', events, c.events); n := n + c.n; END IF;
        IF r.parent_id IS NOT NULL THEN
          w_ids := w_ids || r.id; w_queues := w_queues || r.queue;
          w_parents := w_parents || r.parent_id; w_states := w_states || 3;
        END IF;
        k := k + 1;
        CONTINUE;
      END IF;
    END IF;
    -- SET reads the row as it was: children_left = 1 means this was the last unfinished child.
    UPDATE {{schema}}.messages m
       SET children_left = m.children_left - 1, state = CASE WHEN m.children_left = 1 THEN 0 ELSE 5 END
     WHERE m.id = w_parents[k] AND m.state = 5
    RETURNING m.queue, m.state, m.run_at INTO r;
    IF FOUND AND r.state = 0 THEN
      events := concat_ws(',', events, {{schema}}.event('waiting', r.queue, w_parents[k], p_at, NULL, ',"runAt":' || r.run_at));
      n := n + 1;
    END IF;
    k := k + 1;
  END LOOP;
END $$;

-- Dead or cancelled children queued again: each parent still pending waits for them again.
CREATE FUNCTION {{schema}}.children_revived(p_parents text[]) RETURNS void LANGUAGE sql AS $$
  UPDATE {{schema}}.messages m SET children_left = m.children_left + c.n
    FROM (SELECT u.parent, count(*)::int AS n FROM unnest(p_parents) AS u(parent) WHERE u.parent IS NOT NULL
           GROUP BY u.parent ORDER BY u.parent) c
   WHERE m.id = c.parent AND m.state = 5
$$;

-- Inserts a flow: its nodes (p_parents: the 1-based position of each node's parent, null for the root;
-- p_levels: its depth, the root 1), level by level through insert_messages, so a deduplicated node's
-- subtree is left out and its parent does not wait for it. Answers every node's id (the existing one when
-- deduplicated), whether it was deduplicated, and whether it was left out (under a deduplicated node).
CREATE FUNCTION {{schema}}.send_flow(
  p_ids text[], p_queues text[], p_priorities int[], p_run_ats bigint[], p_payloads text[], p_headers text[],
  p_keys text[], p_dedupes text[], p_max_attempts int[], p_backoffs text[], p_leases int[], p_timeouts int[],
  p_parents int[], p_children int[], p_ignore boolean[], p_levels int[], p_now bigint, p_at text, p_origin text,
  OUT data text, OUT ids text[], OUT deduplicated boolean[], OUT skipped boolean[])
LANGUAGE plpgsql AS $$
DECLARE
  v_n int := 0; v_events text; l int[]; x record; k int; o int; v_gone int[]; v_fix int[];
  v_size int := cardinality(p_ids); r record; v_seqs bigint[];
BEGIN
  -- Seqs in the tree's order (parents before children, siblings in order), as SQLite inserts them: the order
  -- of delivery within a queue and of children().
  v_seqs := ARRAY(SELECT nextval('{{schema}}.messages_seq') FROM generate_series(1, v_size));
  INSERT INTO {{schema}}.queues (name) SELECT DISTINCT unnest(p_queues) ON CONFLICT (name) DO NOTHING;
  ids := p_ids;
  deduplicated := array_fill(false, ARRAY[v_size]);
  skipped := array_fill(false, ARRAY[v_size]);
  v_fix := array_fill(0, ARRAY[v_size]);
  FOR v_level IN 1..(SELECT max(u) FROM unnest(p_levels) u) LOOP
    -- Left out: the nodes of this level under a node deduplicated or left out.
    SELECT array_agg(u.ord) INTO v_gone FROM unnest(p_levels, p_parents) WITH ORDINALITY AS u(level, parent, ord)
     WHERE u.level = v_level AND (deduplicated[u.parent] OR skipped[u.parent]);
    FOREACH o IN ARRAY coalesce(v_gone, '{}') LOOP skipped[o] := true; END LOOP;
    SELECT array_agg(u.ord ORDER BY u.ord) INTO l FROM unnest(p_levels) WITH ORDINALITY AS u(level, ord)
     WHERE u.level = v_level AND NOT skipped[u.ord];
    CONTINUE WHEN l IS NULL;
    SELECT i.n, i.events, i.ids, i.deduplicated INTO x
      FROM {{schema}}.insert_messages(
        (SELECT array_agg(p_ids[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_queues[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_priorities[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_run_ats[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_payloads[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_headers[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_keys[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_dedupes[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_max_attempts[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_backoffs[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_leases[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_timeouts[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        p_now, p_at,
        (SELECT array_agg(p_ids[p_parents[t.o]] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_children[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(p_ignore[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k)),
        (SELECT array_agg(v_seqs[t.o] ORDER BY t.k) FROM unnest(l) WITH ORDINALITY AS t(o, k))) i;
    IF x.n > 0 THEN v_n := v_n + x.n; v_events := concat_ws(',', v_events, x.events); END IF;
    IF x.ids IS NOT NULL THEN
      FOR k IN 1..cardinality(l) LOOP
        o := l[k];
        ids[o] := x.ids[k];
        deduplicated[o] := x.deduplicated[k];
        IF x.deduplicated[k] AND p_parents[o] IS NOT NULL THEN v_fix[p_parents[o]] := v_fix[p_parents[o]] + 1; END IF;
      END LOOP;
    END IF;
  END LOOP;
  -- A parent some of whose children were deduplicated waits only for the others (none: it is waiting now).
  FOR r IN
    UPDATE {{schema}}.messages m
       SET children_left = m.children_left - f.n, state = CASE WHEN m.children_left = f.n THEN 0 ELSE 5 END
      FROM unnest(p_ids, v_fix) AS f(id, n)
     WHERE f.n > 0 AND m.id = f.id
    RETURNING m.id, m.queue, m.state, m.run_at
  LOOP
    IF r.state = 0 THEN
      v_events := concat_ws(',', v_events, {{schema}}.event('waiting', r.queue, r.id, p_at, NULL, ',"runAt":' || r.run_at));
      v_n := v_n + 1;
    END IF;
  END LOOP;
  data := {{schema}}.stage_events(v_events, v_n, p_now, p_origin);
END $$;
