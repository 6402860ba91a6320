//! Turns a `ListQuery` into one SELECT: visibility for the viewer, filters, keyset pagination
//! after the marker, ordering and limit. Every value is a bind parameter.

use chrono::NaiveDateTime;

use super::rows::to_db_time;
use super::sql_builder::SqlBuilder;
use crate::domain::image::{Image, Visibility};
use crate::domain::listing::{
    Column, Comparison, Filter, ListQuery, SortDir, SortKey, Viewer, VisibilityFilter,
};

/// The `images` column a filter or sort names.
fn column_name(column: Column) -> &'static str {
    match column {
        Column::Id => "id",
        Column::Name => "name",
        Column::Status => "status",
        Column::ContainerFormat => "container_format",
        Column::DiskFormat => "disk_format",
        Column::Owner => "owner",
        Column::Checksum => "checksum",
        Column::OsHashAlgo => "os_hash_algo",
        Column::OsHashValue => "os_hash_value",
        Column::Size => "size",
        Column::VirtualSize => "virtual_size",
        Column::MinDisk => "min_disk",
        Column::MinRam => "min_ram",
        Column::Protected => "protected",
        Column::CreatedAt => "created_at",
        Column::UpdatedAt => "updated_at",
    }
}

/// The SQL operator of a comparison.
fn operator(cmp: Comparison) -> &'static str {
    match cmp {
        Comparison::Eq => "=",
        Comparison::Neq => "<>",
        Comparison::Gt => ">",
        Comparison::Gte => ">=",
        Comparison::Lt => "<",
        Comparison::Lte => "<=",
    }
}

/// A marker's value in one sort column.
#[derive(Debug, Clone)]
enum SortValue {
    Text(Option<String>),
    Integer(Option<i64>),
    Time(NaiveDateTime),
}

fn sort_value(image: &Image, column: Column) -> SortValue {
    match column {
        Column::Id => SortValue::Text(Some(image.id.to_string())),
        Column::Name => SortValue::Text(image.name.clone()),
        Column::Status => SortValue::Text(Some(image.status.as_str().to_owned())),
        Column::ContainerFormat => SortValue::Text(image.container_format.clone()),
        Column::DiskFormat => SortValue::Text(image.disk_format.clone()),
        Column::Size => SortValue::Integer(image.size),
        Column::CreatedAt => SortValue::Time(to_db_time(image.created_at)),
        Column::UpdatedAt => SortValue::Time(to_db_time(image.updated_at)),
        // Not sortable (ListQuery only admits SORT_KEYS); compare as equal text.
        _ => SortValue::Text(None),
    }
}

fn nullable(column: Column) -> bool {
    !matches!(
        column,
        Column::Id | Column::Status | Column::CreatedAt | Column::UpdatedAt
    )
}

pub(super) fn build(
    q: &mut SqlBuilder,
    columns: &str,
    query: &ListQuery,
    viewer: &Viewer,
    marker: Option<&Image>,
) {
    q.push(format_args!(
        "SELECT {columns} FROM images i WHERE i.deleted = "
    ));
    q.push_bind(false);
    // Killed images are never listed, though they can be shown by id.
    q.push(" AND i.status <> 'killed' AND ");
    push_visibility(q, query, viewer);
    q.push(" AND i.os_hidden = ").push_bind(query.os_hidden);
    let mut tags: Vec<&String> = Vec::new();
    let mut properties: Vec<(&String, &String)> = Vec::new();
    for filter in &query.filters {
        match filter {
            Filter::Tag(tag) => tags.push(tag),
            Filter::Property { key, value } => properties.push((key, value)),
            other => {
                q.push(" AND ");
                push_filter(q, other);
            }
        }
    }
    push_tags(q, tags);
    push_properties(q, properties);
    if let Some(marker) = marker {
        q.push(" AND ");
        push_after_marker(q, &query.sort, marker);
    }
    q.push(" ORDER BY ");
    for (n, key) in query.sort.iter().enumerate() {
        if n > 0 {
            q.push(", ");
        }
        // NULL sorts as the smallest value on every database (MySQL's own order, which has no
        // NULLS FIRST: the dialect drops the clause there).
        let order = match (key.dir, nullable(key.column)) {
            (SortDir::Asc, true) => " ASC NULLS FIRST",
            (SortDir::Desc, true) => " DESC NULLS LAST",
            (SortDir::Asc, false) => " ASC",
            (SortDir::Desc, false) => " DESC",
        };
        q.push(format_args!("i.{}{order}", column_name(key.column)));
    }
    q.push(" LIMIT ").push_bind(i64::from(query.limit));
}

