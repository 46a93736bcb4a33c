//! The database as a logical dump, the same whatever the engine: what `onebox backup` stores
//! and `onebox restore` loads, so that a SQLite dump loads into MariaDB and the reverse.
//!
//! The dump is JSON lines:
//!
//! ```text
//! {"format":"onebox-dump 1","migrations":["m20261126_000001_initial", ...]}
//! {"table":"users","columns":[["id","integer"],["email","text"],["created_at","datetime"],...]}
//! [1,"ada@foobar.com","2026-12-05 03:25:00.123456"]
//! {"rows":1}
//! {"table":"posts",...}
//! ...
//! ```
//!
//! Every table but SeaORM's own bookkeeping (`seaql_migrations`, whose names are the first
//! line) and what only the running boxes need — their leases (`onebox_leases`) and the http-01
//! answers of an ACME order under way (`acme_challenges`) — in a fixed order (the known tables
//! parents first, then any other alphabetically),
//! rows in primary-key order. Values are typed by their column's kind, not the engine's type:
//! integers and reals as JSON numbers, text as strings, date-times as
//! `YYYY-MM-DD HH:MM:SS[.fraction]` (UTC, as stored), blobs as base 64.
//!
//! **One snapshot.** On MySQL/MariaDB every table is read in one `REPEATABLE READ` read-only
//! transaction (InnoDB's consistent read: writers go on meanwhile). On SQLite the file is
//! first copied with `VACUUM INTO` (one read transaction for as long as the copy takes, the
//! only time writers may wait), and the dump is read from the copy.
//!
//! [`load`] inserts a dump in one transaction, foreign keys checked at the end (SQLite) or
//! not at all (MySQL: the rows come from a consistent database), into a database whose
//! schema is at the dump's migrations ([`Db::migrate_to`]).

use std::io::{BufRead, Write};
use std::path::Path;

use chrono::NaiveDateTime;
use data_encoding::BASE64;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SimpleExpr, Value as SqlValue};
use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseTransaction, DbBackend,
    IsolationLevel, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{Db, DbError};

/// The first line's `format`.
const FORMAT: &str = "onebox-dump 1";

/// SeaORM's table of applied migrations: not dumped (the first line has its names).
const MIGRATIONS_TABLE: &str = "seaql_migrations";

/// The tables onebox's schema has, parents before the tables that refer to them. A table not
/// listed (added by a later migration) comes after these, alphabetically.
const KNOWN_TABLES: &[&str] = &["users", "settings", "posts", "images", "sessions"];

/// Whether `table` is left out of dumps (and of a restore's emptiness check): SeaORM's
/// bookkeeping, and what only the running boxes need. ACME's account and certificates
/// (`acme_store`) are in: a restored box serves its certificate at once, without ordering one
/// (the archive's `state/acme/` holds the same secrets for `web.acme.storage = "files"`).
fn left_out(table: &str) -> bool {
    table == MIGRATIONS_TABLE
        || table == super::leases::TABLE
        || table == super::acme::CHALLENGES_TABLE
}

/// Rows read per query while dumping.
const PAGE: u64 = 1000;

/// Rows and bytes per `INSERT` while loading (SQLite's limit on bound values, MySQL's
/// `max_allowed_packet`).
const BATCH_ROWS: usize = 500;
const BATCH_VALUES: usize = 30_000;
const BATCH_BYTES: usize = 4 << 20;

/// How a column's values are written in the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Any integer type (and booleans stored as integers).
    Integer,
    /// Floating-point and decimal types.
    Real,
    /// Character types.
    Text,
    /// `DATETIME` / `TIMESTAMP` (SQLite: SeaORM's `datetime_text`).
    Datetime,
    /// Binary types.
    Blob,
}

impl Kind {
    /// The kind of a column declared as `declared` (SQLite's declared type, MySQL's
    /// `DATA_TYPE`).
    fn of(declared: &str) -> Self {
        let t = declared.to_ascii_lowercase();
        if t.contains("datetime") || t.contains("timestamp") {
            Self::Datetime
        } else if t.contains("int") || t.starts_with("bool") {
            Self::Integer
        } else if t.contains("char") || t.contains("text") || t.contains("clob") {
            Self::Text
        } else if t.contains("blob") || t.contains("binary") {
            Self::Blob
        } else if ["real", "floa", "doub", "dec", "numeric"]
            .iter()
            .any(|k| t.contains(k))
        {
            Self::Real
        } else {
            Self::Text
        }
    }
}

