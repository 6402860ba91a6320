-- MySQL/MariaDB twin of migrations/postgres: upload claims hold `<node id>/<uuid>`, for which
-- migration 2 made the column wide enough already. The version keeps the databases in step.
DO 0;