/// `EXISTS` over the viewer's membership of `i`; `status` None means any member status.
fn push_member(q: &mut SqlBuilder, project: &str, status: Option<&str>) {
    q.push(
        "EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = i.id AND m.deleted = FALSE \
         AND m.member = ",
    );
    q.push_bind(project.to_owned());
    if let Some(status) = status {
        q.push(" AND m.status = ").push_bind(status.to_owned());
    }
    q.push(")");
}

/// Which rows the viewer may list, per Glance's `_select_images_query`.
fn push_visibility(q: &mut SqlBuilder, query: &ListQuery, viewer: &Viewer) {
    let member_status = query.member_status.as_str();
    let project = viewer.project.as_deref();
    let owned = |q: &mut SqlBuilder| match project {
        Some(p) => {
            q.push("i.owner = ").push_bind(p.to_owned());
        }
        None => {
            q.push("1 = 0");
        }
    };
    let shared_with_me = |q: &mut SqlBuilder| match project {
        Some(p) => {
            q.push("(i.visibility = 'shared' AND ");
            push_member(q, p, member_status);
            q.push(")");
        }
        None => {
            q.push("1 = 0");
        }
    };
    match query.visibility {
        None if viewer.is_admin => {
            // Admins list everything except other projects' community images.
            q.push("(i.visibility <> 'community' OR ");
            owned(q);
            q.push(")");
        }
        None => {
            q.push("(i.visibility = 'public' OR ");
            owned(q);
            q.push(" OR ");
            shared_with_me(q);
            q.push(")");
        }
        Some(VisibilityFilter::All) if viewer.is_admin => {
            q.push("1 = 1");
        }
        Some(VisibilityFilter::All) => {
            q.push("(i.visibility IN ('public', 'community') OR ");
            owned(q);
            q.push(" OR ");
            shared_with_me(q);
            q.push(")");
        }
        Some(VisibilityFilter::Only(v @ (Visibility::Public | Visibility::Community))) => {
            q.push(format_args!("i.visibility = '{}'", v.as_str()));
        }
        Some(VisibilityFilter::Only(Visibility::Private)) if viewer.is_admin => {
            q.push("i.visibility = 'private'");
        }
        Some(VisibilityFilter::Only(Visibility::Private)) => {
            q.push("(i.visibility = 'private' AND ");
            owned(q);
            q.push(")");
        }
        Some(VisibilityFilter::Only(Visibility::Shared)) if viewer.is_admin => {
            q.push("i.visibility = 'shared'");
        }
        Some(VisibilityFilter::Only(Visibility::Shared)) => {
            q.push("(i.visibility = 'shared' AND (");
            owned(q);
            q.push(" OR ");
            shared_with_me(q);
            q.push("))");
        }
    }
}

fn push_filter(q: &mut SqlBuilder, filter: &Filter) {
    match filter {
        Filter::TextIn { column, values } => {
            q.push(format_args!("i.{} IN (", column_name(*column)));
            for (n, value) in values.iter().enumerate() {
                if n > 0 {
                    q.push(", ");
                }
                q.push_bind(value.clone());
            }
            q.push(")");
        }
        Filter::Integer { column, cmp, value } => {
            q.push(format_args!(
                "i.{} {} ",
                column_name(*column),
                operator(*cmp)
            ))
            .push_bind(*value);
        }
        Filter::Boolean { column, value } => {
            q.push(format_args!("i.{} = ", column_name(*column)))
                .push_bind(*value);
        }
        Filter::Time { column, cmp, value } => {
            q.push(format_args!(
                "i.{} {} ",
                column_name(*column),
                operator(*cmp)
            ))
            .push_bind(to_db_time(*value));
        }
        // Gathered by `build` into one subquery each.
        Filter::Property { .. } | Filter::Tag(_) => {
            q.push("1 = 1");
        }
    }
}

