//! Tests across the schemes: the shared helpers, round trips, refusals and redaction.
//! Each scheme's own forms are tested next to it.

use super::*;

pub(super) const UUID: &str = "2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2";

pub(super) fn parse(uri: &str) -> Location {
    match Location::parse(uri) {
        Ok(l) => l,
        Err(e) => panic!("{uri:?} should parse: {e}"),
    }
}

pub(super) fn refused(uri: &str) {
    match Location::parse(uri) {
        Err(StoreError::InvalidLocation(_)) => {}
        other => panic!("{uri:?} should be refused, got {other:?}"),
    }
}

pub(super) fn creds(c: Option<&Credentials>) -> Option<(&str, &str)> {
    c.map(|c| (c.user(), c.secret()))
}

/// Forms Glance writes or reads, from its stores' `get_uri` and their unit tests.
pub(super) fn glance_forms() -> Vec<String> {
    let mut forms: Vec<String> = [
        "file:///var/lib/glance/images/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
        "file:////tmp/glance-tests/1/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
        "file:///var/lib/glance/my images/x",
        "filesystem:///var/lib/glance/images/1",
        "s3://accesskey:secretkey@s3.amazonaws.com/bucket/key-id",
        "s3+https://accesskey:secretkey@s3.amazonaws.com/bucket/key-id",
        "s3+http://accesskey:secretkey@s3.amazonaws.com/bucket/key-id",
        "s3://user:key@auth_address/glance/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
        "s3+https://user:key@s3-region1.com/glance/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
        "s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfi+CYEXAMPLEKEY=@s3.amazonaws.com/glance/x",
        "s3://AK:a//b/@s3.amazonaws.com/glance/x",
        "s3+https://ak:sk@rgw.example.com:8443/glance/x",
        "s3://ak:sk@[fd00::10]:9000/glance/x",
        "s3+https://ak:sk@example.com/s3/prefix/glance/x",
        "s3://s3.amazonaws.com/bucket/key",
        "s3://host/bucket/key/",
        "swift://user:pass@authurl.com/container/obj-id",
        "swift://account:user:pass@authurl.com/container/obj-id",
        "swift+http://user:pass@authurl.com/container/obj-id",
        "swift+https://user:pass@authurl.com/container/obj-id",
        "swift+https://tenant%3Auser1:key@localhost:8080/glance/x",
        "swift+https://example.com/container/obj-id",
        "swift+https://some_endpoint/v1/AUTH_abc/glance_x/x",
        "swift+config://ref1/glance/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
        "swift://user:key@auth.example.com/v3/glance/x",
        "swift+http://127.0.0.1/glance_123/123",
        "swift+https://u:k%2Bey%3D%40%3A@[::1]:8080/v1/c/o",
        "rbd://image",
        "rbd://fsid/pool/image/snap",
        "rbd://b3b3d1d4-f3c5-4f2c-9f44-8bb1a3f3e1d1/images/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2/snap",
        "rbd://fs%2Fid/po%20ol/im%40age/sn%2fap",
        "rbd://my%20image",
        "http://netloc/path/to/file.tar.gz",
        "https://user:pass@example.com:80/images/some-id",
        "http://example.com/123456",
        "http://127.0.0.1:8000/ubuntu.iso",
        "http://openstack.com:80/ubuntu.iso",
        "http://[1080::8:800:200C:417A]:80/ubuntu.iso",
        "http://netloc/path/to/file.tar.gz?query=text",
        "https://us%65r:p%40ss@example.com/a@b?x=http://y#frag",
        "http://example.com",
        "cinder://2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
        "cinder://cinder1/2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
        "vsphere://127.0.0.1/folder/openstack_glance/x?dcPath=dc1&dsName=ds1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    forms.push(format!("swift+config://store_2/glance/{UUID}"));
    forms
}

#[test]
fn every_glance_form_round_trips_exactly() {
    for uri in glance_forms() {
        let location = parse(&uri);
        assert_eq!(location.uri(), uri);
        assert_eq!(parse(&location.uri()), location, "{uri}");
        assert_eq!(uri.parse::<Location>().ok(), Some(location.clone()));
        assert!(uri.starts_with(location.scheme()), "{uri}");
    }
}

#[test]
fn cinder_and_other_forms() {
    let l = parse(&format!("cinder://{UUID}"));
    let Location::Cinder(c) = &l else {
        panic!("{l:?}")
    };
    assert_eq!((c.store(), c.volume_id()), (None, UUID));
    assert_eq!(l.scheme(), "cinder");
    let l = parse(&format!("cinder://cinder1/{UUID}"));
    let Location::Cinder(c) = &l else {
        panic!("{l:?}")
    };
    assert_eq!((c.store(), c.volume_id()), (Some("cinder1"), UUID));
    let made = CinderLocation::new(Some("cinder1"), UUID).map(Location::from);
    assert_eq!(made.ok(), Some(l));
    assert!(CinderLocation::new(None, "volume-1").is_err());
    assert!(CinderLocation::new(Some("a/b"), UUID).is_err());

    // A vsphere URI that names no datastore file (no dsName, no /folder/ path) stays untyped.
    for uri in [
        "vsphere://127.0.0.1/folder/openstack_glance/x?dcPath=dc1",
        "vsphere://127.0.0.1/openstack_glance/x?dsName=ds1",
    ] {
        let l = parse(uri);
        assert_eq!(
            l,
            Location::Other {
                scheme: "vsphere".to_owned(),
                uri: uri.to_owned()
            }
        );
        assert_eq!(l.scheme(), "vsphere");
        assert!(!l.has_credentials());
    }
    // A scheme Glance does not know is kept too, lower-cased in `scheme()` only.
    let l = parse("Sheepdog://img");
    assert_eq!(l.scheme(), "sheepdog");
    assert_eq!(l.uri(), "Sheepdog://img");
}

#[test]
fn scheme_case_follows_glance() {
    // Glance's stores check the prefix case-sensitively: upper-case schemes never parse.
    for uri in [
        "FILE:///var/lib/glance/images/1",
        "File:///x",
        "S3://ak:sk@host/b/k",
        "s3+HTTPS://host/b/k",
        "SWIFT://u:k@h/c/o",
        "Swift+Config://ref/c/o",
        "RBD://image",
        "HTTP://example.com/x",
        "Https://example.com/x",
        "CINDER://2ea4b25c-0f44-4b6a-9a6b-51a3b0a0bfc2",
        "VSPHERE://h/p?dsName=d",
    ] {
        refused(uri);
    }
    let other = parse("Gridfs://x");
    assert_eq!(other.scheme(), "gridfs");
}

#[test]
fn malformed_uris_are_refused() {
    for uri in [
        "",
        " ",
        "no-scheme",
        "/var/lib/glance/images/1",
        "://x",
        "1s3://h/b/k",
        "s3:h/b/k",
        "file:/var/lib/x",
        "file://",
        "file://relative",
        "file://var/lib/x",
        "file:///a\nb",
        "file:///a\tb",
        "s3://",
        "s3://host",
        "s3://host/bucket",
        "s3://ak:sk@host/bucket",
        "s3://ak@host/b/k",
        "s3://@host/b/k",
        "s3://a:b@c@host/b/k",
        "s3://host/b/k@x",
        "s3://ak:sk@https://host/b/k",
        "s3://host/b//k",
        "s3://host//k",
        "s3://host/b/k?x=1",
        "s3://host/b/k#f",
        "s3://[::1/b/k",
        "s3://ho]st/b/k",
        "swift://bad_creds@uri/cont/obj",
        "swift://user:key@uri/cont",
        "swift://user:pass@http://authurl.com/v1/container/obj",
        "swift://a:b@c:d@host/c/o",
        "swift://u:k@/c/o",
        "swift:///c/o",
        "swift://host",
        "swift://host/c/",
        "swift://host//o",
        "swift://host/c/o?x",
        "swift+config:///glance/obj",
        "swift+config://ref/obj",
        "swift+config://u:k@ref/c/o",
        "rbd://",
        "rbd://a/b",
        "rbd://a/b/c",
        "rbd://a/b/c/d/e",
        "rbd://a//c/d",
        "rbd://image/",
        "rbd:///image",
        "http://",
        "http:///path",
        "http://user@host/x",
        "http://a:b:c@host/x",
        "http://a@b@host/x",
        "http://:80/x",
        "http://127.0.0.1:~/ubuntu.iso",
        "http://openstack.com:some_text/ubuntu.iso",
        "http://[1080::8:800:200C:417A]:some_text/ubuntu.iso",
        "http://[1080::8:800:200C:417A/ubuntu.iso",
        "http://[example.com]/x",
        "http://a:1:2/x",
        "cinder://",
        "cinder://volume-1",
        "cinder://2EA4B25C-0F44-4B6A-9A6B-51A3B0A0BFC2",
        "cinder://2ea4b25c0f444b6a9a6b51a3b0a0bfc2",
        "vsphere://",
        "ftp://",
    ] {
        refused(uri);
    }
}

/// Every location with credentials, with the strings that must never be shown.
pub(super) fn secret_forms() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "s3://accesskey:secretkey@s3.amazonaws.com/bucket/key-id",
            vec!["accesskey", "secretkey"],
        ),
        (
            "s3+https://AKIA:wJal/K7MD+bPxR=@s3.amazonaws.com/glance/x",
            vec!["AKIA", "wJal", "K7MD", "bPxR="],
        ),
        ("s3://AK:a//b/@host/glance/x", vec!["AK:", "a//b"]),
        ("s3://AK:x:y@host/b/k", vec!["AK", "x:y"]),
        (
            "swift://account:user:pass@authurl.com/container/obj-id",
            vec!["account", "user", "pass"],
        ),
        (
            "swift+https://tenant%3Auser1:s3cr3t@localhost:8080/glance/x",
            vec!["tenant", "user1", "s3cr3t"],
        ),
        (
            "swift+https://u:k%2Bey%3D%40%3A@[::1]:8080/v1/c/o",
            vec!["u:", "k%2Bey", "k+ey"],
        ),
        (
            "https://user:hunter2@example.com:80/images/some-id",
            vec!["user", "hunter2"],
        ),
        (
            "https://us%65r:p%40ss@example.com/a@b?x=http://y#frag",
            vec!["us%65r", "p%40ss", "p@ss"],
        ),
        ("foo://name:sec/ret@host/x", vec!["name", "sec/ret"]),
    ]
}

