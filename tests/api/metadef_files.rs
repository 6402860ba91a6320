//! `glint db load-metadefs`, `unload-metadefs` and `export-metadefs` on each database: the
//! rows Glance's loader writes (owner, NULL updated_at, protected resource types, schemas as
//! Python's `json.dumps` text), what `--merge`, `--prefer-new` and `--overwrite` keep, replace
//! and add, the export's files, and the refusals that leave the database as it was. The
//! definition files are small ones written here (tests/metadefs/*.json).

use std::path::{Path, PathBuf};

use glint::cli::{db_export_metadefs, db_load_metadefs, db_unload_metadefs, MetadefLoadOptions};

use crate::all_databases;
use crate::helpers::TestApp;

/// The definition files of these tests.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/metadefs")
}

fn options(path: &Path) -> MetadefLoadOptions {
    MetadefLoadOptions {
        path: path.to_owned(),
        merge: false,
        prefer_new: false,
        overwrite: false,
    }
}

/// Loads one fixture file (`tests/metadefs/NAME`) with the given flags.
async fn load(app: &TestApp, name: &str, merge: bool, prefer_new: bool, overwrite: bool) {
    let options = MetadefLoadOptions {
        merge,
        prefer_new,
        overwrite,
        ..options(&fixtures().join(name))
    };
    db_load_metadefs(&app.config, &options)
        .await
        .unwrap_or_else(|e| panic!("{name} loads: {e}"));
}

/// One value (NULL as "NULL") of `SELECT <expression> FROM <rest>`.
async fn value(app: &TestApp, expression: &str, rest: &str) -> String {
    app.scalar(&format!(
        "SELECT COALESCE(CAST({expression} AS TEXT), 'NULL') FROM {rest}"
    ))
    .await
}

async fn count(app: &TestApp, table: &str) -> String {
    app.scalar(&format!("SELECT CAST(COUNT(*) AS TEXT) FROM {table}"))
        .await
}

/// Every table's row count, in one string, to tell that nothing changed.
async fn counts(app: &TestApp) -> String {
    let mut all = Vec::new();
    for table in [
        "metadef_namespaces",
        "metadef_resource_types",
        "metadef_namespace_resource_types",
        "metadef_properties",
        "metadef_objects",
        "metadef_tags",
    ] {
        all.push(format!("{table}={}", count(app, table).await));
    }
    all.join(" ")
}

const PROPERTY: &str = "metadef_properties p JOIN metadef_namespaces n ON n.id = p.namespace_id";
const OBJECT: &str = "metadef_objects o JOIN metadef_namespaces n ON n.id = o.namespace_id";

all_databases!(fn a_load_writes_the_rows_glance_s_loader_writes(app) {
    load(&app, "first.json", false, false, false).await;
    let ns = "metadef_namespaces WHERE namespace = 'Glint::Test::First'";
    assert_eq!(value(&app, "owner", ns).await, "admin");
    assert_eq!(value(&app, "visibility", ns).await, "NULL");
    assert_eq!(value(&app, "display_name", ns).await, "First Test");
    assert_eq!(value(&app, "CASE WHEN protected THEN 'yes' ELSE 'no' END", ns).await, "yes");
    assert_eq!(value(&app, "updated_at", ns).await, "NULL");
    assert_eq!(value(&app, "description", ns).await, "Café – first");
    // Python's json.dumps text: the file's key order, ", " and ": ", everything past ASCII
    // escaped, integers as integers.
    assert_eq!(
        value(&app, "p.json_schema", &format!("{PROPERTY} WHERE p.name = 'glint_speed'")).await,
        r#"{"title": "Speed \u00e9", "type": "integer", "minimum": 1, "maximum": 10, "enum": [1, 10]}"#
    );
    assert_eq!(value(&app, "p.updated_at", &format!("{PROPERTY} WHERE p.name = 'glint_speed'")).await, "NULL");
    // An object's `required` is neither read nor written; no properties is the JSON `null`.
    assert_eq!(value(&app, "o.required", &format!("{OBJECT} WHERE o.name = 'Disk'")).await, "NULL");
    assert_eq!(
        value(&app, "o.json_schema", &format!("{OBJECT} WHERE o.name = 'Disk'")).await,
        r#"{"size": {"type": "integer", "title": "Size"}}"#
    );
    assert_eq!(value(&app, "o.json_schema", &format!("{OBJECT} WHERE o.name = 'Empty'")).await, "null");
    // Resource types are created, protected; the association keeps prefix and target.
    let rt = "metadef_resource_types WHERE name = 'Glint::Thing'";
    assert_eq!(value(&app, "CASE WHEN protected THEN 'yes' ELSE 'no' END", rt).await, "yes");
    assert_eq!(
        value(&app, "a.prefix", "metadef_namespace_resource_types a JOIN metadef_resource_types r \
               ON r.id = a.resource_type_id WHERE r.name = 'Glint::Thing'").await,
        "thing_"
    );
    assert_eq!(
        value(&app, "a.properties_target", "metadef_namespace_resource_types a JOIN metadef_resource_types r \
               ON r.id = a.resource_type_id WHERE r.name = 'OS::Glance::Image'").await,
        "NULL"
    );
    assert_eq!(
        counts(&app).await,
        "metadef_namespaces=1 metadef_resource_types=2 metadef_namespace_resource_types=2 \
         metadef_properties=2 metadef_objects=2 metadef_tags=2"
    );
});

