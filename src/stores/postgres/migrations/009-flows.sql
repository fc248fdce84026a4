-- Flows (parent and children). state 5: pending, a parent waiting for its children (never claimed).
-- children_left: the parent's unfinished children; a child's end decrements it through the parent's primary
-- key (no scan of siblings). ignore_child_failures: the parent waits for every child whatever its end.
ALTER TABLE {{schema}}.messages ADD COLUMN parent_id text, ADD COLUMN children_left integer NOT NULL DEFAULT 0,
  ADD COLUMN ignore_child_failures boolean NOT NULL DEFAULT false;
-- children(), and the cascades (cancel, a failed child): written once, at send, for children only.
CREATE INDEX messages_parent ON {{schema}}.messages (parent_id, seq) WHERE parent_id IS NOT NULL;
