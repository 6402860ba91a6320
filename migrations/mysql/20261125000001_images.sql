-- MySQL/MariaDB twin of migrations/postgres (same versions, so `glint db version` reads the
-- same on every database). Text in utf8mb4 with the server's default collation, so that it
-- compares as Glance's tables on MySQL do (case-insensitively, by default). A binary
-- collation (utf8mb4_bin) would compare exactly, but sqlx then reads the columns as bytes.
CREATE TABLE images (
    id               VARCHAR(36)  NOT NULL PRIMARY KEY,
    name             VARCHAR(255),
    size             BIGINT,
    virtual_size     BIGINT,
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
    protected        BOOLEAN      NOT NULL DEFAULT FALSE,
    os_hidden        BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at       DATETIME(6)  NOT NULL,
    updated_at       DATETIME(6)  NOT NULL,
    deleted_at       DATETIME(6),
    deleted          BOOLEAN      NOT NULL DEFAULT FALSE,
    INDEX ix_images_listing (deleted, created_at, id),
    INDEX ix_images_updated_at (updated_at),
    INDEX ix_images_owner (owner),
    INDEX ix_images_visibility (visibility),
    INDEX ix_images_checksum (checksum),
    INDEX ix_images_os_hash_value (os_hash_value)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE image_properties (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    image_id   VARCHAR(36)  NOT NULL,
    name       VARCHAR(255) NOT NULL,
    value      TEXT         NOT NULL,
    created_at DATETIME(6)  NOT NULL,
    updated_at DATETIME(6)  NOT NULL,
    UNIQUE KEY ix_image_properties_image_id_name (image_id, name),
    INDEX ix_image_properties_name (name),
    FOREIGN KEY (image_id) REFERENCES images (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE image_tags (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    image_id   VARCHAR(36)  NOT NULL,
    value      VARCHAR(255) NOT NULL,
    created_at DATETIME(6)  NOT NULL,
    updated_at DATETIME(6)  NOT NULL,
    UNIQUE KEY ix_image_tags_image_id_value (image_id, value),
    INDEX ix_image_tags_value (value),
    FOREIGN KEY (image_id) REFERENCES images (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE image_members (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    image_id   VARCHAR(36)  NOT NULL,
    member     VARCHAR(255) NOT NULL,
    can_share  BOOLEAN      NOT NULL DEFAULT FALSE,
    status     VARCHAR(20)  NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'accepted', 'rejected')),
    created_at DATETIME(6)  NOT NULL,
    updated_at DATETIME(6)  NOT NULL,
    UNIQUE KEY ix_image_members_image_id_member (image_id, member),
    INDEX ix_image_members_member (member),
    FOREIGN KEY (image_id) REFERENCES images (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Where image data lives; written by the data path (see migrations/postgres). `meta_data`
-- has no default: MySQL allows none on TEXT, and every insert gives one.
CREATE TABLE image_locations (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    image_id   VARCHAR(36)  NOT NULL,
    value      TEXT         NOT NULL,
    meta_data  TEXT         NOT NULL,
    status     VARCHAR(30)  NOT NULL DEFAULT 'active',
    created_at DATETIME(6)  NOT NULL,
    updated_at DATETIME(6)  NOT NULL,
    deleted_at DATETIME(6),
    deleted    BOOLEAN      NOT NULL DEFAULT FALSE,
    INDEX ix_image_locations_image_id (image_id),
    FOREIGN KEY (image_id) REFERENCES images (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