all_databases!(fn without_merge_an_existing_namespace_is_skipped_whole(app) {
    load(&app, "first.json", false, false, false).await;
    load(&app, "first-v2.json", false, false, false).await;
    let ns = "metadef_namespaces WHERE namespace = 'Glint::Test::First'";
    assert_eq!(value(&app, "description", ns).await, "Café – first");
    assert_eq!(count(&app, "metadef_properties").await, "2");
    assert_eq!(count(&app, "metadef_tags").await, "2");
    assert_eq!(count(&app, "metadef_resource_types").await, "2");
});

all_databases!(fn merge_adds_what_is_new_and_keeps_what_exists(app) {
    load(&app, "first.json", false, false, false).await;
    load(&app, "first-v2.json", true, false, false).await;
    let ns = "metadef_namespaces WHERE namespace = 'Glint::Test::First'";
    assert_eq!(value(&app, "description", ns).await, "Café – first");
    assert_eq!(value(&app, "updated_at", ns).await, "NULL");
    // glint_speed kept its schema; glint_colour added; glint_mode (only in the database) stays.
    assert!(value(&app, "p.json_schema", &format!("{PROPERTY} WHERE p.name = 'glint_speed'")).await
        .contains("\"maximum\": 10"));
    assert_eq!(count(&app, "metadef_properties").await, "3");
    assert_eq!(value(&app, "o.description", &format!("{OBJECT} WHERE o.name = 'Disk'")).await, "A disk");
    assert_eq!(count(&app, "metadef_objects").await, "3");
    assert_eq!(count(&app, "metadef_tags").await, "3");
    // A new resource type and association; the existing association's prefix unchanged.
    assert_eq!(count(&app, "metadef_resource_types").await, "3");
    assert_eq!(
        value(&app, "a.prefix", "metadef_namespace_resource_types a JOIN metadef_resource_types r \
               ON r.id = a.resource_type_id WHERE r.name = 'Glint::Thing'").await,
        "thing_"
    );
    assert_eq!(value(&app, "CAST(COUNT(updated_at) AS TEXT)", "metadef_properties").await, "0");
});

