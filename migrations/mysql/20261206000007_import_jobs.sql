-- MySQL/MariaDB twin of migrations/postgres: import jobs and staged data.
CREATE TABLE glint_import_jobs (
    task_id    VARCHAR(36)  NOT NULL PRIMARY KEY,
    image_id   VARCHAR(36)  NOT NULL,
    spec       TEXT         NOT NULL,
    node       VARCHAR(255),
    claim      VARCHAR(255),
    heartbeat  DATETIME(6),
    attempts   INTEGER      NOT NULL,
    created_at DATETIME(6)  NOT NULL,
    INDEX glint_ix_import_jobs_image (image_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
CREATE TABLE glint_staged_data (
    image_id      VARCHAR(36)  NOT NULL PRIMARY KEY,
    location      TEXT         NOT NULL,
    size          BIGINT       NOT NULL,
    checksum      VARCHAR(32),
    os_hash_value VARCHAR(128),
    node          VARCHAR(255),
    created_at    DATETIME(6)  NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
