//! The ten `/v2/schemas/metadefs/…` documents are Glance 33's, recorded in `testdata/`.

use serde_json::Value;

use super::*;
use crate::all_databases;

fn recorded(name: &str) -> Value {
    let path = format!(
        "{}/tests/api/metadefs/testdata/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

all_databases!(fn schema_documents_are_glances(app, TRUSTED) {
    for name in [
        "namespace", "namespaces", "resource_type", "resource_types", "object", "objects",
        "property", "properties", "tag", "tags",
    ] {
        let expected = recorded(name);
        assert!(expected.is_object(), "testdata/{name}.json");
        for who in [READER, OTHER_READER] {
            let served = get(&app, who, &format!("/v2/schemas/metadefs/{name}")).await;
            served.assert_status(200);
            assert_eq!(served.json(), expected, "/v2/schemas/metadefs/{name}");
        }
    }
});
