//! `GET /v2/images` query parameters, parsed and validated into a `ListQuery` that the
//! repository turns into SQL. Messages follow Glance's `images.py` request deserializer.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

#[cfg(test)]
use super::error::Refusal;
use super::error::{DomainError, DomainResult};
use super::image::Visibility;

/// Columns a filter or sort may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Id,
    Name,
    Status,
    ContainerFormat,
    DiskFormat,
    Owner,
    Checksum,
    OsHashAlgo,
    OsHashValue,
    Size,
    VirtualSize,
    MinDisk,
    MinRam,
    Protected,
    CreatedAt,
    UpdatedAt,
}

impl Column {
    fn text(name: &str) -> Option<Column> {
        Some(match name {
            "id" => Column::Id,
            "name" => Column::Name,
            "status" => Column::Status,
            "container_format" => Column::ContainerFormat,
            "disk_format" => Column::DiskFormat,
            "owner" => Column::Owner,
            "checksum" => Column::Checksum,
            "os_hash_algo" => Column::OsHashAlgo,
            "os_hash_value" => Column::OsHashValue,
            _ => return None,
        })
    }

    fn integer(name: &str) -> Option<Column> {
        Some(match name {
            "size" => Column::Size,
            "virtual_size" => Column::VirtualSize,
            "min_disk" => Column::MinDisk,
            "min_ram" => Column::MinRam,
            _ => return None,
        })
    }
}

/// Keys `sort_key`/`sort` accept, in the order Glance lists them in its error message.
pub const SORT_KEYS: [&str; 8] = [
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
];

/// How a filter compares a column with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// A text column equal to one of the values (`name=x`, `status=in:a,b`).
    TextIn {
        column: Column,
        values: Vec<String>,
    },
    /// An integer column compared with a value (`size_min`, `min_ram=512`).
    Integer {
        column: Column,
        cmp: Comparison,
        value: i64,
    },
    Boolean {
        column: Column,
        value: bool,
    },
    /// `created_at=gte:2026-01-01T00:00:00Z`.
    Time {
        column: Column,
        cmp: Comparison,
        value: DateTime<Utc>,
    },
    /// An extra property equal to a value (`os_distro=debian`).
    Property {
        key: String,
        value: String,
    },
    /// Has this tag (`tag=x`, repeatable, all must match).
    Tag(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

impl SortDir {
    fn parse(value: &str) -> DomainResult<SortDir> {
        match value {
            "asc" => Ok(SortDir::Asc),
            "desc" => Ok(SortDir::Desc),
            other => Err(DomainError::bad_request(format!(
                "Invalid sort direction: {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub column: Column,
    pub dir: SortDir,
}

/// The `visibility` filter: one value, or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityFilter {
    Only(Visibility),
    All,
}

/// The `member_status` filter; only affects images shared with the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatusFilter {
    Accepted,
    Pending,
    Rejected,
    All,
}

impl MemberStatusFilter {
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            MemberStatusFilter::Accepted => Some("accepted"),
            MemberStatusFilter::Pending => Some("pending"),
            MemberStatusFilter::Rejected => Some("rejected"),
            MemberStatusFilter::All => None,
        }
    }
}

/// A validated image-list request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filters: Vec<Filter>,
    pub visibility: Option<VisibilityFilter>,
    pub member_status: MemberStatusFilter,
    pub os_hidden: bool,
    /// Always ends with `created_at` and `id`, so every page boundary is unambiguous.
    pub sort: Vec<SortKey>,
    pub limit: u32,
    pub marker: Option<String>,
}

/// Who is listing: decides which rows are visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub project: Option<String>,
    pub is_admin: bool,
}

/// Page-size settings from `[DEFAULT] limit_param_default` and `api_limit_max`.
#[derive(Debug, Clone, Copy)]
pub struct PageLimits {
    pub default: u32,
    pub max: u32,
}

/// Tag and property filters one listing may combine: each is a subquery, and beyond a few
/// dozen the database's planning and execution cost grows much faster than their number.
pub const MAX_SUBQUERY_FILTERS: usize = 64;
/// Values one listing may compare with (all `in:` lists together), well under the bind
/// parameter limits of every database.
pub const MAX_FILTER_VALUES: usize = 1000;

