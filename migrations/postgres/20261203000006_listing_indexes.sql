-- SQLite alone needs Glint's listing indexes (see migrations/sqlite): PostgreSQL plans from
-- statistics and uses Glance's. The version keeps the databases in step.
SELECT 1;
