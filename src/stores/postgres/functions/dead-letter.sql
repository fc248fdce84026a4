-- Dead-letter queues (SPEC §6): a message that becomes dead in a queue whose `deadLetter` setting names
-- another queue is also sent there, as a new message with its payload and headers plus
-- `ferry-dead-letter-from: <queue>/<id>`, in the transaction that made it dead. The copy takes the target
-- queue's defaults. Every function that makes a message dead (fail_items, expire_leases) calls dead_letter.

-- A UUIDv7 for time p_now (epoch ms): the random bits of gen_random_uuid() (a v4) under the 48-bit time and
-- the version 7 nibble, so ids made here sort with the engine's (src/engine/ids.ts) by creation time.
CREATE FUNCTION {{schema}}.new_id(p_now bigint) RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(r, 16, 3) || substr(r, 19)
    FROM (SELECT lpad(to_hex(p_now), 12, '0') AS t, gen_random_uuid()::text AS r) x
$$;

-- Copies the messages p_ids (just made dead) whose queue has a dead-letter queue into it; answers the number
-- of copies and their `sent` events (comma-joined).
CREATE FUNCTION {{schema}}.dead_letter(p_ids text[], p_now bigint, p_at text, OUT n int, OUT events text)
LANGUAGE plpgsql AS $$
DECLARE v_ids text[]; v_queues text[]; v_payloads text[]; v_headers text[]; k int;
BEGIN
  n := 0;
  SELECT array_agg({{schema}}.new_id(p_now) ORDER BY m.seq), array_agg(q.settings->>'deadLetter' ORDER BY m.seq),
         array_agg(m.payload ORDER BY m.seq),
         array_agg((coalesce(m.headers::jsonb, '{}'::jsonb)
                    || jsonb_build_object('ferry-dead-letter-from', m.queue || '/' || m.id))::text ORDER BY m.seq)
    INTO v_ids, v_queues, v_payloads, v_headers
    FROM {{schema}}.messages m JOIN {{schema}}.queues q ON q.name = m.queue
   WHERE m.id = ANY(p_ids) AND m.state = 3 AND q.settings->>'deadLetter' IS NOT NULL;
  IF v_ids IS NULL THEN RETURN; END IF;
  k := cardinality(v_ids);
  INSERT INTO {{schema}}.queues (name) SELECT DISTINCT unnest(v_queues) ON CONFLICT (name) DO NOTHING;
  SELECT x.n, x.events INTO n, events
    FROM {{schema}}.insert_messages(v_ids, v_queues, array_fill(0, ARRAY[k]), array_fill(p_now, ARRAY[k]),
           v_payloads, v_headers, array_fill(NULL::text, ARRAY[k]), array_fill(NULL::text, ARRAY[k]),
           array_fill(NULL::int, ARRAY[k]), array_fill(NULL::text, ARRAY[k]), array_fill(NULL::int, ARRAY[k]),
           array_fill(NULL::int, ARRAY[k]), p_now, p_at) x;
END $$;