/// The first line of a dump.
#[derive(Debug, Serialize, Deserialize)]
struct Head {
    format: String,
    migrations: Vec<String>,
}

/// The line before a table's rows.
#[derive(Debug, Serialize, Deserialize)]
struct TableHead {
    table: String,
    columns: Vec<(String, Kind)>,
}

/// The line after a table's rows.
#[derive(Debug, Serialize, Deserialize)]
struct TableEnd {
    rows: u64,
}

/// One table: its columns and primary key.
#[derive(Debug, Clone)]
struct Table {
    name: String,
    columns: Vec<(String, Kind)>,
    primary_key: Vec<String>,
}

/// What a dump holds.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The migrations applied to the database dumped (its schema), oldest first.
    pub migrations: Vec<String>,
    /// Each table and its number of rows, in dump order.
    pub tables: Vec<(String, u64)>,
}

impl Summary {
    /// Rows in every table.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// Every migration this binary knows, oldest first: the newest schema it can serve.
pub fn known_migrations() -> Vec<String> {
    use migration::MigratorTrait;
    migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// Writes a consistent dump of `db` to `out`. `scratch` is a directory for SQLite's copy
/// (removed again before this returns).
pub async fn dump(
    db: &Db,
    scratch: &Path,
    out: &mut (dyn Write + Send),
) -> Result<Summary, DbError> {
    if db.backend() != DbBackend::Sqlite {
        let snapshot = db
            .conn()
            .begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?;
        let summary = dump_from(&snapshot, out).await;
        snapshot.rollback().await?;
        return summary;
    }
    let copy = scratch.join(format!(".onebox-dump-{}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&copy);
    let removed = Removed(&copy);
    let path = copy
        .to_str()
        .ok_or_else(|| DbError::Dump(format!("{}: not a UTF-8 path", scratch.display())))?;
    db.conn()
        .execute_unprepared(&format!("VACUUM INTO '{}'", path.replace('\'', "''")))
        .await?;
    let mut options = ConnectOptions::new(format!("sqlite://{path}?mode=ro"));
    options.max_connections(1).sqlx_logging(false);
    let conn = Database::connect(options).await?;
    let snapshot = conn.begin().await?;
    let summary = dump_from(&snapshot, out).await;
    snapshot.rollback().await?;
    conn.close().await?;
    drop(removed);
    summary
}

/// Removes a file when dropped.
struct Removed<'a>(&'a Path);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

fn io(error: std::io::Error) -> DbError {
    DbError::Dump(format!("cannot write the dump: {error}"))
}

fn line(out: &mut (dyn Write + Send), value: &impl Serialize) -> Result<(), DbError> {
    serde_json::to_writer(&mut *out, value)
        .map_err(|e| DbError::Dump(format!("cannot write the dump: {e}")))?;
    out.write_all(b"\n").map_err(io)
}

async fn dump_from(
    txn: &DatabaseTransaction,
    out: &mut (dyn Write + Send),
) -> Result<Summary, DbError> {
    let migrations = applied(txn).await?;
    line(
        out,
        &Head {
            format: FORMAT.to_owned(),
            migrations: migrations.clone(),
        },
    )?;
    let mut summary = Summary {
        migrations,
        tables: Vec::new(),
    };
    for table in tables(txn).await? {
        line(
            out,
            &TableHead {
                table: table.name.clone(),
                columns: table.columns.clone(),
            },
        )?;
        let rows = dump_table(txn, &table, out).await?;
        line(out, &TableEnd { rows })?;
        summary.tables.push((table.name, rows));
    }
    Ok(summary)
}

/// The migrations applied, oldest first (none if SeaORM's table does not exist yet).
pub(super) async fn applied(conn: &impl ConnectionTrait) -> Result<Vec<String>, DbError> {
    let exists = table_names(conn)
        .await?
        .iter()
        .any(|t| t == MIGRATIONS_TABLE);
    if !exists {
        return Ok(Vec::new());
    }
    let query = Query::select()
        .column(Alias::new("version"))
        .from(Alias::new(MIGRATIONS_TABLE))
        .order_by(Alias::new("version"), Order::Asc)
        .to_owned();
    let rows = conn.query_all(&query).await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).map_err(DbError::from))
        .collect()
}

/// Every table's name (SeaORM's included).
async fn table_names(conn: &impl ConnectionTrait) -> Result<Vec<String>, DbError> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        _ => {
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
        }
    };
    let rows = conn
        .query_all_raw(Statement::from_string(backend, sql))
        .await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).map_err(DbError::from))
        .collect()
}

