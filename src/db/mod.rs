//! The data layer: one connection pool, one code path for MySQL/MariaDB and SQLite.
//!
//! - [`Db`] is a cheap handle on the pool (clone it freely). [`Db::connect`] never waits for
//!   the server: the pool connects lazily, so onebox starts (and serves DNS and files) while
//!   the database is down, and recovers by itself when it comes back;
//! - the schema is the `migration` crate (`db/` in the repository), applied by
//!   [`Db::migrate_up`] / [`Db::migrate_down`] and listed by [`Db::migrations`]. Several
//!   boxes may share one database and start at once: migrations are applied under a lease
//!   ([`leases`]), so exactly one box applies them while the others wait. During a rolling
//!   upgrade the boxes not yet upgraded serve a schema one migration or more ahead of their
//!   own: [`Db::migrations`] accepts migrations it does not know when they are all newer than
//!   its own (every migration keeps the schema usable by the release before it: `db/`'s
//!   README), and refuses any other unknown one;
//! - [`entity`] holds the tables as SeaORM entities; the queries of each aggregate live in a
//!   file of their own ([`posts`], [`images`], ...);
//! - [`acme`] keeps ACME's account and certificates and its pending http-01 answers for
//!   `web.acme.storage = "database"` (the ACME client's rules stay in `acme`, which uses this);
//! - [`dump`] writes the whole database as an engine-independent dump from one consistent
//!   snapshot, and loads one (`onebox backup` / `onebox restore`).
//!
//! The data layer knows nothing of HTTP or of business rules: it stores and fetches.

pub mod acme;
pub mod dump;
pub mod entity;
pub mod images;
pub mod leases;
pub mod posts;
pub mod sessions;
pub mod settings;
pub mod shared;
pub mod users;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::Values;
use sea_orm::sqlx::{self, AssertSqlSafe};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, ExecResult,
    QueryResult, Statement,
};
use sea_query_sqlx::SqlxValues;

use crate::config::Config;

/// A database operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `database.url` is not a URL onebox can use.
    #[error("key database.url: {0}")]
    Url(String),
    /// The SQLite file's directory could not be created.
    #[error("key state_dir: cannot create {path}")]
    StateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database server could not be reached, and why (its own answer: refused, unknown
    /// host, access denied, ...).
    #[error("cannot connect to {url}")]
    Unreachable {
        /// The database's URL, without its password.
        url: String,
        /// The driver's error for a connection made directly (not through the pool, which
        /// retries a refused connection until its timeout and then says only that it timed
        /// out).
        source: sea_orm::sqlx::Error,
    },
    /// The database server did not answer a connection attempt in time.
    #[error(
        "no answer from {url} within {after:?} (a firewall dropping packets, or the host is down)"
    )]
    NoAnswer {
        /// The database's URL, without its password.
        url: String,
        /// How long onebox waited (`database.acquire_timeout`).
        after: Duration,
    },
    /// The database failed or could not be reached.
    #[error("database")]
    Db(#[from] DbErr),
    /// A dump could not be written or read (`dump`): what, and where.
    #[error("database dump: {0}")]
    Dump(String),
    /// Another onebox sharing the database holds the migrations' lease: it is applying them.
    #[error("another onebox ({holder}) is applying the migrations; waiting for it")]
    Migrating {
        /// The lease's holder (`host:pid:random`).
        holder: String,
    },
    /// The database's schema is not one this binary can serve or change: migrations it does
    /// not know among its own, or its own missing under newer ones (see [`Db::migrations`]);
    /// or a change asked of it (down, a restore) under migrations newer than its own.
    #[error("the database's schema: {0}")]
    Schema(String),
}

impl DbError {
    /// Whether the database could not be reached (down, restarting, connection lost, pool
    /// exhausted) rather than refusing the query: a condition to retry later, not a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Db(error) => unreachable(error),
            Self::Unreachable { .. } | Self::NoAnswer { .. } | Self::Migrating { .. } => true,
            Self::Url(_) | Self::StateDir { .. } | Self::Dump(_) | Self::Schema(_) => false,
        }
    }
}

/// See [`DbError::is_unavailable`].
pub fn unreachable(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(error)) | DbErr::Exec(RuntimeErr::SqlxError(error)) => {
            matches!(
                error.as_ref(),
                Sqlx::Io(_)
                    | Sqlx::Tls(_)
                    | Sqlx::PoolTimedOut
                    | Sqlx::PoolClosed
                    | Sqlx::WorkerCrashed
            ) || refused_for_now(error)
        }
        _ => false,
    }
}

/// Whether the server answered with an error of SQLSTATE class 08, "connection exception":
/// it took the connection but will not run statements on it now — MariaDB shutting down
/// (1053), a Galera node that left the cluster or has not yet caught up with it (1047,
/// "WSREP has not yet prepared node for application use"), too many connections (1040). The
/// query was not wrong; the database is, for a while, unavailable.
fn refused_for_now(error: &sea_orm::sqlx::Error) -> bool {
    match error {
        sea_orm::sqlx::Error::Database(error) => {
            error.code().is_some_and(|code| code.starts_with("08"))
        }
        _ => false,
    }
}

/// Whether `error` says the connection itself failed (closed by the server, reset, broken)
/// while the statement was under way, as opposed to the server refusing the statement or the
/// pool having no connection to give.
fn lost_connection(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    match error {
        DbErr::Conn(RuntimeErr::SqlxError(error))
        | DbErr::Query(RuntimeErr::SqlxError(error))
        | DbErr::Exec(RuntimeErr::SqlxError(error)) => {
            matches!(
                error.as_ref(),
                Sqlx::Io(_) | Sqlx::Tls(_) | Sqlx::Protocol(_)
            )
        }
        _ => false,
    }
}

