-- MySQL/MariaDB twin of migrations/postgres: removals the scrubber puts off (data in use).
CREATE TABLE glint_scrub_deferrals (
    location_id BIGINT       NOT NULL PRIMARY KEY,
    attempts    INTEGER      NOT NULL,
    retry_at    DATETIME(6)  NOT NULL,
    reason      TEXT         NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
