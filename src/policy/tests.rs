//! Glance's defaults as the engine applies them, and an operator's file changing them.

use super::*;

fn ctx(project: Option<&str>, roles: &[&str]) -> RequestContext {
    RequestContext {
        request_id: "req-test".into(),
        user_id: Some("u".into()),
        project_id: project.map(str::to_owned),
        system_scope: None,
        domain_id: None,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        service_roles: Vec::new(),
        is_admin: false,
        auth_token: None,
        service_catalog: std::sync::Arc::from([]),
    }
}

fn image<'a>(owner: &'a str, visibility: Visibility, member: Option<&'a str>) -> Target<'a> {
    Target {
        owner: Some(owner),
        visibility: Some(visibility),
        member,
    }
}

fn defaults() -> Enforcer {
    Enforcer::new(&PolicyConfig::default()).expect("the built-in rules parse")
}

fn with_file(text: &str, adjust: impl FnOnce(&mut PolicyConfig)) -> Enforcer {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, text).expect("writes");
    let mut config = PolicyConfig {
        policy_file: Some(path),
        ..PolicyConfig::default()
    };
    adjust(&mut config);
    Enforcer::new(&config).expect("loads")
}

#[test]
fn members_change_their_projects_images_and_readers_only_read() {
    let policy = defaults();
    let member = ctx(Some("p1"), &["member", "reader"]);
    let reader = ctx(Some("p1"), &["reader"]);
    let own = image("p1", Visibility::Private, None);
    let other = image("p2", Visibility::Private, None);
    assert!(policy.allows(&member, Action::ModifyImage, &own));
    assert!(!policy.allows(&member, Action::ModifyImage, &other));
    assert!(!policy.allows(&member, Action::PublicizeImage, &own));
    assert!(policy.allows(&member, Action::CommunitizeImage, &own));
    assert!(policy.allows(&member, Action::AddImage, &own));
    assert!(policy.allows(&reader, Action::GetImages, &own));
    assert!(policy.allows(&reader, Action::GetImage, &own));
    assert!(!policy.allows(&reader, Action::AddImage, &own));
    assert!(!policy.allows(&reader, Action::DownloadImage, &own));
    assert!(!policy.allows(&member, Action::DeleteImageLocation, &own));
    assert!(!policy.allows(&member, Action::StoresInfoDetail, &own));
}

#[test]
fn other_projects_see_public_community_and_shared_images() {
    let policy = defaults();
    let outsider = ctx(Some("p2"), &["member", "reader"]);
    for visibility in [Visibility::Public, Visibility::Community] {
        let target = image("p1", visibility, None);
        assert!(policy.allows(&outsider, Action::GetImage, &target));
        assert!(policy.allows(&outsider, Action::DownloadImage, &target));
        assert!(!policy.allows(&outsider, Action::ModifyImage, &target));
    }
    let shared = image("p1", Visibility::Shared, Some("p2"));
    assert!(policy.allows(&outsider, Action::GetImage, &shared));
    assert!(!policy.allows(
        &outsider,
        Action::GetImage,
        &image("p1", Visibility::Private, None)
    ));
}

#[test]
fn admins_are_project_scoped_admins() {
    let policy = defaults();
    let admin = ctx(Some("ops"), &["admin", "member", "reader"]);
    let other = image("p2", Visibility::Private, None);
    assert!(policy.is_admin(&admin));
    assert!(policy.allows(&admin, Action::PublicizeImage, &other));
    assert!(policy.allows(&admin, Action::DeleteImageLocation, &other));
    let mut system = ctx(None, &["admin", "member", "reader"]);
    system.system_scope = Some("all".into());
    assert!(!policy.is_admin(&system));
    assert!(!policy.allows(&system, Action::GetImages, &other));
    let service = ctx(Some("service"), &["service"]);
    assert!(policy.allows(&service, Action::StoresInfoDetail, &other));
    // Glance with no authentication: an administrator everywhere.
    let noauth = RequestContext::unauthenticated_admin("req".into());
    assert!(policy.is_admin(&noauth));
    assert!(policy.allows(&noauth, Action::PublicizeImage, &other));
}

#[test]
fn an_operators_file_replaces_rules_by_name() {
    let policy = with_file(
        "\"publicize_image\": \"role:admin or role:publisher\"\n\
         \"get_images\": \"!\"\n\
         \"context_is_admin\": \"role:superuser\"\n",
        |_| {},
    );
    let publisher = ctx(Some("p1"), &["member", "reader", "publisher"]);
    let own = image("p1", Visibility::Private, None);
    assert!(policy.allows(&publisher, Action::PublicizeImage, &own));
    assert!(!policy.allows(&publisher, Action::GetImages, &own));
    // Rules the file leaves alone keep their default.
    assert!(policy.allows(&publisher, Action::ModifyImage, &own));
    let admin = ctx(Some("ops"), &["admin"]);
    assert!(!policy.is_admin(&admin));
    assert!(policy.is_admin(&ctx(Some("ops"), &["superuser"])));
}

#[test]
fn the_scope_and_defaults_switches() {
    let mut system = ctx(None, &["admin", "reader"]);
    system.system_scope = Some("all".into());
    let target = image("p1", Visibility::Private, None);
    let unscoped = with_file("{}", |c| c.enforce_scope = false);
    assert!(unscoped.allows(&system, Action::PublicizeImage, &target));
    // The old defaults or-ed in: `rule:default` is empty, so everyone passes.
    let legacy = with_file("{}", |c| c.enforce_new_defaults = false);
    let nobody = ctx(Some("p2"), &[]);
    assert!(legacy.allows(&nobody, Action::ModifyImage, &target));
    assert!(!defaults().allows(&nobody, Action::ModifyImage, &target));
}

#[test]
fn a_bad_file_is_refused_with_the_rule_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, "add_image: \"role:member and\"\n").expect("writes");
    let err = Enforcer::new(&PolicyConfig {
        policy_file: Some(path),
        ..PolicyConfig::default()
    })
    .expect_err("refused");
    assert!(err.contains("add_image"), "{err}");
}

#[test]
fn the_listed_defaults_read_back_as_the_defaults() {
    let listed = defaults_as_yaml();
    let uncommented: String = listed
        .lines()
        .filter_map(|l| l.strip_prefix("#\""))
        .map(|l| format!("\"{l}\n"))
        .collect();
    let from_listing = with_file(&uncommented, |_| {});
    let builtin = defaults();
    assert_eq!(from_listing.rules, builtin.rules);
    assert_eq!(uncommented.lines().count(), DEFAULTS.len());
}

#[test]
fn a_rule_asked_by_name_denies_when_undefined_and_ignores_default() {
    // Property protections in the policies format name rules this way.
    let enforcer = with_file(
        "\"creator\": \"role:spl_role\"\n\"default\": \"@\"\n",
        |_| {},
    );
    assert!(enforcer.allows_rule(&ctx(Some("p"), &["spl_role"]), "creator"));
    assert!(!enforcer.allows_rule(&ctx(Some("p"), &["member"]), "creator"));
    assert!(!enforcer.allows_rule(&ctx(Some("p"), &["admin"]), "no_such_rule"));
}
