-- Job timeouts: `timeout` is the message's own (ms; null: the claim's, else the queue's, else none) and
-- `deadline` the current attempt's end (set at claim; no lease passes it). The queue's `timeout` and
-- `deadLetter` settings live in queues.settings.
ALTER TABLE {{schema}}.messages ADD COLUMN timeout integer, ADD COLUMN deadline bigint;
