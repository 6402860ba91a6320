-- Glance's own schema (glance-manage db_sync of Glance 2024.1 to 33: alembic head
-- 2024_1_contract01), so that Glance and Glint serve the same database. This turns the tables
-- of earlier Glint versions into Glance's: properties, tags and members are soft-deleted as in
-- Glance (`deleted`, `deleted_at`), types, nullability, defaults and index names are Glance's,
-- and Glance's other tables are created empty. On a database Glance created, Glint records
-- this migration as applied without running it. Glint's own additions stay: the upload claim
-- columns of `images` (nullable) and the glint_* tables.

CREATE TYPE image_visibility AS ENUM ('private', 'public', 'shared', 'community');

ALTER TABLE images DROP CONSTRAINT images_visibility_check;
ALTER TABLE images ALTER COLUMN visibility DROP DEFAULT;
ALTER TABLE images ALTER COLUMN visibility TYPE image_visibility USING visibility::image_visibility;
ALTER TABLE images ALTER COLUMN visibility SET DEFAULT 'shared';
ALTER TABLE images ALTER COLUMN updated_at DROP NOT NULL;
ALTER TABLE images ALTER COLUMN deleted DROP DEFAULT;
ALTER TABLE images ALTER COLUMN min_disk DROP DEFAULT;
ALTER TABLE images ALTER COLUMN min_ram DROP DEFAULT;
DROP INDEX ix_images_listing;
ALTER INDEX ix_images_updated_at RENAME TO updated_at_image_idx;
ALTER INDEX ix_images_owner RENAME TO owner_image_idx;
ALTER INDEX ix_images_visibility RENAME TO visibility_image_idx;
ALTER INDEX ix_images_checksum RENAME TO checksum_image_idx;
ALTER INDEX ix_images_os_hash_value RENAME TO os_hash_value_image_idx;
CREATE INDEX created_at_image_idx ON images (created_at);
CREATE INDEX os_hidden_image_idx ON images (os_hidden);
CREATE INDEX ix_images_deleted ON images (deleted);

ALTER TABLE image_properties ALTER COLUMN id TYPE INTEGER;
ALTER SEQUENCE image_properties_id_seq AS INTEGER;
ALTER TABLE image_properties ALTER COLUMN value DROP NOT NULL;
ALTER TABLE image_properties ALTER COLUMN updated_at DROP NOT NULL;
ALTER TABLE image_properties ADD COLUMN deleted_at TIMESTAMP;
ALTER TABLE image_properties ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE image_properties ALTER COLUMN deleted DROP DEFAULT;
ALTER TABLE image_properties RENAME CONSTRAINT image_properties_image_id_name_key
    TO ix_image_properties_image_id_name;
DROP INDEX ix_image_properties_name;
CREATE INDEX ix_image_properties_deleted ON image_properties (deleted);
CREATE INDEX ix_image_properties_image_id ON image_properties (image_id);

ALTER TABLE image_tags ALTER COLUMN id TYPE INTEGER;
ALTER SEQUENCE image_tags_id_seq AS INTEGER;
ALTER TABLE image_tags ALTER COLUMN updated_at DROP NOT NULL;
ALTER TABLE image_tags ADD COLUMN deleted_at TIMESTAMP;
ALTER TABLE image_tags ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE image_tags ALTER COLUMN deleted DROP DEFAULT;
ALTER TABLE image_tags DROP CONSTRAINT image_tags_image_id_value_key;
DROP INDEX ix_image_tags_value;
CREATE INDEX ix_image_tags_image_id ON image_tags (image_id);
CREATE INDEX ix_image_tags_image_id_tag_value ON image_tags (image_id, value);

ALTER TABLE image_members ALTER COLUMN id TYPE INTEGER;
ALTER SEQUENCE image_members_id_seq AS INTEGER;
ALTER TABLE image_members DROP CONSTRAINT image_members_status_check;
ALTER TABLE image_members ALTER COLUMN can_share DROP DEFAULT;
ALTER TABLE image_members ALTER COLUMN updated_at DROP NOT NULL;
ALTER TABLE image_members ADD COLUMN deleted_at TIMESTAMP;
ALTER TABLE image_members ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE image_members ALTER COLUMN deleted DROP DEFAULT;
ALTER TABLE image_members DROP CONSTRAINT image_members_image_id_member_key;
ALTER TABLE image_members ADD CONSTRAINT image_members_image_id_member_deleted_at_key
    UNIQUE (image_id, member, deleted_at);
DROP INDEX ix_image_members_member;
CREATE INDEX ix_image_members_deleted ON image_members (deleted);
CREATE INDEX ix_image_members_image_id ON image_members (image_id);
CREATE INDEX ix_image_members_image_id_member ON image_members (image_id, member);

ALTER TABLE image_locations ALTER COLUMN id TYPE INTEGER;
ALTER SEQUENCE image_locations_id_seq AS INTEGER;
ALTER TABLE image_locations ALTER COLUMN meta_data DROP NOT NULL;
ALTER TABLE image_locations ALTER COLUMN meta_data DROP DEFAULT;
ALTER TABLE image_locations ALTER COLUMN updated_at DROP NOT NULL;
ALTER TABLE image_locations ALTER COLUMN deleted DROP DEFAULT;
CREATE INDEX ix_image_locations_deleted ON image_locations (deleted);

