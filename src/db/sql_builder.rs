//! A minimal dynamic-SQL builder: text plus `$N` bind values, turned into an sqlx query.
//! (sqlx's `QueryBuilder` cannot be executed from code generic over the database, because its
//! argument lifetime must outlive the builder's own borrow.)

use std::sync::OnceLock;

use chrono::NaiveDateTime;
use sqlx::query::Query;
use sqlx::{Encode, Type};

use super::dialect::Dialect;

/// One bind value of the types the image tables use.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(Option<String>),
    Integer(Option<i64>),
    Int32(i32),
    Bool(bool),
    Time(NaiveDateTime),
}

impl From<String> for Bind {
    fn from(v: String) -> Bind {
        Bind::Text(Some(v))
    }
}
impl From<&str> for Bind {
    fn from(v: &str) -> Bind {
        Bind::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Bind {
    fn from(v: Option<String>) -> Bind {
        Bind::Text(v)
    }
}
impl From<i64> for Bind {
    fn from(v: i64) -> Bind {
        Bind::Integer(Some(v))
    }
}
impl From<Option<i64>> for Bind {
    fn from(v: Option<i64>) -> Bind {
        Bind::Integer(v)
    }
}
impl From<i32> for Bind {
    fn from(v: i32) -> Bind {
        Bind::Int32(v)
    }
}
impl From<bool> for Bind {
    fn from(v: bool) -> Bind {
        Bind::Bool(v)
    }
}
impl From<NaiveDateTime> for Bind {
    fn from(v: NaiveDateTime) -> Bind {
        Bind::Time(v)
    }
}

#[derive(Debug, Default, Clone)]
pub struct SqlBuilder {
    sql: String,
    binds: Vec<Bind>,
    /// The text in the dialect's form, made once when the query is first taken.
    dialect_sql: OnceLock<String>,
}

impl SqlBuilder {
    pub fn new(sql: impl Into<String>) -> SqlBuilder {
        SqlBuilder {
            sql: sql.into(),
            binds: Vec::new(),
            dialect_sql: OnceLock::new(),
        }
    }

    pub fn push(&mut self, sql: impl std::fmt::Display) -> &mut SqlBuilder {
        use std::fmt::Write;
        let _ = write!(self.sql, "{sql}");
        self
    }

    /// Appends the next `$N` placeholder and remembers its value.
    pub fn push_bind(&mut self, value: impl Into<Bind>) -> &mut SqlBuilder {
        self.binds.push(value.into());
        let n = self.binds.len();
        self.push(format_args!("${n}"))
    }

    #[cfg(test)]
    fn sql(&self) -> &str {
        &self.sql
    }

    /// The query, ready to execute (build the text first: later pushes are not seen).
    pub fn query<DB>(&self) -> Query<'_, DB, DB::Arguments<'_>>
    where
        DB: Dialect,
        for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
        for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
        for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
        for<'q> i32: Encode<'q, DB> + Type<DB>,
        for<'q> bool: Encode<'q, DB> + Type<DB>,
        for<'q> NaiveDateTime: Encode<'q, DB> + Type<DB>,
    {
        let sql = self
            .dialect_sql
            .get_or_init(|| DB::sql(&self.sql).into_owned());
        let mut query = sqlx::query::<DB>(sql);
        for bind in &self.binds {
            query = match bind.clone() {
                Bind::Text(v) => query.bind(v),
                Bind::Integer(v) => query.bind(v),
                Bind::Int32(v) => query.bind(v),
                Bind::Bool(v) => query.bind(v),
                Bind::Time(v) => query.bind(v),
            };
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order() {
        let mut b = SqlBuilder::new("SELECT 1 WHERE a = ");
        b.push_bind("x")
            .push(" AND b IN (")
            .push_bind(1i64)
            .push(", ")
            .push_bind(2i64)
            .push(")");
        assert_eq!(b.sql(), "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
    }
}
