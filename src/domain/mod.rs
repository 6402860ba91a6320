//! The image service's rules, free of HTTP and SQL: the image record, its status machine,
//! visibility, the request context, JSON-patch, list queries, the JSON schema, policy, and the
//! repository port that `db/` implements. Nothing here imports axum or sqlx.

pub mod cache;
pub mod context;
pub mod data_rules;
pub mod error;
pub mod event_payloads;
pub mod events;
pub mod image;
mod image_rules;
pub mod images;
pub mod jsonschema;
pub mod listing;
pub mod members;
pub mod metadef_files;
pub mod metadefs;
pub mod patch;
pub mod policy;
#[cfg(test)]
mod property_tests;
pub mod protections;
mod quotas;
pub mod repository;
pub mod schema;
pub mod status;
pub mod tasks;

pub use context::RequestContext;
pub use error::{DomainError, RepoError};
pub use image::{Image, ImageId, Visibility};
pub use images::{ImageLimits, ImageService};
pub use repository::{
    CountLimits, Counted, DataReference, ImageRepo, SaveOutcome, StoredLocation, UploadRepo,
    UploadTarget, UploadedData,
};
pub use status::ImageStatus;
