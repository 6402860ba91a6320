//! `vsphere://` locations: a file on a VMware datastore, reached through the server's
//! datastore file interface (`https://host/folder/<path>?dcPath=…&dsName=…`).

use std::fmt;

use super::text::{has_control, invalid, percent_decode, percent_encode, valid_authority};
use crate::error::StoreError;

/// `vsphere://host[:port]/folder/<path>?dsName=<datastore>&dcPath=<datacenter>`, the form
/// Glance's VMware driver writes (query parameters in that order, each `quote_plus`-encoded).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VsphereLocation {
    host: String,
    /// The file's path on the datastore, decoded (`openstack_glance/<image id>`).
    path: String,
    datacenter: Option<String>,
    datastore: String,
    pub(super) raw: String,
}

impl VsphereLocation {
    /// The location Glance's driver writes for image `image_id` in `image_dir` of
    /// `datastore` in `datacenter`, on server `host`.
    pub fn new(
        host: &str,
        image_dir: &str,
        image_id: &str,
        datacenter: &str,
        datastore: &str,
    ) -> Result<VsphereLocation, StoreError> {
        let dir = image_dir.trim_matches('/');
        let path = if dir.is_empty() {
            image_id.to_owned()
        } else {
            format!("{dir}/{image_id}")
        };
        let raw = format!(
            "vsphere://{host}/folder/{path}?dsName={}&dcPath={}",
            quote_plus(datastore),
            quote_plus(datacenter)
        );
        let ok = valid_authority(host, true)
            && !host.contains('@')
            && !image_id.is_empty()
            && !image_id.contains(['/', '?', '#'])
            && !path.contains(['?', '#', '%'])
            && !datastore.is_empty()
            && !datacenter.is_empty()
            && !has_control(&raw);
        if !ok {
            return Err(invalid(&raw));
        }
        Ok(VsphereLocation {
            host: host.to_owned(),
            path,
            datacenter: Some(datacenter.to_owned()),
            datastore: datastore.to_owned(),
            raw,
        })
    }

    /// The server, `host[:port]` as written.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The file's path on its datastore (`openstack_glance/<image id>`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The datacenter's inventory path (`dcPath`), if the location names one.
    pub fn datacenter(&self) -> Option<&str> {
        self.datacenter.as_deref()
    }

    /// The datastore's name (`dsName`).
    pub fn datastore(&self) -> &str {
        &self.datastore
    }

    /// The last part of the path: the image id for the files Glance and Glint write.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// `/folder/<path>?<query>` exactly as the location has them: the request target of the
    /// datastore file interface.
    pub fn request_target(&self) -> &str {
        let rest = &self.raw["vsphere://".len()..];
        rest.find('/').map_or("/", |at| &rest[at..])
    }

    /// The datastore path vSphere's file manager takes: `[datastore] path`.
    pub fn datastore_path(&self) -> String {
        format!("[{}] {}", self.datastore, self.path)
    }
}

impl fmt::Debug for VsphereLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VsphereLocation")
            .field("host", &self.host)
            .field("path", &self.path)
            .field("datacenter", &self.datacenter)
            .field("datastore", &self.datastore)
            .finish()
    }
}

/// As Glance reads it (`urlparse`, then `parse_qs` of the query), but only the forms that
/// name a datastore file: a path under `/folder/`, a `dsName`, no credentials. Anything else
/// stays untyped (`Location::Other`).
pub(super) fn parse_vsphere(rest: &str, raw: &str) -> Option<VsphereLocation> {
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (authority, target) = rest.split_at(rest.find('/')?);
    if authority.contains('@') || !valid_authority(authority, true) {
        return None;
    }
    let (path, query) = target.split_once('?')?;
    let path = path.strip_prefix("/folder/")?;
    let path = percent_decode(path);
    if path.is_empty() || path.ends_with('/') {
        return None;
    }
    let mut datacenter = None;
    let mut datastore = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = unquote_plus(value);
        match unquote_plus(key).as_str() {
            // `parse_qs` keeps the first of repeated keys and drops empty values.
            "dcPath" if datacenter.is_none() && !value.is_empty() => datacenter = Some(value),
            "dsName" if datastore.is_none() && !value.is_empty() => datastore = Some(value),
            _ => {}
        }
    }
    Some(VsphereLocation {
        host: authority.to_owned(),
        path,
        datacenter,
        datastore: datastore?,
        raw: raw.to_owned(),
    })
}

/// Python's `quote_plus`: spaces as `+`, everything but letters, digits and `_.-~` encoded.
fn quote_plus(s: &str) -> String {
    percent_encode(s).replace("%20", "+")
}

fn unquote_plus(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}
