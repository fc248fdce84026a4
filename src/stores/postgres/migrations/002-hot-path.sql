-- Version 2 created the hot path's first SQL functions (send, claim, acks as one statement each). Functions
-- are no longer migrations: their current text lives in ../functions/*.sql and is installed after the
-- migrations whenever it changes (migrate.ts); migration 005 drops what versions 2-4 created. This file
-- stays, empty, so that version numbers keep their meaning.
SELECT 1;
