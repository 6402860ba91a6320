//! `cinder://` locations.

use std::fmt;

use super::text::{invalid, is_canonical_uuid, valid_segment};
use crate::error::StoreError;

/// `cinder://volume-uuid`, or `cinder://store/volume-uuid` as Glance writes it with
/// several stores configured.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CinderLocation {
    store: Option<String>,
    volume_id: String,
    pub(super) raw: String,
}

impl CinderLocation {
    /// `volume_id` must be a UUID in its canonical lower-case form, as Glance requires.
    pub fn new(store: Option<&str>, volume_id: &str) -> Result<CinderLocation, StoreError> {
        let raw = match store {
            Some(s) => format!("cinder://{s}/{volume_id}"),
            None => format!("cinder://{volume_id}"),
        };
        let store_ok = store.is_none_or(valid_segment);
        if !store_ok || !is_canonical_uuid(volume_id) {
            return Err(invalid(&raw));
        }
        Ok(CinderLocation {
            store: store.map(str::to_owned),
            volume_id: volume_id.to_owned(),
            raw,
        })
    }

    /// The store (backend) name written before the volume id, if any.
    pub fn store(&self) -> Option<&str> {
        self.store.as_deref()
    }

    pub fn volume_id(&self) -> &str {
        &self.volume_id
    }
}

impl fmt::Debug for CinderLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CinderLocation")
            .field("store", &self.store)
            .field("volume_id", &self.volume_id)
            .finish()
    }
}

/// As Glance reads it: the volume id is the last `/`-separated part and must be a UUID in
/// canonical form; what comes before it is the store name.
pub(super) fn parse_cinder(rest: &str, raw: &str) -> Option<CinderLocation> {
    let (store, volume_id) = match rest.rsplit_once('/') {
        Some((store, volume_id)) => (Some(store).filter(|s| !s.is_empty()), volume_id),
        None => (None, rest),
    };
    is_canonical_uuid(volume_id).then(|| CinderLocation {
        store: store.map(str::to_owned),
        volume_id: volume_id.to_owned(),
        raw: raw.to_owned(),
    })
}
