-- MySQL/MariaDB twin of migrations/postgres: the upload that holds an image in `saving`, at
-- its final width at once (migration 3 widens it on PostgreSQL): on MySQL a wider VARCHAR
-- would rebuild Glance's images table.
ALTER TABLE images ADD COLUMN upload_claim VARCHAR(255), ADD COLUMN upload_heartbeat DATETIME(6);
