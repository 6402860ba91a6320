//! HTTP-level tests of the Image API, each run on SQLite, PostgreSQL and MySQL/MariaDB.

mod helpers;

mod auth;
mod cache;
mod concurrency;
mod copies;
mod data_in_use;
mod database_outages;
mod disk_formats;
mod errors;
mod glance_schema;
mod hardening;
mod http_wire;
mod image_data;
mod images_create;
mod images_delete;
mod images_list;
mod images_update;
mod imports;
mod keystone_auth;
mod locations_api;
mod locations_shown;
mod maintenance;
mod members;
mod metadef_files;
mod metadefs;
mod metrics;
mod multi_store;
mod notifications;
mod openapi;
mod property_protections;
#[cfg(feature = "rbd")]
mod rbd_store;
mod s3_store;
mod schemas;
mod server_limits;
mod store_limits;
mod swift_multi_tenant;
mod swift_store;
mod tags;
mod unified_limits;
mod versions;
mod vmware_store;