/// Whether `error` is the server refusing a statement for now on its connection (see
/// [`refused_for_now`]): the statement did not run.
fn refused(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    match error {
        DbErr::Query(RuntimeErr::SqlxError(error)) | DbErr::Exec(RuntimeErr::SqlxError(error)) => {
            refused_for_now(error)
        }
        _ => false,
    }
}

/// Where a statement runs: on a connection from the pool, or on one opened for it and closed
/// after (a read sent again after its server refused it on a pooled connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Pool,
    New,
}

/// How long a connection stays in [`Hot`] unused before it goes back to sqlx's pool.
const HOT_FOR: Duration = Duration::from_secs(1);

/// The connections between two statements, kept out of sqlx's pool. sqlx pings every
/// connection handed back to its pool (a round trip to the server and a task per statement,
/// with no setting to turn it off), and pings again before lending one that sat idle
/// (`test_before_acquire_if_idle_for`). A connection that has just run a statement to its end
/// needs neither: it goes here instead, and the next statement takes the most recently used
/// one, without a round trip or a task.
///
/// Only connections used within [`HOT_FOR`] are lent from here; older ones go back to sqlx's
/// pool (which pings them on the way in, closes dead ones, reaps idle ones), as does any
/// connection whose statement did not end cleanly (an I/O or protocol error, or a request
/// dropped mid-statement: [`Lent`]). A connection that dies within [`HOT_FOR`] of its last
/// statement fails the next one: reads are sent again ([`Reads`]).
///
/// Statements take turns for connections on a semaphore of their own, first come first served
/// (a connection put back here goes to the next in line, without passing through sqlx's pool),
/// and hold at most `database.max_connections` − 1 at once: sqlx's pool always has one more
/// for those who take connections from it themselves (transactions, migrations, [`Db::conn`]),
/// who also empty this first ([`Db::cool`]).
struct Hot<D: sqlx::Database> {
    idle: std::sync::Mutex<Vec<(sqlx::pool::PoolConnection<D>, Instant)>>,
}

impl<D: sqlx::Database> Default for Hot<D> {
    fn default() -> Self {
        Self {
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl<D: sqlx::Database> std::fmt::Debug for Hot<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hot").field("idle", &self.len()).finish()
    }
}

impl<D: sqlx::Database> Hot<D> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(sqlx::pool::PoolConnection<D>, Instant)>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most recently used connection, if it was used within [`HOT_FOR`]; those unused
    /// longer go back to sqlx's pool.
    fn take(&self) -> Option<sqlx::pool::PoolConnection<D>> {
        let now = Instant::now();
        let (fresh, stale) = {
            let mut idle = self.lock();
            // Oldest first: in the order they came back.
            let stale = idle
                .iter()
                .take_while(|(_, since)| now.duration_since(*since) >= HOT_FOR)
                .count();
            let stale: Vec<_> = idle.drain(..stale).collect();
            (idle.pop(), stale)
        };
        drop(stale); // outside the lock: each goes back to sqlx's pool
        fresh.map(|(conn, _)| conn)
    }

    fn put(&self, conn: sqlx::pool::PoolConnection<D>) {
        self.lock().push((conn, Instant::now()));
    }

    /// Every connection back to sqlx's pool.
    fn clear(&self) {
        let all = std::mem::take(&mut *self.lock());
        drop(all);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl<D: sqlx::Database> Drop for Hot<D> {
    fn drop(&mut self) {
        // sqlx hands a connection back to its pool on a task of the runtime, and panics without
        // one. Dropped after the runtime (the process is ending), the connections are left to
        // the operating system to close.
        if tokio::runtime::Handle::try_current().is_err() {
            std::mem::forget(std::mem::take(&mut *self.lock()));
        }
    }
}

/// A connection of the pool lent for one statement. Dropped, it goes to [`Hot`] if the
/// statement ended cleanly ([`Lent::done`]), else back to sqlx's pool; then the next statement
/// waiting gets its turn.
struct Pooled<'a, D: sqlx::Database> {
    conn: Option<sqlx::pool::PoolConnection<D>>,
    hot: &'a Hot<D>,
    /// Dropped after the connection is put back (fields drop after `Drop::drop`).
    turn: Option<tokio::sync::SemaphorePermit<'a>>,
    /// The statement ran to its end, or the server refused it: the connection is in a known
    /// state.
    reusable: bool,
}

impl<D: sqlx::Database> Drop for Pooled<'_, D> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.reusable
            && self.turn.is_some()
        {
            self.hot.put(conn);
        }
    }
}

/// A connection lent for one statement ([`Db::lend`]).
enum Lent<'a, D: sea_orm::sqlx::Database> {
    Pooled(Pooled<'a, D>),
    New(D::Connection),
}

impl<D: sea_orm::sqlx::Database> std::ops::Deref for Lent<'_, D> {
    type Target = D::Connection;

    fn deref(&self) -> &D::Connection {
        match self {
            // Present until dropped.
            Self::Pooled(pooled) => pooled.conn.as_deref().expect("a lent connection"),
            Self::New(conn) => conn,
        }
    }
}

impl<D: sea_orm::sqlx::Database> std::ops::DerefMut for Lent<'_, D> {
    fn deref_mut(&mut self) -> &mut D::Connection {
        match self {
            Self::Pooled(pooled) => pooled.conn.as_deref_mut().expect("a lent connection"),
            Self::New(conn) => conn,
        }
    }
}

impl<D: sea_orm::sqlx::Database> Lent<'_, D> {
    /// Gives the connection back after its statement: kept for the next one ([`Hot`]) when
    /// the statement ran to its end or the server refused it as wrong; closed when the server
    /// refused it for now (that connection's server is leaving); back to sqlx's pool, which
    /// checks it, after anything else (an I/O or protocol error). One opened for the statement
    /// is closed.
    async fn done<T>(self, outcome: &Result<T, sea_orm::sqlx::Error>) {
        use sea_orm::sqlx::Connection;
        match self {
            Self::Pooled(mut pooled) => {
                let leaving = outcome.as_ref().err().is_some_and(refused_for_now);
                pooled.reusable = !leaving
                    && matches!(
                        outcome,
                        Ok(_) | Err(sqlx::Error::Database(_) | sqlx::Error::RowNotFound)
                    );
                if leaving && let Some(conn) = pooled.conn.as_mut() {
                    conn.close_on_drop();
                }
            }
            Self::New(conn) => {
                let _ = conn.close().await;
            }
        }
    }
}

