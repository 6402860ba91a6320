-- MySQL/MariaDB twin of migrations/postgres: Glance's schema, which migration 1 created
-- already here (no MySQL database had the tables of earlier Glint versions). Kept so that the
-- versions, and what a database Glance created skips, are the same on every database.
DO 0;