/// The tables to dump (all but SeaORM's), in dump order, with their columns.
async fn tables(conn: &impl ConnectionTrait) -> Result<Vec<Table>, DbError> {
    let mut names: Vec<String> = table_names(conn)
        .await?
        .into_iter()
        .filter(|t| !left_out(t))
        .collect();
    names.sort_by_key(|name| {
        let known = KNOWN_TABLES.iter().position(|k| k == name);
        (known.unwrap_or(KNOWN_TABLES.len()), name.clone())
    });
    let mut tables = Vec::new();
    for name in names {
        tables.push(describe(conn, &name).await?);
    }
    Ok(tables)
}

/// A table's columns (in order) and primary key.
async fn describe(conn: &impl ConnectionTrait, name: &str) -> Result<Table, DbError> {
    let backend = conn.get_database_backend();
    let statement = match backend {
        DbBackend::Sqlite => Statement::from_sql_and_values(
            backend,
            "SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid",
            [name.into()],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), \
             CAST(IF(COLUMN_KEY = 'PRI', 1, 0) AS SIGNED) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            [name.into()],
        ),
    };
    let mut table = Table {
        name: name.to_owned(),
        columns: Vec::new(),
        primary_key: Vec::new(),
    };
    let mut keys = Vec::new();
    for row in conn.query_all_raw(statement).await? {
        let column: String = row.try_get_by_index(0)?;
        let declared: String = row.try_get_by_index(1)?;
        let pk: i64 = row.try_get_by_index(2)?;
        if pk > 0 {
            keys.push((pk, column.clone()));
        }
        table.columns.push((column, Kind::of(&declared)));
    }
    keys.sort();
    table.primary_key = keys.into_iter().map(|(_, c)| c).collect();
    if table.columns.is_empty() {
        return Err(DbError::Dump(format!("table {name}: no columns found")));
    }
    Ok(table)
}

/// Writes every row of `table`, in primary-key order; returns how many.
async fn dump_table(
    conn: &impl ConnectionTrait,
    table: &Table,
    out: &mut (dyn Write + Send),
) -> Result<u64, DbError> {
    let single_key = match table.primary_key.as_slice() {
        [key] => table.columns.iter().position(|(c, _)| c == key),
        _ => None,
    };
    let order: Vec<String> = if table.primary_key.is_empty() {
        table.columns.iter().map(|(c, _)| c.clone()).collect()
    } else {
        table.primary_key.clone()
    };
    let mut count = 0u64;
    let mut after: Option<SqlValue> = None;
    loop {
        let mut query = Query::select();
        query
            .columns(table.columns.iter().map(|(c, _)| Alias::new(c)))
            .from(Alias::new(&table.name))
            .limit(PAGE);
        for column in &order {
            query.order_by(Alias::new(column), Order::Asc);
        }
        match (single_key, &after) {
            // Keyset pagination on a one-column key: each page is an index range.
            (Some(index), Some(last)) => {
                query.and_where(Expr::col(Alias::new(&table.columns[index].0)).gt(last.clone()));
            }
            (Some(_), None) => {}
            (None, _) => {
                query.offset(count);
            }
        }
        let rows = conn.query_all(&query).await?;
        let fetched = rows.len() as u64;
        for row in &rows {
            let mut values = Vec::with_capacity(table.columns.len());
            for (index, (_, kind)) in table.columns.iter().enumerate() {
                values.push(read(row, index, *kind)?);
            }
            if let Some(index) = single_key {
                after = Some(
                    sql_value(&values[index], table.columns[index].1)
                        .map_err(|why| DbError::Dump(format!("table {}: {why}", table.name)))?,
                );
            }
            line(out, &values)?;
        }
        count += fetched;
        if fetched < PAGE {
            return Ok(count);
        }
    }
}