/// Keys that may repeat; of any other key only the last value counts, as in Glance.
const REPEATABLE: [&str; 3] = ["tag", "sort_key", "sort_dir"];

impl ListQuery {
    /// Parses the decoded query string pairs of `GET /v2/images`.
    pub fn parse(params: &[(String, String)], limits: PageLimits) -> DomainResult<ListQuery> {
        let mut query = ListQuery {
            filters: Vec::new(),
            visibility: None,
            member_status: MemberStatusFilter::Accepted,
            os_hidden: false,
            sort: Vec::new(),
            limit: limits.default.min(limits.max),
            marker: None,
        };
        let mut sort_keys: Vec<&str> = Vec::new();
        let mut sort_dirs: Vec<&str> = Vec::new();
        let mut sort_param: Option<&str> = None;
        for (key, value) in params {
            super::image_rules::check_storable("query parameter name", key)?;
            super::image_rules::check_storable(key, value)?;
        }

        // Linear in the number of parameters, however many a query string holds.
        let last: std::collections::HashMap<&str, usize> = params
            .iter()
            .enumerate()
            .map(|(n, (key, _))| (key.as_str(), n))
            .collect();
        let effective = params.iter().enumerate().filter(|(n, (key, _))| {
            REPEATABLE.contains(&key.as_str()) || last.get(key.as_str()) == Some(n)
        });
        for (_, (key, value)) in effective {
            let value = value.as_str();
            match key.as_str() {
                "limit" => query.limit = parse_limit(value)?.min(limits.max),
                "marker" => query.marker = Some(value.to_owned()),
                "sort_key" => sort_keys.extend(value.split(',').map(str::trim)),
                "sort_dir" => sort_dirs.extend(value.split(',').map(str::trim)),
                "sort" => sort_param = Some(value),
                "visibility" if value.is_empty() => {}
                "visibility" => query.visibility = Some(parse_visibility(value)?),
                "member_status" => query.member_status = parse_member_status(value)?,
                "os_hidden" => query.os_hidden = parse_bool("os_hidden", value)?,
                "protected" => query.filters.push(Filter::Boolean {
                    column: Column::Protected,
                    value: parse_bool("protected", value)?,
                }),
                "tag" => query.filters.push(Filter::Tag(value.to_owned())),
                "changes-since" if value.is_empty() => {}
                "changes-since" => {
                    return Err(DomainError::bad_request(
                        "The \"changes-since\" filter is no longer available on v2.",
                    ))
                }
                "created_at" | "updated_at" => {
                    let column = if key == "created_at" {
                        Column::CreatedAt
                    } else {
                        Column::UpdatedAt
                    };
                    let (cmp, value) = parse_time_filter(key, value)?;
                    query.filters.push(Filter::Time { column, cmp, value });
                }
                other => query.filters.push(parse_other_filter(other, value)?),
            }
        }
        query.sort = parse_sort(&sort_keys, &sort_dirs, sort_param)?;
        query.check_cost()?;
        Ok(query)
    }
}

impl ListQuery {
    /// Refuses listings whose filters would cost the database more than any real client needs.
    fn check_cost(&self) -> DomainResult<()> {
        let subqueries = self
            .filters
            .iter()
            .filter(|f| matches!(f, Filter::Tag(_) | Filter::Property { .. }))
            .count();
        if subqueries > MAX_SUBQUERY_FILTERS {
            return Err(DomainError::bad_request(format!(
                "Too many tag and property filters: {subqueries}, at most {MAX_SUBQUERY_FILTERS} are allowed."
            )));
        }
        let values: usize = self
            .filters
            .iter()
            .map(|f| match f {
                Filter::TextIn { values, .. } => values.len(),
                _ => 1,
            })
            .sum();
        if values > MAX_FILTER_VALUES {
            return Err(DomainError::bad_request(format!(
                "Too many filter values: {values}, at most {MAX_FILTER_VALUES} are allowed."
            )));
        }
        Ok(())
    }
}

