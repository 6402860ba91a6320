//! Metadata definitions as `glance-manage db load_metadefs` reads them from files and
//! `export_metadefs` writes them: one namespace with everything in it, the schemas already as
//! the JSON text Glance's tables hold. `db/metadef_files.rs` writes and reads the tables;
//! `cli/metadefs` reads and writes the files.

/// One namespace of a definitions file.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceDefinition {
    /// The file it was read from (for messages); empty when read from the database.
    pub file: String,
    pub namespace: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// As written: Glance's loader takes any text, and no visibility at all (NULL).
    pub visibility: Option<String>,
    pub protected: Option<bool>,
    /// `"admin"` when the file names none (Glance's default).
    pub owner: String,
    pub resource_type_associations: Vec<AssociationDefinition>,
    /// Property name and its schema as JSON text, in the file's order.
    pub properties: Vec<(String, String)>,
    pub objects: Vec<ObjectDefinition>,
    pub tags: Vec<String>,
}

/// A resource type the namespace applies to (the resource type is created if missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationDefinition {
    pub name: String,
    pub prefix: Option<String>,
    pub properties_target: Option<String>,
}

/// An object; `json_schema` is the JSON text of its `properties` (`null` when it has none).
/// Glance's loader neither reads nor writes an object's `required`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDefinition {
    pub name: String,
    pub description: Option<String>,
    pub json_schema: String,
}

/// What a load does with a namespace already in the database (Glance's options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// No option: the namespace is skipped whole.
    SkipExisting,
    /// `--merge`: what the file adds (associations, properties, objects, tags) is added;
    /// everything present stays as it is.
    Merge,
    /// `--merge --prefer-new`: as merge, and what both have takes the file's values.
    PreferNew,
    /// `--merge --overwrite`: the namespace and everything in it is removed and loaded anew
    /// (resource types stay).
    Overwrite,
}

impl LoadMode {
    /// The mode of Glance's three flags, or why the combination is refused.
    pub fn from_flags(merge: bool, prefer_new: bool, overwrite: bool) -> Result<LoadMode, String> {
        match (merge, prefer_new, overwrite) {
            (false, false, false) => Ok(LoadMode::SkipExisting),
            (false, _, _) => {
                Err("--prefer-new and --overwrite work only together with --merge".to_owned())
            }
            (true, true, true) => {
                Err("give at most one of --prefer-new and --overwrite".to_owned())
            }
            (true, true, false) => Ok(LoadMode::PreferNew),
            (true, false, true) => Ok(LoadMode::Overwrite),
            (true, false, false) => Ok(LoadMode::Merge),
        }
    }
}

/// What a load did with one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceLoaded {
    Created,
    /// Present already, and left alone (no `--merge`).
    Skipped,
    /// Present already: what was missing added (and with `--prefer-new`, the rest updated).
    Merged,
    /// Present already: removed and loaded anew (`--overwrite`).
    Replaced,
}

/// Rows removed from each metadefs table by an unload, in the order they went.
pub type Unloaded = Vec<(&'static str, u64)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_combine_as_glance_allows() {
        assert_eq!(
            LoadMode::from_flags(false, false, false),
            Ok(LoadMode::SkipExisting)
        );
        assert_eq!(
            LoadMode::from_flags(true, false, false),
            Ok(LoadMode::Merge)
        );
        assert_eq!(
            LoadMode::from_flags(true, true, false),
            Ok(LoadMode::PreferNew)
        );
        assert_eq!(
            LoadMode::from_flags(true, false, true),
            Ok(LoadMode::Overwrite)
        );
        assert!(LoadMode::from_flags(false, true, false).is_err());
        assert!(LoadMode::from_flags(false, false, true).is_err());
        assert!(LoadMode::from_flags(true, true, true).is_err());
    }
}