#[test]
fn display_and_debug_never_show_credentials() {
    for (uri, secrets) in secret_forms() {
        let l = parse(uri);
        assert!(l.has_credentials(), "{uri}");
        let shown = [l.to_string(), format!("{l:?}"), format!("{l:#?}")];
        for text in &shown {
            for secret in &secrets {
                assert!(!text.contains(secret), "{secret:?} shown in {text:?}");
            }
        }
        assert!(shown[0].contains("***"), "{}", shown[0]);
    }
    assert_eq!(
        parse("s3://accesskey:secretkey@s3.amazonaws.com/bucket/key-id").to_string(),
        "s3://***:***@s3.amazonaws.com/bucket/key-id"
    );
    assert_eq!(
        parse("swift://account:user:pass@authurl.com/c/o").to_string(),
        "swift://***:***@authurl.com/c/o"
    );
    assert_eq!(
        parse("https://u:p@example.com/a@b").to_string(),
        "https://***:***@example.com/a@b"
    );
    assert_eq!(parse("foo://a:b@host/x").to_string(), "foo://***@host/x");
    assert_eq!(
        format!("{:?}", Credentials::new("user", "secret")),
        "Credentials(***)"
    );
}

#[test]
fn display_without_credentials_is_the_uri() {
    for uri in glance_forms() {
        let l = parse(&uri);
        if !l.has_credentials() {
            assert_eq!(l.to_string(), uri);
        }
    }
    let debug = format!("{:?}", parse("rbd://fsid/pool/image/snap"));
    assert!(debug.contains("image") && debug.contains("pool"), "{debug}");
}