all_databases!(fn prefer_new_takes_the_file_s_values_for_what_both_have(app) {
    load(&app, "first.json", false, false, false).await;
    load(&app, "first-v2.json", true, true, false).await;
    let ns = "metadef_namespaces WHERE namespace = 'Glint::Test::First'";
    assert_eq!(value(&app, "description", ns).await, "second version");
    assert_eq!(value(&app, "visibility", ns).await, "public");
    assert_eq!(value(&app, "owner", ns).await, "admin");
    assert_ne!(value(&app, "updated_at", ns).await, "NULL");
    assert_eq!(
        value(&app, "p.json_schema", &format!("{PROPERTY} WHERE p.name = 'glint_speed'")).await,
        r#"{"title": "Speed", "type": "integer", "minimum": 2}"#
    );
    assert_ne!(value(&app, "p.updated_at", &format!("{PROPERTY} WHERE p.name = 'glint_speed'")).await, "NULL");
    // Rows only the database has stay, untouched.
    assert_eq!(value(&app, "p.updated_at", &format!("{PROPERTY} WHERE p.name = 'glint_mode'")).await, "NULL");
    assert_eq!(value(&app, "o.description", &format!("{OBJECT} WHERE o.name = 'Disk'")).await, "A bigger disk");
    assert_eq!(value(&app, "o.json_schema", &format!("{OBJECT} WHERE o.name = 'Disk'")).await, "{}");
    assert_eq!(value(&app, "o.updated_at", &format!("{OBJECT} WHERE o.name = 'Empty'")).await, "NULL");
    // Tags and resource types only get a new updated_at; the association its prefix and target.
    assert_ne!(value(&app, "updated_at", "metadef_tags WHERE name = 'fast'").await, "NULL");
    assert_eq!(value(&app, "updated_at", "metadef_tags WHERE name = 'slow'").await, "NULL");
    assert_ne!(value(&app, "updated_at", "metadef_resource_types WHERE name = 'Glint::Thing'").await, "NULL");
    assert_eq!(
        value(&app, "a.prefix", "metadef_namespace_resource_types a JOIN metadef_resource_types r \
               ON r.id = a.resource_type_id WHERE r.name = 'Glint::Thing'").await,
        "NULL"
    );
    assert_eq!(
        value(&app, "a.properties_target", "metadef_namespace_resource_types a JOIN metadef_resource_types r \
               ON r.id = a.resource_type_id WHERE r.name = 'Glint::Thing'").await,
        "image"
    );
    assert_eq!(count(&app, "metadef_properties").await, "3");
});

all_databases!(fn overwrite_loads_the_namespace_anew(app) {
    load(&app, "first.json", false, false, false).await;
    load(&app, "first-v2.json", true, false, true).await;
    // A new row (SQLite may give it the old id), so no updated_at.
    let ns = "metadef_namespaces WHERE namespace = 'Glint::Test::First'";
    assert_eq!(value(&app, "description", ns).await, "second version");
    assert_eq!(value(&app, "updated_at", ns).await, "NULL");
    // Exactly the file's contents: glint_mode, Empty and slow are gone.
    assert_eq!(
        counts(&app).await,
        "metadef_namespaces=1 metadef_resource_types=3 metadef_namespace_resource_types=2 \
         metadef_properties=2 metadef_objects=2 metadef_tags=2"
    );
    assert_eq!(count(&app, "metadef_tags WHERE name = 'slow'").await, "0");
    // Resource types stay, even the one no namespace uses any more.
    assert_eq!(count(&app, "metadef_resource_types WHERE name = 'OS::Glance::Image'").await, "1");
});