/// The value of column `index` of `row` as the dump writes it.
fn read(row: &sea_orm::QueryResult, index: usize, kind: Kind) -> Result<Json, DbError> {
    Ok(match kind {
        Kind::Integer => row
            .try_get_by_index::<Option<i64>>(index)?
            .map_or(Json::Null, Json::from),
        Kind::Real => row
            .try_get_by_index::<Option<f64>>(index)?
            .map_or(Json::Null, Json::from),
        Kind::Text => row
            .try_get_by_index::<Option<String>>(index)?
            .map_or(Json::Null, Json::from),
        Kind::Datetime => row
            .try_get_by_index::<Option<NaiveDateTime>>(index)?
            .map_or(Json::Null, |t| {
                Json::from(t.format("%Y-%m-%d %H:%M:%S%.f").to_string())
            }),
        Kind::Blob => row
            .try_get_by_index::<Option<Vec<u8>>>(index)?
            .map_or(Json::Null, |b| Json::from(BASE64.encode(&b))),
    })
}

/// A dumped value as the value bound in an `INSERT`.
fn sql_value(value: &Json, kind: Kind) -> Result<SqlValue, String> {
    let wrong = || format!("{value} is not a {kind:?} value");
    Ok(match (kind, value) {
        (Kind::Integer, Json::Null) => SqlValue::BigInt(None),
        (Kind::Real, Json::Null) => SqlValue::Double(None),
        (Kind::Text, Json::Null) => SqlValue::String(None),
        (Kind::Datetime, Json::Null) => SqlValue::ChronoDateTime(None),
        (Kind::Blob, Json::Null) => SqlValue::Bytes(None),
        (Kind::Integer, Json::Number(n)) => SqlValue::BigInt(Some(n.as_i64().ok_or_else(wrong)?)),
        (Kind::Real, Json::Number(n)) => SqlValue::Double(Some(n.as_f64().ok_or_else(wrong)?)),
        (Kind::Text, Json::String(s)) => SqlValue::String(Some(s.clone())),
        (Kind::Datetime, Json::String(s)) => SqlValue::ChronoDateTime(Some(
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map_err(|_| wrong())?,
        )),
        (Kind::Blob, Json::String(s)) => {
            SqlValue::Bytes(Some(BASE64.decode(s.as_bytes()).map_err(|_| wrong())?))
        }
        _ => return Err(wrong()),
    })
}

/// How many rows each table a dump holds has: empty means a fresh database.
pub async fn row_counts(db: &Db) -> Result<Vec<(String, u64)>, DbError> {
    let conn = db.conn();
    let mut counts = Vec::new();
    for name in table_names(conn).await? {
        if left_out(&name) {
            continue;
        }
        let query = Query::select()
            .expr(Expr::cust("COUNT(*)"))
            .from(Alias::new(&name))
            .to_owned();
        let count = match conn.query_one(&query).await? {
            Some(row) => row.try_get_by_index::<i64>(0)?,
            None => 0,
        };
        counts.push((name, u64::try_from(count).unwrap_or(0)));
    }
    Ok(counts)
}

/// Reads the first line of a dump: the migrations of the database it was taken from.
pub fn read_head(input: &mut dyn BufRead) -> Result<Vec<String>, DbError> {
    let mut first = String::new();
    input
        .read_line(&mut first)
        .map_err(|e| DbError::Dump(format!("cannot read the dump: {e}")))?;
    let head: Head = serde_json::from_str(&first)
        .map_err(|e| DbError::Dump(format!("line 1: not a onebox dump: {e}")))?;
    if head.format != FORMAT {
        return Err(DbError::Dump(format!(
            "line 1: format {:?}, this onebox reads {FORMAT:?}",
            head.format
        )));
    }
    Ok(head.migrations)
}

