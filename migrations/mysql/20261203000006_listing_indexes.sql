-- SQLite alone needs Glint's listing indexes (see migrations/sqlite): InnoDB plans from index
-- dives and uses Glance's. The version keeps the databases in step.
DO 0;
