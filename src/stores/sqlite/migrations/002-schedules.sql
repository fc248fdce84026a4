-- Named cron schedules; next_at is the next tick to send.
CREATE TABLE schedules (
  name TEXT PRIMARY KEY,
  cron TEXT NOT NULL,
  tz TEXT NOT NULL,
  queue TEXT NOT NULL,
  payload TEXT NOT NULL,
  options TEXT NOT NULL,
  next_at INTEGER NOT NULL,
  last_at INTEGER
) WITHOUT ROWID;
CREATE INDEX schedules_due ON schedules (next_at);
