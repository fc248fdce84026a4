-- Version 4 replaced version 2's functions with cheaper ones (JSON by concatenation, claim-only steps
-- committing without a WAL flush). Functions are no longer migrations: see 002-hot-path.sql and
-- ../functions/*.sql, where both choices live on with their reasons.
SELECT 1;
