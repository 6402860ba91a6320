use super::*;

const LIMITS: PageLimits = PageLimits {
    default: 25,
    max: 1000,
};

fn parse(query: &str) -> DomainResult<ListQuery> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    ListQuery::parse(&pairs, LIMITS)
}

fn bad(query: &str) -> String {
    match parse(query) {
        Err(e) if e.kind() == Some(Refusal::BadRequest) => e.to_string(),
        other => panic!("expected 400 for {query}, got {other:?}"),
    }
}

#[test]
fn defaults_are_created_at_desc_with_id_tiebreak_and_25_rows() {
    let q = parse("").expect("empty query parses");
    assert_eq!(q.limit, 25);
    assert_eq!(
        q.sort,
        [
            SortKey {
                column: Column::CreatedAt,
                dir: SortDir::Desc
            },
            SortKey {
                column: Column::Id,
                dir: SortDir::Desc
            }
        ]
    );
    assert!(!q.os_hidden);
    assert_eq!(q.member_status, MemberStatusFilter::Accepted);
}

#[test]
fn limit_is_capped_and_validated() {
    assert_eq!(parse("limit=5000").expect("parses").limit, 1000);
    assert_eq!(parse("limit=0").expect("parses").limit, 0);
    assert_eq!(bad("limit=-1"), "limit param must be positive");
    assert_eq!(bad("limit=x"), "limit param must be an integer");
}

#[test]
fn sort_forms() {
    let q = parse("sort=name:asc,size").expect("parses");
    assert_eq!(
        q.sort[0],
        SortKey {
            column: Column::Name,
            dir: SortDir::Asc
        }
    );
    assert_eq!(
        q.sort[1],
        SortKey {
            column: Column::Size,
            dir: SortDir::Desc
        }
    );
    let q = parse("sort_key=name&sort_key=status&sort_dir=asc").expect("parses");
    assert_eq!(
        q.sort[1],
        SortKey {
            column: Column::Status,
            dir: SortDir::Asc
        }
    );
    assert!(bad("sort_key=bogus").starts_with("Invalid sort key: bogus."));
    assert_eq!(
        bad("sort=name&sort_key=id"),
        "Old and new sorting syntax cannot be combined"
    );
    assert!(
        bad("sort_key=name&sort_key=id&sort_key=size&sort_dir=asc&sort_dir=desc")
            .contains("does not match")
    );
    assert_eq!(bad("sort_dir=up"), "Invalid sort direction: up");
}

#[test]
fn in_operator_splits_and_honours_quotes() {
    let q = parse("name=in:a,%22b,c%22,d").expect("parses");
    assert_eq!(
        q.filters,
        [Filter::TextIn {
            column: Column::Name,
            values: vec!["a".into(), "b,c".into(), "d".into()]
        }]
    );
    assert_eq!(
        bad("name=gt:a"),
        "Unable to filter by unknown operator 'gt'."
    );
    assert!(bad("name=in:a%22b").contains("no comma before opening"));
    assert!(bad("name=in:%22a%22b").contains("no comma after closing"));
    assert!(bad("name=in:%22a").contains("quote is not closed"));
    // A colon after something that is not an operator is part of the value.
    assert_eq!(
        parse("name=foo:bar").expect("parses").filters,
        [Filter::TextIn {
            column: Column::Name,
            values: vec!["foo:bar".into()]
        }]
    );
    // Of a repeated key only the last value counts.
    assert_eq!(
        parse("name=a&name=b").expect("parses").filters,
        [Filter::TextIn {
            column: Column::Name,
            values: vec!["b".into()]
        }]
    );
}

#[test]
fn time_filters_take_operators() {
    let q = parse("created_at=gte:2026-01-02T03:04:05Z").expect("parses");
    let Filter::Time { cmp, value, .. } = &q.filters[0] else {
        panic!("time filter")
    };
    assert_eq!(*cmp, Comparison::Gte);
    assert_eq!(value.to_rfc3339(), "2026-01-02T03:04:05+00:00");
    assert_eq!(
        bad("updated_at=lt:yesterday"),
        "Bad \"updated_at\" query filter format. Use ISO 8601 DateTime notation."
    );
    assert_eq!(
        bad("created_at=soon:2026-01-01"),
        "Unable to filter on a unknown operator."
    );
    let q = parse("created_at=2026-01-02T03:04:05Z").expect("bare timestamp parses");
    assert!(matches!(
        q.filters[0],
        Filter::Time {
            cmp: Comparison::Eq,
            ..
        }
    ));
}

#[test]
fn size_bounds_and_property_filters() {
    let q = parse("size_min=10&size_max=20&os_distro=debian&min_ram=512").expect("parses");
    assert_eq!(
        q.filters,
        [
            Filter::Integer {
                column: Column::Size,
                cmp: Comparison::Gte,
                value: 10
            },
            Filter::Integer {
                column: Column::Size,
                cmp: Comparison::Lte,
                value: 20
            },
            Filter::Property {
                key: "os_distro".into(),
                value: "debian".into()
            },
            Filter::Integer {
                column: Column::MinRam,
                cmp: Comparison::Eq,
                value: 512
            },
        ]
    );
    assert_eq!(
        bad("size_min=big"),
        "Unable to filter on a range with a non-numeric value."
    );
}

#[test]
fn enumerated_filters_are_validated() {
    assert!(bad("visibility=everyone").contains("Invalid visibility"));
    assert_eq!(bad("member_status=maybe"), "Invalid status: maybe");
    assert_eq!(
        bad("protected=perhaps"),
        "Invalid value 'perhaps' for 'protected' filter. Valid values are 'true' or 'false'."
    );
    assert!(bad("os_hidden=perhaps").contains("os_hidden"));
    assert_eq!(
        bad("changes-since=2026-01-01"),
        "The \"changes-since\" filter is no longer available on v2."
    );
    assert_eq!(
        parse("visibility=")
            .expect("empty visibility is ignored")
            .visibility,
        None
    );
    assert_eq!(
        parse("visibility=all").expect("parses").visibility,
        Some(VisibilityFilter::All)
    );
    assert!(parse("os_hidden=true").expect("parses").os_hidden);
}
