-- Key rate limits (a queue's keyRateLimit): per ordering key, the window the key's deliveries are counted in.
-- Written only by claims of queues with a keyRateLimit (serialized on the queue's row); rows whose window has
-- passed are swept.
CREATE TABLE {{schema}}.key_rates (
  queue text NOT NULL,
  key text NOT NULL,
  window_start bigint NOT NULL,
  count integer NOT NULL,
  PRIMARY KEY (queue, key)
);
CREATE INDEX key_rates_window ON {{schema}}.key_rates (window_start);