/// The pool, for reads. The pool hands out a connection used within the last second without
/// pinging it first (`test_before_acquire_if_idle_for`: a round trip saved on every busy
/// request), so a connection the server has dropped since (a restart, `wait_timeout`, a
/// `KILL`) can reach a query. A read that fails that way is sent again on another connection:
/// sqlx checks every connection handed back to the pool and closes a dead one instead of
/// keeping it, so each attempt uses up one dead connection, and when the server dropped them
/// all at once, at most one attempt per pooled connection (`database.max_connections`) leads to
/// a fresh one. Usually the second attempt succeeds. Writes are never sent twice (the first may
/// have been applied): they go through [`Db::writes`].
///
/// A read the server refused for now on its connection (SQLSTATE class 08: a Galera node
/// leaving the cluster, a server shutting down) is sent once more on a connection opened for
/// it: the refusing one is closed rather than pooled again, and a new connection through a
/// balancer reaches a node that takes queries as soon as the balancer has moved.
#[derive(Debug, Clone, Copy)]
pub struct Reads<'a> {
    db: &'a Db,
    /// The most attempts per read.
    attempts: u32,
}

impl Reads<'_> {
    async fn again<'s, T, F, Fut>(&self, sql: &'s Statement, run: F) -> Result<T, DbErr>
    where
        F: Fn(&'s Statement, Via) -> Fut,
        Fut: std::future::Future<Output = Result<T, DbErr>>,
    {
        let mut attempt = 1;
        loop {
            match run(sql, Via::Pool).await {
                Err(error) if lost_connection(&error) && attempt < self.attempts => {
                    tracing::info!(
                        error = %error,
                        attempt,
                        "database: connection lost during a read; sending it again"
                    );
                    attempt += 1;
                }
                Err(error) if refused(&error) => {
                    tracing::info!(
                        error = %error,
                        "database: the server refused a read for now; sending it again on a new connection"
                    );
                    return run(sql, Via::New).await;
                }
                other => return other,
            }
        }
    }
}

#[sea_orm::prelude::async_trait::async_trait]
impl ConnectionTrait for Reads<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.db.backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.db.execute_statement(&stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.db.conn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.again(&stmt, |stmt, via| self.db.query_one_statement(stmt, via))
            .await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.again(&stmt, |stmt, via| self.db.query_all_statement(stmt, via))
            .await
    }

    fn support_returning(&self) -> bool {
        self.db.conn.support_returning()
    }
}

/// The pool, for writes: each statement sent once, on a connection from the pool (counted
/// while it waits for one, as reads are: [`PoolStats::waiting`]).
#[derive(Debug, Clone, Copy)]
pub struct Writes<'a> {
    db: &'a Db,
}

#[sea_orm::prelude::async_trait::async_trait]
impl ConnectionTrait for Writes<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.db.backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.db.execute_statement(&stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.db.conn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.db.query_one_statement(&stmt, Via::Pool).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.db.query_all_statement(&stmt, Via::Pool).await
    }

    fn support_returning(&self) -> bool {
        self.db.conn.support_returning()
    }
}

/// Counts one task waiting for a connection from the pool, for as long as it lives (a request
/// given up while it waits stops counting too).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A statement's bound values, as sqlx takes them.
fn values(stmt: &Statement) -> SqlxValues {
    SqlxValues(stmt.values.clone().unwrap_or(Values(Vec::new())))
}

/// The pool could not lend a connection (as SeaORM says it, so [`unreachable`] reads it alike).
fn acquire_error(error: sea_orm::sqlx::Error) -> DbErr {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{ConnAcquireErr, RuntimeErr};
    match error {
        Sqlx::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        Sqlx::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        other => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(other))),
    }
}

fn query_error(error: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Query(sea_orm::RuntimeErr::SqlxError(Arc::new(error)))
}

fn exec_error(error: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Exec(sea_orm::RuntimeErr::SqlxError(Arc::new(error)))
}

/// One migration of the schema and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's name (`m20261126_000001_initial`).
    pub name: String,
    /// Applied to this database.
    pub applied: bool,
    /// Not one of this binary's: applied by a newer onebox (always `applied`; see
    /// [`Db::migrations`]).
    pub newer: bool,
}