CREATE TABLE tasks (
    id         VARCHAR(36) NOT NULL,
    type       VARCHAR(30) NOT NULL,
    status     VARCHAR(30) NOT NULL,
    owner      VARCHAR(255) NOT NULL,
    expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP,
    deleted_at TIMESTAMP,
    deleted    BOOLEAN NOT NULL,
    image_id   VARCHAR(36),
    request_id VARCHAR(64),
    user_id    VARCHAR(64),
    CONSTRAINT tasks_pkey PRIMARY KEY (id)
);
CREATE INDEX ix_tasks_deleted ON tasks (deleted);
CREATE INDEX ix_tasks_image_id ON tasks (image_id);
CREATE INDEX ix_tasks_owner ON tasks (owner);
CREATE INDEX ix_tasks_status ON tasks (status);
CREATE INDEX ix_tasks_type ON tasks (type);
CREATE INDEX ix_tasks_updated_at ON tasks (updated_at);

CREATE TABLE task_info (
    task_id VARCHAR(36) NOT NULL,
    input   TEXT,
    result  TEXT,
    message TEXT,
    CONSTRAINT task_info_pkey PRIMARY KEY (task_id),
    CONSTRAINT task_info_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasks (id)
);

CREATE TABLE metadef_namespaces (
    id           SERIAL NOT NULL,
    namespace    VARCHAR(80) NOT NULL,
    display_name VARCHAR(80),
    description  TEXT,
    visibility   VARCHAR(32),
    protected    BOOLEAN,
    owner        VARCHAR(255) NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP,
    CONSTRAINT metadef_namespaces_pkey PRIMARY KEY (id),
    CONSTRAINT uq_metadef_namespaces_namespace UNIQUE (namespace)
);
CREATE INDEX ix_metadef_namespaces_owner ON metadef_namespaces (owner);

CREATE TABLE metadef_resource_types (
    id         SERIAL NOT NULL,
    name       VARCHAR(80) NOT NULL,
    protected  BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP,
    CONSTRAINT metadef_resource_types_pkey PRIMARY KEY (id),
    CONSTRAINT uq_metadef_resource_types_name UNIQUE (name)
);

CREATE TABLE metadef_namespace_resource_types (
    resource_type_id  INTEGER NOT NULL,
    namespace_id      INTEGER NOT NULL,
    properties_target VARCHAR(80),
    prefix            VARCHAR(80),
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP,
    CONSTRAINT metadef_namespace_resource_types_pkey PRIMARY KEY (resource_type_id, namespace_id),
    CONSTRAINT metadef_namespace_resource_types_namespace_id_fkey
        FOREIGN KEY (namespace_id) REFERENCES metadef_namespaces (id),
    CONSTRAINT metadef_namespace_resource_types_resource_type_id_fkey
        FOREIGN KEY (resource_type_id) REFERENCES metadef_resource_types (id)
);
CREATE INDEX ix_metadef_ns_res_types_namespace_id ON metadef_namespace_resource_types (namespace_id);

CREATE TABLE metadef_objects (
    id           SERIAL NOT NULL,
    namespace_id INTEGER NOT NULL,
    name         VARCHAR(80) NOT NULL,
    description  TEXT,
    required     TEXT,
    json_schema  TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP,
    CONSTRAINT metadef_objects_pkey PRIMARY KEY (id),
    CONSTRAINT metadef_objects_namespace_id_fkey FOREIGN KEY (namespace_id) REFERENCES metadef_namespaces (id),
    CONSTRAINT uq_metadef_objects_namespace_id_name UNIQUE (namespace_id, name)
);
CREATE INDEX ix_metadef_objects_name ON metadef_objects (name);

CREATE TABLE metadef_properties (
    id           SERIAL NOT NULL,
    namespace_id INTEGER NOT NULL,
    name         VARCHAR(80) NOT NULL,
    json_schema  TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP,
    CONSTRAINT metadef_properties_pkey PRIMARY KEY (id),
    CONSTRAINT metadef_properties_namespace_id_fkey FOREIGN KEY (namespace_id) REFERENCES metadef_namespaces (id),
    CONSTRAINT uq_metadef_properties_namespace_id_name UNIQUE (namespace_id, name)
);
CREATE INDEX ix_metadef_properties_name ON metadef_properties (name);

CREATE TABLE metadef_tags (
    id           SERIAL NOT NULL,
    namespace_id INTEGER NOT NULL,
    name         VARCHAR(80) NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP,
    CONSTRAINT metadef_tags_pkey PRIMARY KEY (id),
    CONSTRAINT metadef_tags_namespace_id_fkey FOREIGN KEY (namespace_id) REFERENCES metadef_namespaces (id),
    CONSTRAINT uq_metadef_tags_namespace_id_name UNIQUE (namespace_id, name)
);
CREATE INDEX ix_metadef_tags_name ON metadef_tags (name);

CREATE TABLE node_reference (
    node_reference_id  BIGSERIAL NOT NULL,
    node_reference_url VARCHAR(255) NOT NULL,
    CONSTRAINT node_reference_pkey PRIMARY KEY (node_reference_id),
    CONSTRAINT uq_node_reference_node_reference_url UNIQUE (node_reference_url)
);

CREATE TABLE cached_images (
    id                BIGSERIAL NOT NULL,
    image_id          VARCHAR(36) NOT NULL,
    last_accessed     TIMESTAMP NOT NULL,
    last_modified     TIMESTAMP NOT NULL,
    size              BIGINT NOT NULL,
    hits              INTEGER NOT NULL,
    checksum          VARCHAR(32),
    node_reference_id BIGINT NOT NULL,
    CONSTRAINT cached_images_pkey PRIMARY KEY (id),
    CONSTRAINT cached_images_node_reference_id_fkey
        FOREIGN KEY (node_reference_id) REFERENCES node_reference (node_reference_id),
    CONSTRAINT ix_cached_images_image_id_node_reference_id UNIQUE (image_id, node_reference_id)
);

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version (version_num) VALUES ('2024_1_contract01');