#[test]
fn errors_mask_credentials() {
    for (uri, secret) in [
        ("s3://AK:SECRETKEY@host/bucket", "SECRETKEY"),
        ("s3://AK:SECRET/KEY@https://host/b/k", "SECRET"),
        ("swift://acct:us:SECRETKEY@host/c", "SECRETKEY"),
        ("swift://a:SECRETKEY@b:c@host/c/o", "SECRETKEY"),
        ("http://user:SECRET:KEY@host/x", "SECRET"),
        ("user:SECRETKEY@host", "SECRETKEY"),
        ("S3://AK:SECRETKEY@host/b/k", "SECRETKEY"),
    ] {
        match Location::parse(uri) {
            Err(e @ StoreError::InvalidLocation(_)) => {
                let text = e.to_string();
                assert!(!text.contains(secret), "{text}");
                assert!(text.contains("***"), "{text}");
            }
            other => panic!("{uri} should be refused: {other:?}"),
        }
    }
    match Location::parse("file:///a\nb") {
        Err(StoreError::InvalidLocation(shown)) => assert!(!shown.contains('\n')),
        other => panic!("{other:?}"),
    }
}

#[test]
fn equality_and_hash_follow_the_text() {
    use std::collections::HashSet;
    let set: HashSet<Location> = glance_forms().iter().map(|u| parse(u)).collect();
    assert_eq!(set.len(), glance_forms().len());
    assert!(set.contains(&parse("rbd://fsid/pool/image/snap")));
    // The same fields written differently are different rows.
    assert_ne!(parse("rbd://f/p/a-b/s"), parse("rbd://f/p/a%2Db/s"));
}