/// Loads the rest of a dump (after [`read_head`]) into `db`, in one transaction. With
/// `replace`, every row already there is deleted first (in the same transaction); without, the
/// tables must be empty (the caller checked).
pub async fn load(db: &Db, input: &mut dyn BufRead, replace: bool) -> Result<Summary, DbError> {
    let txn = db.conn().begin().await?;
    let backend = db.backend();
    let checks_off = match backend {
        DbBackend::Sqlite => "PRAGMA defer_foreign_keys = ON",
        _ => "SET FOREIGN_KEY_CHECKS = 0",
    };
    txn.execute_unprepared(checks_off).await?;
    let loaded = load_in(&txn, input, replace).await;
    if backend != DbBackend::Sqlite {
        txn.execute_unprepared("SET FOREIGN_KEY_CHECKS = 1").await?;
    }
    let summary = loaded?;
    txn.commit().await?;
    Ok(summary)
}

async fn load_in(
    txn: &DatabaseTransaction,
    input: &mut dyn BufRead,
    replace: bool,
) -> Result<Summary, DbError> {
    let existing = tables(txn).await?;
    if replace {
        // Children first: SQLite's RESTRICT is immediate even with deferred foreign keys.
        for table in existing.iter().rev() {
            let delete = Query::delete()
                .from_table(Alias::new(&table.name))
                .to_owned();
            txn.execute(&delete).await?;
        }
    }
    let mut summary = Summary::default();
    let mut current: Option<(TableHead, Batch)> = None;
    let mut text = String::new();
    let mut number = 1usize;
    loop {
        text.clear();
        number += 1;
        let read = input
            .read_line(&mut text)
            .map_err(|e| DbError::Dump(format!("line {number}: cannot read: {e}")))?;
        if read == 0 {
            break;
        }
        let at = |why: String| DbError::Dump(format!("line {number}: {why}"));
        let value: Json = serde_json::from_str(&text).map_err(|e| at(e.to_string()))?;
        match (value, &mut current) {
            (Json::Array(values), Some((head, batch))) => {
                if values.len() != head.columns.len() {
                    return Err(at(format!(
                        "{} values for the {} columns of {}",
                        values.len(),
                        head.columns.len(),
                        head.table
                    )));
                }
                let row = values
                    .iter()
                    .zip(&head.columns)
                    .map(|(v, (_, kind))| sql_value(v, *kind).map(SimpleExpr::from))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|why| at(format!("table {}: {why}", head.table)))?;
                batch.push(row, text.len());
                if batch.full() {
                    batch.flush(txn, head).await?;
                }
            }
            (Json::Object(object), _) if object.contains_key("table") => {
                if current.is_some() {
                    return Err(at("a table begins before the previous one ended".to_owned()));
                }
                let head: TableHead =
                    serde_json::from_value(Json::Object(object)).map_err(|e| at(e.to_string()))?;
                check_columns(&existing, &head).map_err(at)?;
                let batch = Batch::new(head.columns.len());
                current = Some((head, batch));
            }
            (Json::Object(object), Some(_)) if object.contains_key("rows") => {
                let end: TableEnd =
                    serde_json::from_value(Json::Object(object)).map_err(|e| at(e.to_string()))?;
                let Some((head, mut batch)) = current.take() else {
                    unreachable!("matched Some above")
                };
                batch.flush(txn, &head).await?;
                if batch.total != end.rows {
                    return Err(at(format!(
                        "table {}: {} rows read, the dump says {}",
                        head.table, batch.total, end.rows
                    )));
                }
                summary.tables.push((head.table, end.rows));
            }
            (other, _) => {
                return Err(at(format!("unexpected {}", truncated(&other.to_string()))));
            }
        }
    }
    if let Some((head, _)) = current {
        return Err(DbError::Dump(format!(
            "the dump ends inside table {}: truncated",
            head.table
        )));
    }
    Ok(summary)
}

