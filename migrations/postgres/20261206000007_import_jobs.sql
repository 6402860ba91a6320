-- Glint's own tables for interoperable import (Glance's `tasks` and `task_info` hold what
-- clients see). An import is a job any node may claim (or only `node`, when the data it
-- needs is staged on that node's local disk); a claim whose heartbeat stops is taken over.
CREATE TABLE glint_import_jobs (
    task_id    VARCHAR(36)  PRIMARY KEY,
    image_id   VARCHAR(36)  NOT NULL,
    spec       TEXT         NOT NULL,
    node       VARCHAR(255),
    claim      VARCHAR(255),
    heartbeat  TIMESTAMP,
    attempts   INTEGER      NOT NULL,
    created_at TIMESTAMP    NOT NULL
);
CREATE INDEX glint_ix_import_jobs_image ON glint_import_jobs (image_id);
-- Data staged for an image (`PUT /stage`, or a download an import staged): where it is, and
-- what it hashed to on its way in.
CREATE TABLE glint_staged_data (
    image_id      VARCHAR(36)  PRIMARY KEY,
    location      TEXT         NOT NULL,
    size          BIGINT       NOT NULL,
    checksum      VARCHAR(32),
    os_hash_value VARCHAR(128),
    node          VARCHAR(255),
    created_at    TIMESTAMP    NOT NULL
);
