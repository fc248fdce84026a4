-- Key rate limits (a queue's keyRateLimit): per ordering key, the window the key's deliveries are counted in.
-- Written only by claims of queues with a keyRateLimit; rows whose window has passed are swept.
CREATE TABLE key_rates (
  queue TEXT NOT NULL,
  key TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (queue, key)
) WITHOUT ROWID;
CREATE INDEX key_rates_window ON key_rates (window_start);
