-- SQLite twin of migrations/postgres: upload claims now hold `<node id>/<uuid>`. SQLite does
-- not enforce VARCHAR lengths, so the column needs no change; the version keeps both in step.
SELECT 1;