/// Images that carry every one of `tags`: one grouped subquery whatever their number (one
/// `EXISTS` per tag makes the planner's work grow far faster than the tag count).
fn push_tags(q: &mut SqlBuilder, mut tags: Vec<&String>) {
    tags.sort();
    tags.dedup();
    if tags.is_empty() {
        return;
    }
    // Removed tags stay as deleted rows; a tag Glance recorded twice counts once.
    q.push(" AND i.id IN (SELECT t.image_id FROM image_tags t WHERE t.deleted = FALSE AND t.value IN (");
    for (n, tag) in tags.iter().enumerate() {
        if n > 0 {
            q.push(", ");
        }
        q.push_bind((*tag).clone());
    }
    q.push(") GROUP BY t.image_id HAVING COUNT(DISTINCT t.value) = ")
        .push_bind(tags.len() as i64)
        .push(")");
}

/// Images with every `name = value` of `properties` (names are unique per image, and per
/// query: only the last value of a repeated key counts).
fn push_properties(q: &mut SqlBuilder, properties: Vec<(&String, &String)>) {
    if properties.is_empty() {
        return;
    }
    q.push(" AND i.id IN (SELECT p.image_id FROM image_properties p WHERE p.deleted = FALSE AND (");
    for (n, (name, value)) in properties.iter().enumerate() {
        if n > 0 {
            q.push(" OR ");
        }
        q.push("(p.name = ")
            .push_bind((*name).clone())
            .push(" AND p.value = ")
            .push_bind((*value).clone())
            .push(")");
    }
    q.push(") GROUP BY p.image_id HAVING COUNT(*) = ")
        .push_bind(properties.len() as i64)
        .push(")");
}

/// Rows strictly after `marker` in sort order: for keys k1..kn,
/// `(k1 after m1) OR (k1 = m1 AND k2 after m2) OR …`, with NULL the smallest value.
fn push_after_marker(q: &mut SqlBuilder, sort: &[SortKey], marker: &Image) {
    q.push("(");
    for (n, key) in sort.iter().enumerate() {
        if n > 0 {
            q.push(" OR ");
        }
        q.push("(");
        for earlier in &sort[..n] {
            push_compare(
                q,
                earlier.column,
                Comparison::Eq,
                sort_value(marker, earlier.column),
            );
            q.push(" AND ");
        }
        let cmp = if key.dir == SortDir::Asc {
            Comparison::Gt
        } else {
            Comparison::Lt
        };
        push_compare(q, key.column, cmp, sort_value(marker, key.column));
        q.push(")");
    }
    q.push(")");
}

/// `column cmp value` where `value` may be NULL (the smallest value).
fn push_compare(q: &mut SqlBuilder, column: Column, cmp: Comparison, value: SortValue) {
    let name = column_name(column);
    let is_null = matches!(value, SortValue::Text(None) | SortValue::Integer(None));
    match (cmp, is_null) {
        (Comparison::Eq, true) => {
            q.push(format_args!("i.{name} IS NULL"));
            return;
        }
        (Comparison::Gt, true) => {
            q.push(format_args!("i.{name} IS NOT NULL"));
            return;
        }
        (Comparison::Lt, true) => {
            q.push("1 = 0");
            return;
        }
        _ => {}
    }
    // Below a non-NULL marker value, NULLs come last in descending order.
    let or_null = cmp == Comparison::Lt && nullable(column);
    if or_null {
        q.push("(");
    }
    q.push(format_args!("i.{name} {} ", operator(cmp)));
    match value {
        SortValue::Text(v) => q.push_bind(v),
        SortValue::Integer(v) => q.push_bind(v),
        SortValue::Time(v) => q.push_bind(v),
    };
    if or_null {
        q.push(format_args!(" OR i.{name} IS NULL)"));
    }
}
