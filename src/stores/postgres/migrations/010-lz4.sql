-- Event blocks, payloads and results are compressed with lz4 where the server was built with it (PostgreSQL 14
-- and later, usually). A worker step's or a batch's event block is large enough to be compressed: pglz
-- (the default) showed in perf profiles of a worker drain, and lz4 compresses several times faster (no
-- throughput change could be told from noise). The setting applies to values written from now on. Dynamic
-- SQL, so a server without the option (or without the syntax) skips it.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
    EXECUTE 'ALTER TABLE {{schema}}.events ALTER COLUMN data SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE {{schema}}.event_inbox ALTER COLUMN data SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE {{schema}}.messages ALTER COLUMN payload SET COMPRESSION lz4, '
         || 'ALTER COLUMN result SET COMPRESSION lz4';
  END IF;
END $$;