fn parse_limit(value: &str) -> DomainResult<u32> {
    let limit: i64 = value
        .parse()
        .map_err(|_| DomainError::bad_request("limit param must be an integer"))?;
    if limit < 0 {
        return Err(DomainError::bad_request("limit param must be positive"));
    }
    Ok(u32::try_from(limit).unwrap_or(u32::MAX))
}

fn parse_visibility(value: &str) -> DomainResult<VisibilityFilter> {
    if value == "all" {
        return Ok(VisibilityFilter::All);
    }
    Visibility::parse(value)
        .map(VisibilityFilter::Only)
        .ok_or_else(|| DomainError::bad_request(format!("Invalid visibility value: {value}")))
}

fn parse_member_status(value: &str) -> DomainResult<MemberStatusFilter> {
    Ok(match value {
        "accepted" => MemberStatusFilter::Accepted,
        "pending" => MemberStatusFilter::Pending,
        "rejected" => MemberStatusFilter::Rejected,
        "all" => MemberStatusFilter::All,
        other => return Err(DomainError::bad_request(format!("Invalid status: {other}"))),
    })
}

/// `true` or `false`, in any case (Glance lower-cases `os_hidden`; accepting `True` for
/// `protected` too is kinder to openstacksdk, which sends it capitalised).
fn parse_bool(name: &str, value: &str) -> DomainResult<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(DomainError::bad_request(format!(
            "Invalid value '{value}' for '{name}' filter. Valid values are 'true' or 'false'."
        ))),
    }
}

/// Operators a filter value may start with (`gt:2026-01-01`).
const OPERATORS: [&str; 7] = ["eq", "neq", "gt", "gte", "lt", "lte", "in"];

/// Splits `op:value` where `op` is one of the known operators; a bare value is `eq`.
fn split_operator(value: &str) -> (Option<&str>, &str) {
    match value.split_once(':') {
        Some((op, rest)) if OPERATORS.contains(&op) => (Some(op), rest),
        _ => (None, value),
    }
}

fn parse_time_filter(key: &str, value: &str) -> DomainResult<(Comparison, DateTime<Utc>)> {
    // A bare timestamp contains colons too: try it whole first.
    if let Some(time) = parse_iso8601(value) {
        return Ok((Comparison::Eq, time));
    }
    let (op, raw) = value.split_once(':').unwrap_or(("eq", value));
    let cmp = match op {
        "eq" => Comparison::Eq,
        "neq" => Comparison::Neq,
        "gt" => Comparison::Gt,
        "gte" => Comparison::Gte,
        "lt" => Comparison::Lt,
        "lte" => Comparison::Lte,
        _ => {
            return Err(DomainError::bad_request(
                "Unable to filter on a unknown operator.",
            ))
        }
    };
    let time = parse_iso8601(raw).ok_or_else(|| {
        DomainError::bad_request(format!(
            "Bad \"{key}\" query filter format. Use ISO 8601 DateTime notation."
        ))
    })?;
    Ok((cmp, time))
}

