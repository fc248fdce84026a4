-- Flows (parent and children). state 5: pending, a parent waiting for its children (never claimed).
-- children_left: the parent's unfinished children; a child's end decrements it through the parent's primary
-- key (no scan of siblings). ignore_child_failures: 1 when the parent waits for every child whatever its end.
ALTER TABLE messages ADD COLUMN parent_id TEXT;
ALTER TABLE messages ADD COLUMN children_left INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN ignore_child_failures INTEGER NOT NULL DEFAULT 0;
-- children(), and the cascades (cancel, a failed child): written once, at send, for children only.
CREATE INDEX messages_parent ON messages (parent_id, seq) WHERE parent_id IS NOT NULL;
-- Stats and list({ state: 'pending' }), as for dead and cancelled.
CREATE INDEX messages_pending ON messages (queue, seq) WHERE state = 5;
