//! The one shape of the store's list queries: optional equality filters, newest first, a
//! limit. Only the filters in use appear in the SQL, so SQLite can pick the matching index.

use rusqlite::types::Value;
use rusqlite::{Connection, Row};

use super::StoreError;

/// `SELECT <columns> FROM <table> [WHERE a = ?1 AND …] ORDER BY … LIMIT ?n`, built from the
/// filters that are set.
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    conditions: Vec<String>,
    args: Vec<Value>,
}

impl ListQuery {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// `column = ?n` when the filter is set.
    pub(crate) fn eq(mut self, column: &str, value: Option<&str>) -> Self {
        if let Some(value) = value {
            self.args.push(value.to_string().into());
            self.conditions
                .push(format!("{column} = ?{}", self.args.len()));
        }
        self
    }

    /// Runs the query and maps each row.
    pub(crate) fn run<T>(
        self,
        conn: &Connection,
        select_from: &str,
        order_by: &str,
        limit: u32,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let (sql, args) = self.build(select_from, order_by, limit);
        Ok(conn
            .prepare_cached(&sql)?
            .query_map(rusqlite::params_from_iter(args.iter()), map)?
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// The query plan [`ListQuery::run`] would follow (tests pin the indexes lists use).
    #[cfg(test)]
    pub(crate) fn plan(self, conn: &Connection, select_from: &str, order_by: &str) -> String {
        let (sql, args) = self.build(select_from, order_by, 20);
        super::testing::query_plan(conn, &sql, rusqlite::params_from_iter(args.iter()))
    }

    fn build(mut self, select_from: &str, order_by: &str, limit: u32) -> (String, Vec<Value>) {
        let where_clause = if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        };
        self.args.push(i64::from(limit).into());
        let sql = format!(
            "{select_from} {where_clause} ORDER BY {order_by} LIMIT ?{}",
            self.args.len()
        );
        (sql, self.args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_filters_in_use_narrow_the_list() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (n INTEGER, cli TEXT, status TEXT);
             INSERT INTO t VALUES (1, 'claude', 'done'), (2, 'codex', 'done'),
                                  (3, 'claude', 'queued'), (4, 'claude', 'done');",
        )
        .unwrap();
        let list = |cli: Option<&str>, status: Option<&str>, limit: u32| -> Vec<i64> {
            ListQuery::new()
                .eq("cli", cli)
                .eq("status", status)
                .run(&conn, "SELECT n FROM t", "n DESC", limit, |row| row.get(0))
                .unwrap()
        };
        assert_eq!(list(None, None, 10), [4, 3, 2, 1]);
        assert_eq!(list(None, None, 2), [4, 3]);
        assert_eq!(list(Some("claude"), None, 10), [4, 3, 1]);
        assert_eq!(list(None, Some("done"), 10), [4, 2, 1]);
        assert_eq!(list(Some("claude"), Some("done"), 1), [4]);
    }
}
