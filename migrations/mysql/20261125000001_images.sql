-- MySQL/MariaDB: Glance's own schema (glance-manage db_sync of Glance 2024.1 to 33, alembic
-- head 2024_1_contract01), as Glance creates it on MariaDB, so that Glance and Glint serve the
-- same database. One difference: tables Glint creates are utf8mb4 (the server's default
-- collation), where Glance's are utf8mb3, so that any text PostgreSQL takes is stored here too.
-- Glance reads them unchanged. On a database Glance created, Glint records this migration
-- as applied without running it. Versions follow migrations/postgres, so `glint db version`
-- reads the same on every database.

CREATE TABLE images (
    id varchar(36) NOT NULL,
    name varchar(255) DEFAULT NULL,
    size bigint(20) DEFAULT NULL,
    status varchar(30) NOT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    deleted_at datetime DEFAULT NULL,
    deleted tinyint(1) NOT NULL,
    disk_format varchar(20) DEFAULT NULL,
    container_format varchar(20) DEFAULT NULL,
    checksum varchar(32) DEFAULT NULL,
    owner varchar(255) DEFAULT NULL,
    min_disk int(11) NOT NULL,
    min_ram int(11) NOT NULL,
    protected tinyint(1) NOT NULL DEFAULT 0,
    virtual_size bigint(20) DEFAULT NULL,
    visibility enum('private','public','shared','community') NOT NULL DEFAULT 'shared',
    os_hidden tinyint(1) NOT NULL DEFAULT 0,
    os_hash_algo varchar(64) DEFAULT NULL,
    os_hash_value varchar(128) DEFAULT NULL,
    PRIMARY KEY (id),
    KEY checksum_image_idx (checksum),
    KEY ix_images_deleted (deleted),
    KEY owner_image_idx (owner),
    KEY created_at_image_idx (created_at),
    KEY updated_at_image_idx (updated_at),
    KEY visibility_image_idx (visibility),
    KEY os_hidden_image_idx (os_hidden),
    KEY os_hash_value_image_idx (os_hash_value),
    CHECK (deleted in (0,1)),
    CHECK (protected in (0,1))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE image_properties (
    id int(11) NOT NULL AUTO_INCREMENT,
    image_id varchar(36) NOT NULL,
    name varchar(255) NOT NULL,
    value text DEFAULT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    deleted_at datetime DEFAULT NULL,
    deleted tinyint(1) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY ix_image_properties_image_id_name (image_id,name),
    KEY ix_image_properties_deleted (deleted),
    KEY ix_image_properties_image_id (image_id),
    FOREIGN KEY (image_id) REFERENCES images (id),
    CHECK (deleted in (0,1))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE image_tags (
    id int(11) NOT NULL AUTO_INCREMENT,
    image_id varchar(36) NOT NULL,
    value varchar(255) NOT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    deleted_at datetime DEFAULT NULL,
    deleted tinyint(1) NOT NULL,
    PRIMARY KEY (id),
    KEY ix_image_tags_image_id (image_id),
    KEY ix_image_tags_image_id_tag_value (image_id,value),
    FOREIGN KEY (image_id) REFERENCES images (id),
    CHECK (deleted in (0,1))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE image_members (
    id int(11) NOT NULL AUTO_INCREMENT,
    image_id varchar(36) NOT NULL,
    member varchar(255) NOT NULL,
    can_share tinyint(1) NOT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    deleted_at datetime DEFAULT NULL,
    deleted tinyint(1) NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'pending',
    PRIMARY KEY (id),
    UNIQUE KEY image_members_image_id_member_deleted_at_key (image_id,member,deleted_at),
    KEY ix_image_members_deleted (deleted),
    KEY ix_image_members_image_id (image_id),
    KEY ix_image_members_image_id_member (image_id,member),
    FOREIGN KEY (image_id) REFERENCES images (id),
    CHECK (can_share in (0,1)),
    CHECK (deleted in (0,1))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE image_locations (
    id int(11) NOT NULL AUTO_INCREMENT,
    image_id varchar(36) NOT NULL,
    value text NOT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    deleted_at datetime DEFAULT NULL,
    deleted tinyint(1) NOT NULL,
    meta_data text DEFAULT NULL,
    status varchar(30) NOT NULL DEFAULT 'active',
    PRIMARY KEY (id),
    KEY ix_image_locations_deleted (deleted),
    KEY ix_image_locations_image_id (image_id),
    FOREIGN KEY (image_id) REFERENCES images (id),
    CHECK (deleted in (0,1))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE tasks (
    id varchar(36) NOT NULL,
    type varchar(30) NOT NULL,
    status varchar(30) NOT NULL,
    owner varchar(255) NOT NULL,
    expires_at datetime DEFAULT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    deleted_at datetime DEFAULT NULL,
    deleted tinyint(1) NOT NULL,
    image_id varchar(36) DEFAULT NULL,
    request_id varchar(64) DEFAULT NULL,
    user_id varchar(64) DEFAULT NULL,
    PRIMARY KEY (id),
    KEY ix_tasks_deleted (deleted),
    KEY ix_tasks_owner (owner),
    KEY ix_tasks_status (status),
    KEY ix_tasks_type (type),
    KEY ix_tasks_updated_at (updated_at),
    KEY ix_tasks_image_id (image_id),
    CHECK (deleted in (0,1))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE task_info (
    task_id varchar(36) NOT NULL,
    input text DEFAULT NULL,
    result text DEFAULT NULL,
    message text DEFAULT NULL,
    PRIMARY KEY (task_id),
    FOREIGN KEY (task_id) REFERENCES tasks (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE metadef_namespaces (
    id int(11) NOT NULL AUTO_INCREMENT,
    namespace varchar(80) NOT NULL,
    display_name varchar(80) DEFAULT NULL,
    description text DEFAULT NULL,
    visibility varchar(32) DEFAULT NULL,
    protected tinyint(1) DEFAULT NULL,
    owner varchar(255) NOT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_metadef_namespaces_namespace (namespace),
    KEY ix_metadef_namespaces_owner (owner),
    CHECK (protected in (0,1))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE metadef_resource_types (
    id int(11) NOT NULL AUTO_INCREMENT,
    name varchar(80) NOT NULL,
    protected tinyint(1) NOT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_metadef_resource_types_name (name),
    CHECK (protected in (0,1))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE metadef_namespace_resource_types (
    resource_type_id int(11) NOT NULL,
    namespace_id int(11) NOT NULL,
    properties_target varchar(80) DEFAULT NULL,
    prefix varchar(80) DEFAULT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    PRIMARY KEY (resource_type_id,namespace_id),
    KEY ix_metadef_ns_res_types_namespace_id (namespace_id),
    FOREIGN KEY (namespace_id) REFERENCES metadef_namespaces (id),
    FOREIGN KEY (resource_type_id) REFERENCES metadef_resource_types (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE metadef_objects (
    id int(11) NOT NULL AUTO_INCREMENT,
    namespace_id int(11) NOT NULL,
    name varchar(80) NOT NULL,
    description text DEFAULT NULL,
    required text DEFAULT NULL,
    json_schema text NOT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_metadef_objects_namespace_id_name (namespace_id,name),
    KEY ix_metadef_objects_name (name),
    FOREIGN KEY (namespace_id) REFERENCES metadef_namespaces (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE metadef_properties (
    id int(11) NOT NULL AUTO_INCREMENT,
    namespace_id int(11) NOT NULL,
    name varchar(80) NOT NULL,
    json_schema text NOT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_metadef_properties_namespace_id_name (namespace_id,name),
    KEY ix_metadef_properties_name (name),
    FOREIGN KEY (namespace_id) REFERENCES metadef_namespaces (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE metadef_tags (
    id int(11) NOT NULL AUTO_INCREMENT,
    namespace_id int(11) NOT NULL,
    name varchar(80) NOT NULL,
    created_at datetime NOT NULL,
    updated_at datetime DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_metadef_tags_namespace_id_name (namespace_id,name),
    KEY ix_metadef_tags_name (name),
    FOREIGN KEY (namespace_id) REFERENCES metadef_namespaces (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE node_reference (
    node_reference_id bigint(20) NOT NULL AUTO_INCREMENT,
    node_reference_url varchar(255) NOT NULL,
    PRIMARY KEY (node_reference_id),
    UNIQUE KEY uq_node_reference_node_reference_url (node_reference_url)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE cached_images (
    id bigint(20) NOT NULL AUTO_INCREMENT,
    image_id varchar(36) NOT NULL,
    last_accessed datetime NOT NULL,
    last_modified datetime NOT NULL,
    size bigint(20) NOT NULL,
    hits int(11) NOT NULL,
    checksum varchar(32) DEFAULT NULL,
    node_reference_id bigint(20) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY ix_cached_images_image_id_node_reference_id (image_id,node_reference_id),
    FOREIGN KEY (node_reference_id) REFERENCES node_reference (node_reference_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE alembic_version (
    version_num varchar(32) NOT NULL,
    PRIMARY KEY (version_num)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
INSERT INTO alembic_version (version_num) VALUES ('2024_1_contract01');
