-- SQLite twin of migrations/postgres: same tables, SQLite types (timestamps as ISO text).
-- Images and their metadata. Table and column names follow Glance's schema so that operators
-- find what they know; property, tag and member rows are removed outright, while image rows
-- are soft-deleted (their ids stay reserved, as in Glance).
CREATE TABLE images (
    id               VARCHAR(36)  PRIMARY KEY,
    name             VARCHAR(255),
    size             INTEGER,
    virtual_size     INTEGER,
    status           VARCHAR(30)  NOT NULL,
    visibility       VARCHAR(20)  NOT NULL DEFAULT 'shared'
                     CHECK (visibility IN ('private', 'public', 'shared', 'community')),
    checksum         VARCHAR(32),
    os_hash_algo     VARCHAR(64),
    os_hash_value    VARCHAR(128),
    owner            VARCHAR(255),
    disk_format      VARCHAR(20),
    container_format VARCHAR(20),
    min_disk         INTEGER      NOT NULL DEFAULT 0,
    min_ram          INTEGER      NOT NULL DEFAULT 0,
    protected        INTEGER      NOT NULL DEFAULT 0,
    os_hidden        INTEGER      NOT NULL DEFAULT 0,
    created_at       TEXT         NOT NULL,
    updated_at       TEXT         NOT NULL,
    deleted_at       TEXT,
    deleted          INTEGER      NOT NULL DEFAULT 0
);
CREATE INDEX ix_images_listing ON images (deleted, created_at, id);
CREATE INDEX ix_images_updated_at ON images (updated_at);
CREATE INDEX ix_images_owner ON images (owner);
CREATE INDEX ix_images_visibility ON images (visibility);
CREATE INDEX ix_images_checksum ON images (checksum);
CREATE INDEX ix_images_os_hash_value ON images (os_hash_value);

CREATE TABLE image_properties (
    id         INTEGER      PRIMARY KEY AUTOINCREMENT,
    image_id   VARCHAR(36)  NOT NULL REFERENCES images (id),
    name       VARCHAR(255) NOT NULL,
    value      TEXT         NOT NULL,
    created_at TEXT         NOT NULL,
    updated_at TEXT         NOT NULL,
    UNIQUE (image_id, name)
);
CREATE INDEX ix_image_properties_name ON image_properties (name);

CREATE TABLE image_tags (
    id         INTEGER      PRIMARY KEY AUTOINCREMENT,
    image_id   VARCHAR(36)  NOT NULL REFERENCES images (id),
    value      VARCHAR(255) NOT NULL,
    created_at TEXT         NOT NULL,
    updated_at TEXT         NOT NULL,
    UNIQUE (image_id, value)
);
CREATE INDEX ix_image_tags_value ON image_tags (value);

CREATE TABLE image_members (
    id         INTEGER      PRIMARY KEY AUTOINCREMENT,
    image_id   VARCHAR(36)  NOT NULL REFERENCES images (id),
    member     VARCHAR(255) NOT NULL,
    can_share  INTEGER      NOT NULL DEFAULT 0,
    status     VARCHAR(20)  NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'accepted', 'rejected')),
    created_at TEXT         NOT NULL,
    updated_at TEXT         NOT NULL,
    UNIQUE (image_id, member)
);
CREATE INDEX ix_image_members_member ON image_members (member);

-- Where image data lives; written by the data path. Locations keep their own lifecycle
-- (active → pending_delete → deleted) because the scrubber works through them.
CREATE TABLE image_locations (
    id         INTEGER      PRIMARY KEY AUTOINCREMENT,
    image_id   VARCHAR(36)  NOT NULL REFERENCES images (id),
    value      TEXT         NOT NULL,
    meta_data  TEXT         NOT NULL DEFAULT '{}',
    status     VARCHAR(30)  NOT NULL DEFAULT 'active',
    created_at TEXT         NOT NULL,
    updated_at TEXT         NOT NULL,
    deleted_at TEXT,
    deleted    INTEGER      NOT NULL DEFAULT 0
);
CREATE INDEX ix_image_locations_image_id ON image_locations (image_id);