/// This binary's version, as messages about the schema name it.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// This binary's migrations (`ours`, oldest first) against the names the database has applied:
/// ours with their state, then the newer ones. Migration names begin with their date and a
/// sequence number (`m20261205_000003_...`), so that their order is their names' order (a unit
/// test holds the list to it).
///
/// Unknown names are accepted only when every one sorts after all of ours and all of ours are
/// applied: a newer onebox migrated the database (in a rolling upgrade, while this box waits
/// for its turn), and a migration never takes away what the release before it uses (`db/`'s
/// README). Any other unknown name (one older than our newest, or newer ones over a gap in
/// ours) means a build with a different history migrated the database: [`DbError::Schema`].
fn reconcile(
    ours: &[String],
    applied: &std::collections::BTreeSet<String>,
) -> Result<Vec<MigrationState>, DbError> {
    let newest = ours.iter().max().map_or("", String::as_str);
    let unknown: Vec<&String> = applied.iter().filter(|name| !ours.contains(name)).collect();
    let list = |names: &[&String]| {
        names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let older: Vec<&String> = unknown
        .iter()
        .copied()
        .filter(|name| name.as_str() <= newest)
        .collect();
    if !older.is_empty() {
        return Err(DbError::Schema(format!(
            "applied migration(s) {} unknown to this onebox ({VERSION}) and older than its \
             newest, {newest}: another build of onebox, with a different history, migrated \
             this database; serve it with that build, or restore a backup taken before",
            list(&older)
        )));
    }
    let pending: Vec<&String> = ours.iter().filter(|n| !applied.contains(*n)).collect();
    if !unknown.is_empty() && !pending.is_empty() {
        return Err(DbError::Schema(format!(
            "migration(s) newer than this onebox ({VERSION}) are applied ({}) but not its own \
             {}: another build of onebox, with a different history, migrated this database; \
             serve it with that build, or restore a backup taken before",
            list(&unknown),
            list(&pending)
        )));
    }
    let mut all: Vec<MigrationState> = ours
        .iter()
        .map(|name| MigrationState {
            name: name.clone(),
            applied: applied.contains(name),
            newer: false,
        })
        .collect();
    all.extend(unknown.into_iter().map(|name| MigrationState {
        name: name.clone(),
        applied: true,
        newer: true,
    }));
    Ok(all)
}

/// Refuses to change the schema under migrations newer than this binary's: only the onebox
/// that knows them can revert them, and this one's own are under them.
fn refuse_newer(migrations: &[MigrationState], doing: &str) -> Result<(), DbError> {
    let newer: Vec<&str> = migrations
        .iter()
        .filter(|m| m.newer)
        .map(|m| m.name.as_str())
        .collect();
    if newer.is_empty() {
        return Ok(());
    }
    Err(DbError::Schema(format!(
        "cannot {doing}: migration(s) newer than this onebox ({VERSION}) are applied ({}); \
         revert them first with the onebox that applied them (`onebox migrate down`)",
        newer.join(", ")
    )))
}

/// The connection pool's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections lent out (a query or transaction runs on each).
    pub in_use: usize,
    /// Connections open and idle (in sqlx's pool, or kept between statements: [`Hot`]).
    pub idle: usize,
    /// Tasks waiting for a connection (every one lent out, or one being opened).
    pub waiting: usize,
    /// `database.max_connections`.
    pub max: u32,
}

/// A handle on the connection pool.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    /// `database.url` as configured (with its password: only for connecting).
    url: std::sync::Arc<str>,
    /// `database.acquire_timeout`.
    timeout: Duration,
    /// `database.max_connections`: how many dead connections the pool can hold at most.
    max_connections: u32,
    /// Tasks waiting for a connection now (sqlx's pool does not say).
    waiting: Arc<AtomicUsize>,
    /// Counts statements that found the database unavailable ([`Db::troubles`]).
    troubles: Arc<tokio::sync::watch::Sender<u64>>,
    /// Connections between two statements, kept out of sqlx's pool ([`Hot`]), per engine.
    hot_mysql: Arc<Hot<sqlx::MySql>>,
    hot_sqlite: Arc<Hot<sqlx::Sqlite>>,
    /// How many connections statements may hold at once: all of the pool's but one, which
    /// stays for those who take connections from sqlx's pool themselves ([`Hot`]). `None`
    /// with a pool of one: statements then take it from sqlx's pool.
    lendable: Option<Arc<tokio::sync::Semaphore>>,
}

