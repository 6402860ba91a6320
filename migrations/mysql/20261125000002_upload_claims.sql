-- MySQL/MariaDB twin of migrations/postgres: the upload that holds an image in `saving`.
ALTER TABLE images ADD COLUMN upload_claim VARCHAR(36), ADD COLUMN upload_heartbeat DATETIME(6);