#[test]
fn shown_locations_keep_no_credentials() {
    for (stored, shown) in [
        (
            "s3://AKIA:se/cr+et@s3.example.com/bucket/id",
            "s3://s3.example.com/bucket/id",
        ),
        ("s3+https://k:s@host:8080/b/k", "s3+https://host:8080/b/k"),
        (
            "swift+https://tenant%3Auser:key@keystone/v3/glance/id",
            "swift+https://keystone/v3/glance/id",
        ),
        (
            "swift+config://ref1/glance/id",
            "swift+config://ref1/glance/id",
        ),
        ("rbd://fsid/images/id/snap", "rbd://fsid/images/id/snap"),
        (
            "file:///var/lib/glance/images/id",
            "file:///var/lib/glance/images/id",
        ),
        (
            "vsphere://user:p@ss@vcenter/folder/id",
            "vsphere://vcenter/folder/id",
        ),
    ] {
        assert_eq!(parse(stored).without_credentials(), shown, "{stored}");
    }
    assert_eq!(strip_userinfo("not a uri @ all"), "not a uri @ all");
}

#[test]
fn vsphere_forms() {
    let uri = "vsphere://127.0.0.1/folder/openstack_glance/x?dcPath=dc1&dsName=ds1";
    let Location::Vsphere(l) = parse(uri) else {
        panic!("{uri} is a datastore file")
    };
    assert_eq!(
        (l.host(), l.path(), l.datacenter(), l.datastore()),
        ("127.0.0.1", "openstack_glance/x", Some("dc1"), "ds1")
    );
    assert_eq!(l.file_name(), "x");
    assert_eq!(l.datastore_path(), "[ds1] openstack_glance/x");
    assert_eq!(
        l.request_target(),
        "/folder/openstack_glance/x?dcPath=dc1&dsName=ds1"
    );

    // What Glance's driver writes: dsName first, both quote_plus-encoded.
    let made = VsphereLocation::new(
        "vc.example:8443",
        "/openstack_glance/",
        UUID,
        "Dept A/DC 1",
        "ds+1",
    )
    .expect("valid");
    let written = format!(
        "vsphere://vc.example:8443/folder/openstack_glance/{UUID}?dsName=ds%2B1&dcPath=Dept+A%2FDC+1"
    );
    assert_eq!(Location::from(made.clone()).uri(), written);
    assert_eq!(parse(&written), Location::Vsphere(made.clone()));
    assert_eq!(made.datacenter(), Some("Dept A/DC 1"));
    assert_eq!(made.datastore(), "ds+1");
    assert_eq!(
        made.datastore_path(),
        format!("[ds+1] openstack_glance/{UUID}")
    );
    // An IPv6 server, and a datacenter left out (Glance then asks for the default one).
    let l = parse("vsphere://[::1]:443/folder/images/abc?dsName=ds");
    let Location::Vsphere(l) = l else {
        panic!("{l:?}")
    };
    assert_eq!((l.host(), l.datacenter()), ("[::1]:443", None));
    assert_eq!(l.request_target(), "/folder/images/abc?dsName=ds");

    for (host, dir, id, dc, ds) in [
        ("", "d", "i", "dc", "ds"),
        ("u:p@h", "d", "i", "dc", "ds"),
        ("h", "d", "", "dc", "ds"),
        ("h", "d", "a/b", "dc", "ds"),
        ("h", "d?x", "i", "dc", "ds"),
        ("h", "d", "i", "", "ds"),
        ("h", "d", "i", "dc", ""),
    ] {
        assert!(
            VsphereLocation::new(host, dir, id, dc, ds).is_err(),
            "{host} {dir} {id} {dc} {ds}"
        );
    }
}