fn truncated(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

/// The dumped table must exist here with every dumped column.
fn check_columns(existing: &[Table], head: &TableHead) -> Result<(), String> {
    let Some(table) = existing.iter().find(|t| t.name == head.table) else {
        return Err(format!(
            "table {} is not in this database's schema",
            head.table
        ));
    };
    for (column, _) in &head.columns {
        if !table.columns.iter().any(|(c, _)| c == column) {
            return Err(format!(
                "column {}.{column} is not in this database's schema",
                head.table
            ));
        }
    }
    Ok(())
}

/// Rows waiting to be inserted with one statement.
struct Batch {
    rows: Vec<Vec<SimpleExpr>>,
    bytes: usize,
    max_rows: usize,
    total: u64,
}

impl Batch {
    fn new(columns: usize) -> Self {
        Self {
            rows: Vec::new(),
            bytes: 0,
            max_rows: BATCH_ROWS.min(BATCH_VALUES / columns.max(1)).max(1),
            total: 0,
        }
    }

    fn push(&mut self, row: Vec<SimpleExpr>, bytes: usize) {
        self.rows.push(row);
        self.bytes += bytes;
    }

    fn full(&self) -> bool {
        self.rows.len() >= self.max_rows || self.bytes >= BATCH_BYTES
    }

    async fn flush(&mut self, txn: &DatabaseTransaction, head: &TableHead) -> Result<(), DbError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = self.rows.len() as u64;
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new(&head.table))
            .columns(head.columns.iter().map(|(c, _)| Alias::new(c)));
        for row in self.rows.drain(..) {
            insert
                .values(row)
                .map_err(|e| DbError::Dump(format!("table {}: {e}", head.table)))?;
        }
        txn.execute(&insert).await?;
        self.total += rows;
        self.bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_declared_types() {
        for (declared, kind) in [
            ("datetime_text", Kind::Datetime),
            ("datetime", Kind::Datetime),
            ("bigint", Kind::Integer),
            ("integer", Kind::Integer),
            ("varchar(254)", Kind::Text),
            ("text", Kind::Text),
            ("longtext", Kind::Text),
            ("blob", Kind::Blob),
            ("double", Kind::Real),
        ] {
            assert_eq!(Kind::of(declared), kind, "{declared}");
        }
    }

    #[tokio::test]
    async fn acmes_certificates_are_dumped_and_its_pending_answers_are_not() {
        let (dir, db) = crate::db::migrated().await;
        let key = b"-----BEGIN PRIVATE KEY-----\n\x00\xff";
        super::super::acme::save(&db, "certs/ca/www.foobar.com/key.pem", key)
            .await
            .expect("save");
        let later = super::super::now_ms() + 60_000;
        super::super::acme::publish_answer(&db, "tok", "tok.print", later)
            .await
            .expect("publish");
        let mut out = Vec::new();
        let summary = dump(&db, dir.path(), &mut out).await.expect("dump");
        let tables: Vec<&str> = summary.tables.iter().map(|(t, _)| t.as_str()).collect();
        assert!(tables.contains(&"acme_store"), "{tables:?}");
        assert!(!tables.contains(&"acme_challenges"), "{tables:?}");
        assert!(!tables.contains(&"onebox_leases"), "{tables:?}");
        // A pending answer alone does not make a database occupied for a restore.
        let counts = row_counts(&db).await.expect("counts");
        assert!(
            counts.iter().all(|(t, _)| t != "acme_challenges"),
            "{counts:?}"
        );

        let (_other, target) = crate::db::migrated().await;
        let mut input = std::io::BufReader::new(&out[..]);
        read_head(&mut input).expect("head");
        load(&target, &mut input, false).await.expect("load");
        assert_eq!(
            super::super::acme::load(&target, "certs/ca/www.foobar.com/key.pem")
                .await
                .expect("load")
                .as_deref(),
            Some(&key[..]),
            "the restored database has the key, byte for byte"
        );
    }

    #[test]
    fn values_round_trip_through_their_kind() {
        let t = NaiveDateTime::parse_from_str("2026-12-05 03:25:00.123456", "%Y-%m-%d %H:%M:%S%.f")
            .expect("parse");
        assert_eq!(
            sql_value(&Json::from("2026-12-05 03:25:00.123456"), Kind::Datetime),
            Ok(SqlValue::ChronoDateTime(Some(t)))
        );
        assert_eq!(
            sql_value(&Json::from("2026-12-05 03:25:00"), Kind::Datetime).map(|_| ()),
            Ok(())
        );
        assert!(sql_value(&Json::from("yesterday"), Kind::Datetime).is_err());
        assert!(sql_value(&Json::from(1), Kind::Text).is_err());
        assert_eq!(
            sql_value(&Json::from("AAE="), Kind::Blob),
            Ok(SqlValue::Bytes(Some(vec![0, 1])))
        );
    }
}
