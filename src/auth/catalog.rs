//! Service catalogs: Keystone v3's (in token data) and the v2 form keystonemiddleware passes
//! on in `X-Service-Catalog`, both read into one list of endpoints.

use glint_store::CatalogEndpoint;
use serde_json::Value;

/// The endpoints of a catalog in either form: v3 entries (`interface`, `region_id`, `url`) or
/// v2 ones (`publicURL`, `internalURL`, `adminURL`, `region`). Entries it cannot read are
/// skipped.
pub(super) fn endpoints(catalog: &Value) -> Vec<CatalogEndpoint> {
    let mut found = Vec::new();
    for service in catalog.as_array().into_iter().flatten() {
        let Some(service_type) = service["type"].as_str() else {
            continue;
        };
        for endpoint in service["endpoints"].as_array().into_iter().flatten() {
            let region = endpoint["region_id"]
                .as_str()
                .or_else(|| endpoint["region"].as_str())
                .map(str::to_owned);
            let mut add = |interface: &str, url: &Value| {
                if let Some(url) = url.as_str() {
                    found.push(CatalogEndpoint {
                        service_type: service_type.to_owned(),
                        interface: interface.to_owned(),
                        region: region.clone(),
                        url: url.to_owned(),
                    });
                }
            };
            match endpoint["interface"].as_str() {
                Some(interface) => add(interface, &endpoint["url"]),
                None => {
                    add("public", &endpoint["publicURL"]);
                    add("internal", &endpoint["internalURL"]);
                    add("admin", &endpoint["adminURL"]);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn both_catalog_forms_give_the_same_endpoints() {
        let v3 = json!([{"type": "object-store", "name": "swift", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "region": "RegionOne",
             "url": "http://s/v1/KEY_p"},
            {"interface": "internal", "region_id": "RegionOne", "url": "http://i/v1/KEY_p"}]}]);
        let v2 = json!([{"type": "object-store", "name": "swift", "endpoints": [
            {"region": "RegionOne", "publicURL": "http://s/v1/KEY_p",
             "internalURL": "http://i/v1/KEY_p"}]}]);
        assert_eq!(endpoints(&v3), endpoints(&v2));
        assert_eq!(endpoints(&v3).len(), 2);
        assert!(endpoints(&json!({"not": "a catalog"})).is_empty());
    }
}
