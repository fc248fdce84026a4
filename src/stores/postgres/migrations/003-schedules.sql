-- Named cron schedules; next_at is the next tick to send (epoch ms).
CREATE TABLE {{schema}}.schedules (
  name text PRIMARY KEY,
  cron text NOT NULL,
  tz text NOT NULL,
  queue text NOT NULL,
  payload text NOT NULL,
  options text NOT NULL,
  next_at bigint NOT NULL,
  last_at bigint
);
CREATE INDEX schedules_due ON {{schema}}.schedules (next_at);
