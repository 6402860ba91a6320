-- MySQL/MariaDB twin of migrations/postgres: upload claims now hold `<node id>/<uuid>`.
ALTER TABLE images MODIFY COLUMN upload_claim VARCHAR(255);