impl Db {
    /// Sets up the pool for `database.url` (or the SQLite file in `state_dir`). Nothing is
    /// connected yet: the first query connects.
    pub async fn connect(config: &Config) -> Result<Self, DbError> {
        check_url(config)?;
        let url = config.database_url();
        let sqlite = url.starts_with("sqlite:");
        if sqlite && config.database.url.is_empty() {
            std::fs::create_dir_all(&config.state_dir).map_err(|source| DbError::StateDir {
                path: config.state_dir.clone(),
                source,
            })?;
        }
        let url = url.replacen("mariadb:", "mysql:", 1);
        let settings = &config.database;
        let mut options = ConnectOptions::new(url.clone());
        options
            .max_connections(settings.max_connections)
            .min_connections(settings.min_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_timeout(settings.acquire_timeout)
            // A connection in steady use is not pinged before each query; one idle for a
            // second is (after an outage the idle ones are stale).
            .test_before_acquire_if_idle_for(Duration::from_secs(1))
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy(true)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|options| options.create_if_missing(true));
        let conn = Database::connect(options)
            .await
            .map_err(|e| DbError::Url(format!("{}: {e}", redact(&config.database_url()))))?;
        Ok(Self {
            conn,
            url: url.into(),
            timeout: settings.acquire_timeout,
            max_connections: settings.max_connections,
            waiting: Arc::new(AtomicUsize::new(0)),
            hot_mysql: Arc::new(Hot::default()),
            hot_sqlite: Arc::new(Hot::default()),
            lendable: (settings.max_connections > 1).then(|| {
                Arc::new(tokio::sync::Semaphore::new(
                    settings.max_connections as usize - 1,
                ))
            }),
            troubles: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    /// The SeaORM connection itself, for migrations and the one-shot commands (dump and load):
    /// what it runs is not counted in [`PoolStats::waiting`]. Requests use [`Db::reads`],
    /// [`Db::writes`] and [`Db::begin`].
    pub fn conn(&self) -> &DatabaseConnection {
        self.cool();
        &self.conn
    }

    /// Hands every connection kept between statements ([`Hot`]) back to sqlx's pool, where
    /// whoever takes connections from it directly (SeaORM's transactions, [`Db::conn`]) finds
    /// them.
    fn cool(&self) {
        self.hot_mysql.clear();
        self.hot_sqlite.clear();
    }

    /// The connection for writes (see [`Writes`]).
    pub fn writes(&self) -> Writes<'_> {
        Writes { db: self }
    }

    /// Starts a transaction. The wait for its connection is counted in
    /// [`PoolStats::waiting`], with its `BEGIN` (SeaORM acquires and begins in one call).
    pub async fn begin(&self) -> Result<sea_orm::DatabaseTransaction, DbErr> {
        let _waiting = Waiting::start(&self.waiting);
        self.cool();
        let begun = sea_orm::TransactionTrait::begin(&self.conn).await;
        self.watch(begun)
    }

    /// A count of the statements (reads, writes, `BEGIN`s) that could not reach the database
    /// (no connection to be had, or the connection lost), changed at each: the database
    /// watcher looks at once rather than at its next tick, so that while the database cannot
    /// be reached requests answer 503 at once instead of each waiting to find out. A server
    /// refusing statements for now ([`refused_for_now`]) is not counted: it answers at once,
    /// and what needs no database (the page cache) goes on being served until the next tick.
    pub fn troubles(&self) -> tokio::sync::watch::Receiver<u64> {
        self.troubles.subscribe()
    }

    /// `outcome`, counted in [`Db::troubles`] if it could not reach the database.
    fn watch<T>(&self, outcome: Result<T, DbErr>) -> Result<T, DbErr> {
        if let Err(error) = &outcome
            && unreachable(error)
            && !refused(error)
        {
            self.troubles.send_modify(|n| *n = n.wrapping_add(1));
        }
        outcome
    }

    /// A connection for one statement, `via` the pool or opened for it with the pool's options
    /// within `database.acquire_timeout`. From the pool: the one used last if it was used
    /// within [`HOT_FOR`], else one from sqlx's pool; statements wait their turn in order
    /// ([`Db::lendable`]), counted in [`PoolStats::waiting`], for `database.acquire_timeout`
    /// at most.
    async fn lend<'a, D: sea_orm::sqlx::Database>(
        &'a self,
        pool: &sea_orm::sqlx::Pool<D>,
        hot: &'a Hot<D>,
        via: Via,
    ) -> Result<Lent<'a, D>, DbErr> {
        use sea_orm::sqlx::{ConnectOptions as _, Error as Sqlx};
        if via == Via::New {
            let options = pool.connect_options();
            return match tokio::time::timeout(self.timeout, options.connect()).await {
                Ok(Ok(conn)) => Ok(Lent::New(conn)),
                Ok(Err(error)) => Err(acquire_error(error)),
                Err(_) => Err(acquire_error(Sqlx::PoolTimedOut)),
            };
        }
        let turn = match &self.lendable {
            None => None,
            Some(lendable) => match lendable.try_acquire() {
                Ok(turn) => Some(turn),
                Err(_) => {
                    let _waiting = Waiting::start(&self.waiting);
                    match tokio::time::timeout(self.timeout, lendable.acquire()).await {
                        Ok(Ok(turn)) => Some(turn),
                        // Never closed; out of time.
                        _ => return Err(acquire_error(Sqlx::PoolTimedOut)),
                    }
                }
            },
        };
        let kept = if turn.is_some() { hot.take() } else { None };
        let conn = match kept {
            Some(conn) => conn,
            None => {
                let _waiting = Waiting::start(&self.waiting);
                pool.acquire().await.map_err(acquire_error)?
            }
        };
        Ok(Lent::Pooled(Pooled {
            conn: Some(conn),
            hot,
            turn,
            reusable: false,
        }))
    }