/// ISO 8601 forms clients send: date, date-time with `T` or space, optional fraction and
/// offset (`Z`, `+hh:mm`); a missing offset means UTC, as Glance's iso8601 parser assumes.
pub fn parse_iso8601(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            return Some(t.and_utc());
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(raw, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Splits an `in:` list: comma-separated, values may be double-quoted to contain commas.
fn split_in_values(raw: &str) -> DomainResult<Vec<String>> {
    let invalid =
        |why: &str| DomainError::bad_request(format!("Invalid filter value {raw}. {why}"));
    let mut values = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if !quoted && current.is_empty() => quoted = true,
            '"' if !quoted => {
                return Err(invalid("There is no comma before opening quotation mark."))
            }
            '"' => {
                quoted = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err(invalid("There is no comma after closing quotation mark."));
                }
            }
            ',' if !quoted => values.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if quoted {
        return Err(invalid("The quote is not closed."));
    }
    values.push(current);
    Ok(values)
}

fn parse_other_filter(key: &str, value: &str) -> DomainResult<Filter> {
    if let Some(column) = Column::text(key) {
        let (op, raw) = split_operator(value);
        let values = match op {
            None => vec![value.to_owned()],
            Some("eq") => vec![raw.to_owned()],
            Some("in") => split_in_values(raw)?,
            Some(other) => {
                return Err(DomainError::bad_request(format!(
                    "Unable to filter by unknown operator '{other}'."
                )))
            }
        };
        return Ok(Filter::TextIn { column, values });
    }
    let bound = key
        .strip_suffix("_min")
        .map(|c| (c, Comparison::Gte))
        .or_else(|| key.strip_suffix("_max").map(|c| (c, Comparison::Lte)));
    if let Some((column, cmp)) = bound.and_then(|(c, cmp)| Column::integer(c).map(|c| (c, cmp))) {
        return Ok(Filter::Integer {
            column,
            cmp,
            value: parse_integer(value)?,
        });
    }
    if let Some(column) = Column::integer(key) {
        return Ok(Filter::Integer {
            column,
            cmp: Comparison::Eq,
            value: parse_integer(value)?,
        });
    }
    Ok(Filter::Property {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

fn parse_integer(value: &str) -> DomainResult<i64> {
    value.parse().map_err(|_| {
        DomainError::bad_request("Unable to filter on a range with a non-numeric value.")
    })
}

fn sort_column(key: &str) -> DomainResult<Column> {
    if !SORT_KEYS.contains(&key) {
        return Err(DomainError::bad_request(format!(
            "Invalid sort key: {key}. It must be one of the following: {}.",
            SORT_KEYS.join(", ")
        )));
    }
    Ok(Column::text(key)
        .or_else(|| Column::integer(key))
        .unwrap_or(if key == "created_at" {
            Column::CreatedAt
        } else {
            Column::UpdatedAt
        }))
}

fn parse_sort(keys: &[&str], dirs: &[&str], sort: Option<&str>) -> DomainResult<Vec<SortKey>> {
    let mut sort_keys = Vec::new();
    if let Some(sort) = sort {
        if !keys.is_empty() || !dirs.is_empty() {
            return Err(DomainError::bad_request(
                "Old and new sorting syntax cannot be combined",
            ));
        }
        for item in sort.split(',').map(str::trim) {
            let (key, dir) = match item.split_once(':') {
                Some((key, dir)) => (key.trim(), SortDir::parse(dir.trim())?),
                None => (item, SortDir::Desc),
            };
            sort_keys.push(SortKey {
                column: sort_column(key)?,
                dir,
            });
        }
    } else {
        // One direction for all keys, or one per key.
        if dirs.len() > 1 && dirs.len() != keys.len() {
            return Err(DomainError::bad_request(
                "Number of sort dirs does not match the number of sort keys",
            ));
        }
        let dirs: Vec<SortDir> = dirs
            .iter()
            .map(|d| SortDir::parse(d))
            .collect::<DomainResult<_>>()?;
        for (i, key) in keys.iter().enumerate() {
            let dir = dirs
                .get(i)
                .or(dirs.first())
                .copied()
                .unwrap_or(SortDir::Desc);
            sort_keys.push(SortKey {
                column: sort_column(key)?,
                dir,
            });
        }
        if keys.is_empty() {
            if let Some(&dir) = dirs.first() {
                sort_keys.push(SortKey {
                    column: Column::CreatedAt,
                    dir,
                });
            }
        }
    }
    // Tie-breakers so that markers are exact, as Glance appends them: in the one direction
    // given, if exactly one was, else descending.
    let mut distinct_dirs = sort_keys.iter().map(|k| k.dir);
    let first_dir = distinct_dirs.next();
    let tie_dir = match first_dir {
        Some(dir)
            if sort_keys.len() == 1
                || distinct_dirs.all(|d| d == dir) && !dirs.is_empty() && dirs.len() == 1 =>
        {
            dir
        }
        _ => SortDir::Desc,
    };
    for column in [Column::CreatedAt, Column::Id] {
        if !sort_keys.iter().any(|k| k.column == column) {
            sort_keys.push(SortKey {
                column,
                dir: tie_dir,
            });
        }
    }
    Ok(sort_keys)
}

#[cfg(test)]
mod tests;
