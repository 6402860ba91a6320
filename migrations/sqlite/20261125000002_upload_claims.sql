-- SQLite twin of migrations/postgres: the claim of a running upload and its heartbeat.
ALTER TABLE images ADD COLUMN upload_claim VARCHAR(36);
ALTER TABLE images ADD COLUMN upload_heartbeat TEXT;
