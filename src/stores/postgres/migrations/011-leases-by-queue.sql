-- Leases are indexed by queue, as on SQLite: a claim's probe for its queue's lapsed leases, and the settling
-- of one queue's, read that queue's lapsed leases only. Indexed by lease end alone, they read every queue's
-- (a crashed fleet's thousands, in one queue, on every claim of every other queue until the sweep had settled
-- them), and a generic plan of the one-queue statement could walk every lease for its LIMIT. The sweep, which
-- settles every queue's, walks the queues.
CREATE INDEX messages_leases ON {{schema}}.messages (queue, lease_until) WHERE state = 1;
DROP INDEX {{schema}}.messages_lease;