all_databases!(fn unload_empties_every_table_and_export_writes_glance_s_files(app) {
    let dir = tempfile::tempdir().expect("temporary directory");
    for name in ["first.json", "second.json"] {
        std::fs::copy(fixtures().join(name), dir.path().join(name)).expect("copy");
    }
    db_load_metadefs(&app.config, &options(dir.path())).await.expect("loads");
    let out = tempfile::tempdir().expect("temporary directory");
    db_export_metadefs(&app.config, out.path()).await.expect("exports");
    let mut names = crate::helpers::files_in(out.path());
    names.sort();
    assert_eq!(names, ["FirstTest.json", "SecondTest2.json"]);
    assert_eq!(
        std::fs::read_to_string(out.path().join("SecondTest2.json")).expect("read"),
        r#"{"namespace": "Glint::Test::Second", "display_name": "Second_Test (2)", "description": null, "visibility": "private", "protected": false, "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": null, "properties_target": null}], "properties": {}, "objects": [], "tags": [{"name": "b"}, {"name": "a"}]}"#
    );
    let first = std::fs::read_to_string(out.path().join("FirstTest.json")).expect("read");
    assert!(first.starts_with(r#"{"namespace": "Glint::Test::First", "display_name": "First Test", "description": "Caf\u00e9 \u2013 first", "visibility": null, "protected": true, "#), "{first}");
    assert!(first.contains(r#""objects": [{"name": "Disk", "description": "A disk", "properties": {"size": {"type": "integer", "title": "Size"}}}, {"name": "Empty", "description": null, "properties": null}]"#), "{first}");

    db_unload_metadefs(&app.config).await.expect("unloads");
    assert_eq!(
        counts(&app).await,
        "metadef_namespaces=0 metadef_resource_types=0 metadef_namespace_resource_types=0 \
         metadef_properties=0 metadef_objects=0 metadef_tags=0"
    );
    // The export loads back to the same rows.
    db_load_metadefs(&app.config, &options(out.path())).await.expect("export loads");
    assert_eq!(
        counts(&app).await,
        "metadef_namespaces=2 metadef_resource_types=2 metadef_namespace_resource_types=3 \
         metadef_properties=2 metadef_objects=2 metadef_tags=4"
    );
    assert_eq!(
        value(&app, "p.json_schema", &format!("{PROPERTY} WHERE p.name = 'glint_speed'")).await,
        r#"{"title": "Speed \u00e9", "type": "integer", "minimum": 1, "maximum": 10, "enum": [1, 10]}"#
    );
});

all_databases!(fn a_bad_file_is_named_and_nothing_is_loaded(app) {
    load(&app, "second.json", false, false, false).await;
    let before = counts(&app).await;
    for (bad, message) in [
        ("broken.json", "broken.json: not valid JSON: Expecting ',' delimiter: line 4 column 5"),
        ("no-name.json", "no-name.json: missing field objects[0] \"name\""),
    ] {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::copy(fixtures().join("first.json"), dir.path().join("first.json")).expect("copy");
        std::fs::copy(fixtures().join("bad").join(bad), dir.path().join(bad)).expect("copy");
        let error = db_load_metadefs(&app.config, &options(dir.path())).await.expect_err(bad);
        assert!(error.ends_with(message), "{error}");
        assert!(error.contains(&dir.path().display().to_string()), "{error}");
        assert_eq!(counts(&app).await, before, "{bad}");
    }
});

all_databases!(fn a_write_the_database_refuses_rolls_the_whole_load_back(app) {
    load(&app, "second.json", false, false, false).await;
    // Without its tags table, the first file's namespace, properties and objects are written
    // before its tags fail.
    app.execute("DROP TABLE metadef_tags").await;
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(fixtures().join("first.json"), dir.path().join("first.json")).expect("copy");
    let error = db_load_metadefs(&app.config, &options(dir.path())).await.expect_err("no tags table");
    assert!(error.starts_with("nothing loaded: "), "{error}");
    assert!(error.contains("first.json: namespace Glint::Test::First: "), "{error}");
    assert_eq!(count(&app, "metadef_namespaces").await, "1");
    assert_eq!(count(&app, "metadef_properties").await, "0");
    assert_eq!(count(&app, "metadef_resource_types").await, "1");
});

all_databases!(fn wrong_options_and_paths_are_refused(app) {
    let file = fixtures().join("first.json");
    for (merge, prefer_new, overwrite) in [(false, true, false), (false, false, true), (true, true, true)] {
        let options = MetadefLoadOptions { merge, prefer_new, overwrite, ..options(&file) };
        let error = db_load_metadefs(&app.config, &options).await.expect_err("flags");
        assert!(error.contains("--prefer-new"), "{error}");
    }
    let empty = tempfile::tempdir().expect("temporary directory");
    let error = db_load_metadefs(&app.config, &options(empty.path())).await.expect_err("empty");
    assert!(error.starts_with("no .json files in "), "{error}");
    let missing = empty.path().join("missing");
    let error = db_load_metadefs(&app.config, &options(&missing)).await.expect_err("missing");
    assert!(error.starts_with("cannot read the metadefs directory "), "{error}");
    let error = db_export_metadefs(&app.config, &missing).await.expect_err("missing");
    assert!(error.ends_with("is not a directory"), "{error}");
    assert_eq!(count(&app, "metadef_namespaces").await, "0");
});