    async fn lend_mysql(&self, via: Via) -> Result<Lent<'_, sqlx::MySql>, DbErr> {
        let lent = self
            .lend(self.conn.get_mysql_connection_pool(), &self.hot_mysql, via)
            .await;
        self.watch(lent)
    }

    async fn lend_sqlite(&self, via: Via) -> Result<Lent<'_, sqlx::Sqlite>, DbErr> {
        let lent = self
            .lend(
                self.conn.get_sqlite_connection_pool(),
                &self.hot_sqlite,
                via,
            )
            .await;
        self.watch(lent)
    }

    /// Runs a statement that returns no rows, once, on a connection from the pool.
    async fn execute_statement(&self, stmt: &Statement) -> Result<ExecResult, DbErr> {
        let sql = AssertSqlSafe(stmt.sql.as_str());
        let done = match self.backend() {
            DbBackend::Sqlite => {
                let mut conn = self.lend_sqlite(Via::Pool).await?;
                let done = sqlx::query_with(sql, values(stmt))
                    .execute(&mut *conn)
                    .await;
                conn.done(&done).await;
                done.map(ExecResult::from)
            }
            _ => {
                let mut conn = self.lend_mysql(Via::Pool).await?;
                let done = sqlx::query_with(sql, values(stmt))
                    .execute(&mut *conn)
                    .await;
                conn.done(&done).await;
                done.map(ExecResult::from)
            }
        };
        self.watch(done.map_err(exec_error))
    }

    /// Runs a query for at most one row, once, `via` the pool or a new connection.
    async fn query_one_statement(
        &self,
        stmt: &Statement,
        via: Via,
    ) -> Result<Option<QueryResult>, DbErr> {
        let sql = AssertSqlSafe(stmt.sql.as_str());
        let row = match self.backend() {
            DbBackend::Sqlite => {
                let mut conn = self.lend_sqlite(via).await?;
                let row = sqlx::query_with(sql, values(stmt))
                    .fetch_optional(&mut *conn)
                    .await;
                conn.done(&row).await;
                row.map(|row| row.map(QueryResult::from))
            }
            _ => {
                let mut conn = self.lend_mysql(via).await?;
                let row = sqlx::query_with(sql, values(stmt))
                    .fetch_optional(&mut *conn)
                    .await;
                conn.done(&row).await;
                row.map(|row| row.map(QueryResult::from))
            }
        };
        self.watch(row.map_err(query_error))
    }

    /// Runs a query for all its rows, once, `via` the pool or a new connection.
    async fn query_all_statement(
        &self,
        stmt: &Statement,
        via: Via,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let sql = AssertSqlSafe(stmt.sql.as_str());
        let rows = match self.backend() {
            DbBackend::Sqlite => {
                let mut conn = self.lend_sqlite(via).await?;
                let rows = sqlx::query_with(sql, values(stmt))
                    .fetch_all(&mut *conn)
                    .await;
                conn.done(&rows).await;
                rows.map(|rows| rows.into_iter().map(QueryResult::from).collect())
            }
            _ => {
                let mut conn = self.lend_mysql(via).await?;
                let rows = sqlx::query_with(sql, values(stmt))
                    .fetch_all(&mut *conn)
                    .await;
                conn.done(&rows).await;
                rows.map(|rows| rows.into_iter().map(QueryResult::from).collect())
            }
        };
        self.watch(rows.map_err(query_error))
    }

    /// The pool's connections now (for metrics).
    pub fn pool(&self) -> PoolStats {
        let (open, idle, max) = match self.backend() {
            DbBackend::Sqlite => {
                let pool = self.conn.get_sqlite_connection_pool();
                (
                    pool.size(),
                    pool.num_idle() + self.hot_sqlite.len(),
                    pool.options().get_max_connections(),
                )
            }
            _ => {
                let pool = self.conn.get_mysql_connection_pool();
                (
                    pool.size(),
                    pool.num_idle() + self.hot_mysql.len(),
                    pool.options().get_max_connections(),
                )
            }
        };
        PoolStats {
            in_use: usize::try_from(open).unwrap_or(0).saturating_sub(idle),
            idle,
            waiting: self.waiting.load(Ordering::Relaxed),
            max,
        }
    }

    /// The connection for reads: a query that fails because its connection was dead is sent
    /// again (see [`Reads`]).
    pub fn reads(&self) -> Reads<'_> {
        Reads {
            db: self,
            attempts: self.max_connections.saturating_add(1),
        }
    }

    /// Which engine this is.
    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// One round trip to the server. When no connection could be had, says why: the
    /// server's own answer to a connection made directly ([`DbError::Unreachable`]: "connection
    /// refused" at its address rather than the pool's "timed out").
    pub async fn ping(&self) -> Result<(), DbError> {
        match self.ping_pooled().await {
            Ok(()) => Ok(()),
            Err(DbErr::ConnectionAcquire(_)) | Err(DbErr::Conn(_)) => {
                match self.connect_once().await {
                    // It connects now: the pool was only busy, or the server just came back.
                    Ok(()) => self.ping_pooled().await.map_err(DbError::from),
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// A ping on a connection from the pool (counted while it waits for one, like a query).
    /// Taking one also hands back to sqlx's pool the connections kept unused for
    /// [`HOT_FOR`] ([`Hot::take`]): the once-a-second health check does it when no request does.
    async fn ping_pooled(&self) -> Result<(), DbErr> {
        use sea_orm::sqlx::Connection;
        let pinged = match self.backend() {
            DbBackend::Sqlite => {
                let mut conn = self.lend_sqlite(Via::Pool).await?;
                let pinged = conn.ping().await;
                conn.done(&pinged).await;
                pinged
            }
            _ => {
                let mut conn = self.lend_mysql(Via::Pool).await?;
                let pinged = conn.ping().await;
                conn.done(&pinged).await;
                pinged
            }
        };
        pinged.map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(Arc::new(e))))
    }

    /// One connection made directly, outside the pool, and closed again.
    async fn connect_once(&self) -> Result<(), DbError> {
        use sea_orm::sqlx::{Connection, MySqlConnection, SqliteConnection};
        let attempt = async {
            match self.backend() {
                DbBackend::Sqlite => SqliteConnection::connect(&self.url).await?.close().await,
                _ => MySqlConnection::connect(&self.url).await?.close().await,
            }
        };
        let url = redact(&self.url);
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(DbError::Unreachable { url, source }),
            Err(_) => Err(DbError::NoAnswer {
                url,
                after: self.timeout,
            }),
        }
    }

    /// Applies every pending migration (or the next `steps`); returns how many were applied.
    /// Waits while another onebox sharing the database applies them (see [`leases`]); then
    /// applies what is still pending.
    pub async fn migrate_up(&self, steps: Option<u32>) -> Result<usize, DbError> {
        self.migrating(Lease::Wait, self.up(steps)).await
    }

    /// As [`Db::migrate_up`] (all of them), but without waiting: [`DbError::Migrating`] when
    /// another onebox is applying them now (the database watcher looks again a second later).
    pub async fn try_migrate_up(&self) -> Result<usize, DbError> {
        self.migrating(Lease::Try, self.up(None)).await
    }

    async fn up(&self, steps: Option<u32>) -> Result<usize, DbError> {
        // Refuses a schema this binary does not know (newer migrations are fine: none of ours
        // is then pending).
        let pending = self
            .migrations()
            .await?
            .iter()
            .filter(|m| !m.applied)
            .count();
        if pending > 0 {
            Migrator::up(&self.conn, steps).await?;
        }
        Ok(steps.map_or(pending, |n| pending.min(n as usize)))
    }

    /// Reverts the latest `steps` applied migrations; returns how many were reverted.
    pub async fn migrate_down(&self, steps: u32) -> Result<usize, DbError> {
        let down = async {
            let migrations = self.migrations().await?;
            refuse_newer(&migrations, "revert migrations")?;
            let applied = migrations.iter().filter(|m| m.applied).count();
            Migrator::down(&self.conn, Some(steps)).await?;
            Ok(applied.min(steps as usize))
        };
        self.migrating(Lease::Wait, down).await
    }

    /// Applies or reverts migrations until exactly the first `count` of this binary's are
    /// applied (a restore brings the schema to its archive's before loading it).
    pub async fn migrate_to(&self, count: usize) -> Result<(), DbError> {
        let to = async {
            let migrations = self.migrations().await?;
            refuse_newer(&migrations, "bring the schema to the archive's")?;
            let applied = migrations.iter().filter(|m| m.applied).count();
            if applied < count {
                Migrator::up(&self.conn, Some((count - applied) as u32)).await?;
            } else if applied > count {
                Migrator::down(&self.conn, Some((applied - count) as u32)).await?;
            }
            Ok(())
        };
        self.migrating(Lease::Wait, to).await
    }

    /// Runs `job` (a change of the schema) holding the migrations' lease, renewed while it
    /// runs and given back after.
    async fn migrating<T>(
        &self,
        wait: Lease,
        job: impl std::future::Future<Output = Result<T, DbError>>,
    ) -> Result<T, DbError> {
        leases::ensure_table(self).await?;
        let holder = leases::holder_id();
        let mut told = false;
        loop {
            match leases::acquire(self, MIGRATIONS_LEASE, &holder, MIGRATIONS_LEASE_TTL).await? {
                leases::Acquired::Held => break,
                leases::Acquired::Taken { holder, .. } if wait == Lease::Try => {
                    return Err(DbError::Migrating { holder });
                }
                leases::Acquired::Taken { holder, expires_in } => {
                    if !told {
                        tracing::info!(
                            holder,
                            expires_in_s = expires_in.as_secs(),
                            "another onebox is applying the migrations; waiting for it"
                        );
                        told = true;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        tokio::pin!(job);
        let outcome = loop {
            tokio::select! {
                outcome = &mut job => break outcome,
                () = tokio::time::sleep(MIGRATIONS_LEASE_RENEW) => {
                    match leases::acquire(self, MIGRATIONS_LEASE, &holder, MIGRATIONS_LEASE_TTL).await {
                        Ok(leases::Acquired::Held) => {}
                        Ok(leases::Acquired::Taken { holder: other, .. }) => tracing::error!(
                            other,
                            "the migrations' lease expired and was taken while migrating"
                        ),
                        Err(error) => tracing::warn!(
                            error = %describe(&error),
                            "cannot renew the migrations' lease"
                        ),
                    }
                }
            }
        };
        if let Err(error) = leases::release(self, MIGRATIONS_LEASE, &holder).await {
            tracing::warn!(error = %describe(&error), "cannot give the migrations' lease back; it expires by itself");
        }
        outcome
    }

    /// Every migration of this binary, oldest first, and whether it is applied; then those a
    /// newer onebox applied, if any (`newer`). [`DbError::Schema`] when the database was
    /// migrated by a build with a different history: see [`reconcile`]. Reads only (the
    /// database watcher asks every second).
    pub async fn migrations(&self) -> Result<Vec<MigrationState>, DbError> {
        let applied = dump::applied(&self.reads()).await?;
        reconcile(&dump::known_migrations(), &applied.into_iter().collect())
    }
}

/// The lease under which the schema changes ([`leases`]).
pub const MIGRATIONS_LEASE: &str = "migrations";

/// How long the migrations' lease lasts unless renewed (a box that dies while migrating
/// holds it this long at most).
const MIGRATIONS_LEASE_TTL: Duration = Duration::from_secs(60);

/// How often a box applying migrations renews the lease.
const MIGRATIONS_LEASE_RENEW: Duration = Duration::from_secs(15);

/// Whether to wait for the migrations' lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lease {
    Wait,
    Try,
}

/// Checks `database.url` as [`Db::connect`] does, without connecting or creating anything
/// (`onebox check`): a MySQL/MariaDB or SQLite URL that the driver can parse.
pub fn check_url(config: &Config) -> Result<(), DbError> {
    let url = config.database_url();
    let refused = |why: String| DbError::Url(format!("{}: {why}", redact(&url)));
    let sqlite = url.starts_with("sqlite:");
    if !sqlite && !url.starts_with("mysql:") && !url.starts_with("mariadb:") {
        return Err(refused(
            "use mysql://user:password@host:port/database or sqlite://path".to_owned(),
        ));
    }
    let parsed = url.replacen("mariadb:", "mysql:", 1);
    let options = if sqlite {
        parsed
            .parse::<sea_orm::sqlx::sqlite::SqliteConnectOptions>()
            .map(drop)
    } else {
        parsed
            .parse::<sea_orm::sqlx::mysql::MySqlConnectOptions>()
            .map(drop)
    };
    options.map_err(|e| refused(e.to_string()))
}

/// An error and its causes, `: `-separated, for the log (`ops::chain` is not the data
/// layer's to use).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Now, in Unix milliseconds: how the tables shared by several boxes (leases, sign-in
/// failures) store a moment, the same on every engine.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in milliseconds, for arithmetic on [`now_ms`] values (saturating).
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A migrated SQLite database in a directory of its own, for the unit tests of the tables'
/// queries.
#[cfg(test)]
pub(crate) async fn migrated() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = crate::config::Config {
        state_dir: dir.path().to_owned(),
        ..Default::default()
    };
    let db = Db::connect(&config).await.expect("db");
    db.migrate_up(None).await.expect("migrate");
    (dir, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_unavailability_not_bugs() {
        use std::sync::Arc;

        use sea_orm::RuntimeErr;
        use sea_orm::sqlx::Error as Sqlx;
        let sqlx = |e: Sqlx| RuntimeErr::SqlxError(Arc::new(e));
        let eof = || Sqlx::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        assert!(unreachable(&DbErr::Query(sqlx(eof()))));
        assert!(unreachable(&DbErr::Exec(sqlx(Sqlx::PoolTimedOut))));
        assert!(!unreachable(&DbErr::Query(sqlx(Sqlx::RowNotFound))));
        assert!(!unreachable(&DbErr::RecordNotFound("post".to_owned())));
        assert!(DbError::Db(DbErr::Query(sqlx(eof()))).is_unavailable());
    }

    /// A server error as sqlx reports it, with its SQLSTATE.
    #[derive(Debug)]
    struct ServerError(&'static str);

    impl std::fmt::Display for ServerError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "server error {}", self.0)
        }
    }

    impl std::error::Error for ServerError {}

    impl sea_orm::sqlx::error::DatabaseError for ServerError {
        fn message(&self) -> &str {
            "server error"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sea_orm::sqlx::error::ErrorKind {
            sea_orm::sqlx::error::ErrorKind::Other
        }
    }

    #[test]
    fn a_server_refusing_connections_for_now_is_unavailability_not_a_bug() {
        use std::sync::Arc;

        use sea_orm::RuntimeErr;
        use sea_orm::sqlx::Error as Sqlx;
        let server = |sqlstate: &'static str| {
            DbErr::Query(RuntimeErr::SqlxError(Arc::new(Sqlx::Database(Box::new(
                ServerError(sqlstate),
            )))))
        };
        // 1047 (a Galera node not synced), 1053 (shutting down), 1040 (too many connections).
        assert!(unreachable(&server("08S01")));
        assert!(unreachable(&server("08004")));
        // A duplicate key, a syntax error: the statement's fault, not the server's state.
        assert!(!unreachable(&server("23000")));
        assert!(!unreachable(&server("42000")));
        // Refused for now: a read is sent again on a new connection, and the watcher is not
        // woken (the server answers at once); a lost connection is not a refusal.
        assert!(refused(&server("08S01")));
        assert!(!refused(&server("23000")));
        let eof = Sqlx::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        assert!(!refused(&DbErr::Query(RuntimeErr::SqlxError(Arc::new(
            eof
        )))));
    }

    #[test]
    fn only_a_lost_connection_sends_a_read_again() {
        use std::sync::Arc;

        use sea_orm::RuntimeErr;
        use sea_orm::sqlx::Error as Sqlx;
        let sqlx = |e: Sqlx| RuntimeErr::SqlxError(Arc::new(e));
        let io = |kind| Sqlx::Io(std::io::Error::from(kind));
        assert!(lost_connection(&DbErr::Query(sqlx(io(
            std::io::ErrorKind::UnexpectedEof
        )))));
        assert!(lost_connection(&DbErr::Query(sqlx(io(
            std::io::ErrorKind::ConnectionReset
        )))));
        // No connection to be had: trying again would only wait as long once more.
        assert!(!lost_connection(&DbErr::Query(sqlx(Sqlx::PoolTimedOut))));
        assert!(!lost_connection(&DbErr::Query(sqlx(Sqlx::RowNotFound))));
        assert!(!lost_connection(&DbErr::RecordNotFound("post".to_owned())));
    }

    #[test]
    fn migration_names_sort_in_the_order_they_apply() {
        // `reconcile` tells a newer migration from an older one by its name.
        let ours = dump::known_migrations();
        let mut sorted = ours.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            ours, sorted,
            "migrations are named mYYYYMMDD_NNNNNN_..., in order"
        );
    }

    #[test]
    fn migrations_newer_than_ours_are_served_other_unknown_ones_refused() {
        let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let ours = names(&["m20260101_000001_a", "m20260201_000001_b"]);
        let applied = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect();
        let states = |all: Vec<MigrationState>| {
            all.into_iter()
                .map(|m| format!("{} {} {}", m.name, m.applied, m.newer))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            states(reconcile(&ours, &applied(&["m20260101_000001_a"])).expect("one pending")),
            [
                "m20260101_000001_a true false",
                "m20260201_000001_b false false"
            ]
        );
        // A newer onebox applied two more: served, and listed after ours.
        let ahead = applied(&[
            "m20260101_000001_a",
            "m20260201_000001_b",
            "m20260301_000001_c",
            "m20260301_000002_d",
        ]);
        assert_eq!(
            states(reconcile(&ours, &ahead).expect("newer ones are served")),
            [
                "m20260101_000001_a true false",
                "m20260201_000001_b true false",
                "m20260301_000001_c true true",
                "m20260301_000002_d true true"
            ]
        );
        // Unknown, and older than our newest: another history.
        let refused = reconcile(
            &ours,
            &applied(&[
                "m20260101_000001_a",
                "m20260115_000001_x",
                "m20260201_000001_b",
            ]),
        )
        .expect_err("an unknown older one");
        let text = refused.to_string();
        assert!(text.contains("m20260115_000001_x"), "{text}");
        assert!(
            text.contains("older than its newest, m20260201_000001_b"),
            "{text}"
        );
        assert!(!refused.is_unavailable(), "a fault to fix, not a wait");
        // Newer ones over a gap in ours: another history too.
        let text = reconcile(
            &ours,
            &applied(&["m20260101_000001_a", "m20260301_000001_c"]),
        )
        .expect_err("a gap")
        .to_string();
        assert!(
            text.contains("(m20260301_000001_c) but not its own m20260201_000001_b"),
            "{text}"
        );
        // Down and restores refuse to work under newer ones.
        let ahead = reconcile(&ours, &ahead).expect("served");
        let text = refuse_newer(&ahead, "revert migrations")
            .expect_err("newer ones")
            .to_string();
        assert!(
            text.contains("cannot revert migrations: migration(s) newer than this onebox"),
            "{text}"
        );
        assert!(
            text.contains("(m20260301_000001_c, m20260301_000002_d)"),
            "{text}"
        );
        let own = reconcile(&ours, &applied(&["m20260101_000001_a"])).expect("ours");
        assert!(refuse_newer(&own, "revert migrations").is_ok());
    }

    #[test]
    fn passwords_never_appear_in_messages() {
        assert_eq!(
            redact("mysql://app:s3cret@db:3306/onebox"),
            "mysql://app:***@db:3306/onebox"
        );
        assert_eq!(redact("mysql://app@db/onebox"), "mysql://app@db/onebox");
        assert_eq!(
            redact("sqlite://state/onebox.db"),
            "sqlite://state/onebox.db"
        );
    }
}
