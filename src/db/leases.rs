//! Leases: one holder at a time for a named job (applying the migrations, ordering a
//! certificate) across every onebox sharing the database.
//!
//! A lease is a row of [`TABLE`]: its name, its holder, and when it expires. Taking it is one
//! conditional `UPDATE` — "make me the holder where nobody holds it, or the holding has
//! expired, or I hold it already" — which the engine applies to the row atomically (InnoDB's
//! row lock, SQLite's write lock; on Galera, a second node's concurrent update fails its
//! certification and is refused): of two boxes asking at once, exactly one gets it. A holder
//! renews before the expiry while it works, and gives the lease back when done; a holder that
//! dies (`kill -9`, a power cut) holds it until it expires, and then the next box takes over.
//!
//! No engine-specific lock (`GET_LOCK`, advisory locks): the same statements on MySQL/MariaDB
//! and SQLite, and a lock that survives a fail-over of the database. Expiry times are the
//! boxes' own clocks (Unix milliseconds): keep them in sync (NTP), as any cluster does; a lease
//! lasts many seconds, far longer than any skew NTP leaves.
//!
//! The table is created by [`ensure_table`] (`CREATE TABLE IF NOT EXISTS`, safe when several
//! boxes run it at once), not by a migration: the migrations themselves are applied under a
//! lease. It is not part of a dump (`dump`): leases are the running boxes' business.

use std::time::Duration;

use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, OnConflict, Query, Table, TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DbErr};

use super::{Db, DbError, millis, now_ms};

/// The table of leases.
pub const TABLE: &str = "onebox_leases";

/// Who holds a lease, as [`acquire`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The caller holds it now (taken, or renewed).
    Held,
    /// Someone else does, until `expires_in` from now.
    Taken {
        /// The holder's identity ([`holder_id`]).
        holder: String,
        /// How long until it expires unless renewed.
        expires_in: Duration,
    },
}

/// An identity for this process as a lease holder: host name, process id, and a random part
/// (a restarted process with the same pid is someone else).
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let mut random = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let host = if host.is_empty() { "onebox" } else { &host };
    format!("{host}:{}:{random}", std::process::id())
}

fn table_statement() -> TableCreateStatement {
    Table::create()
        .table(Alias::new(TABLE))
        .if_not_exists()
        .col(
            ColumnDef::new(Alias::new("name"))
                .string_len(64)
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(Alias::new("holder"))
                .string_len(255)
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("expires_ms"))
                .big_integer()
                .not_null(),
        )
        .to_owned()
}

/// Creates the table unless it exists.
pub async fn ensure_table(db: &Db) -> Result<(), DbError> {
    db.conn().execute(&table_statement()).await?;
    Ok(())
}

/// Takes (or renews) the lease `name` for `holder` for `ttl`, unless someone else holds an
/// unexpired one. The table must exist ([`ensure_table`]).
pub async fn acquire(
    db: &Db,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Acquired, DbError> {
    let conn = db.conn();
    // The row first, held by nobody, if it is not there yet (a no-op when it is).
    let seed = Query::insert()
        .into_table(Alias::new(TABLE))
        .columns([
            Alias::new("name"),
            Alias::new("holder"),
            Alias::new("expires_ms"),
        ])
        .values_panic([name.into(), "".into(), 0i64.into()])
        .on_conflict(
            OnConflict::column(Alias::new("name"))
                .do_nothing_on([Alias::new("name")])
                .to_owned(),
        )
        .to_owned();
    conn.execute(&seed).await?;
    let now = now_ms();
    let take = Query::update()
        .table(Alias::new(TABLE))
        .value(Alias::new("holder"), holder)
        .value(Alias::new("expires_ms"), now.saturating_add(millis(ttl)))
        .and_where(Expr::col(Alias::new("name")).eq(name))
        .and_where(
            Expr::col(Alias::new("expires_ms"))
                .lte(now)
                .or(Expr::col(Alias::new("holder")).eq(holder)),
        )
        .to_owned();
    match conn.execute(&take).await {
        Ok(done) if done.rows_affected() == 1 => return Ok(Acquired::Held),
        Ok(_) => {}
        // Galera: another node's holder won the race (a certification conflict).
        Err(error) if conflict(&error) => {}
        Err(error) => return Err(error.into()),
    }
    let who = Query::select()
        .columns([Alias::new("holder"), Alias::new("expires_ms")])
        .from(Alias::new(TABLE))
        .and_where(Expr::col(Alias::new("name")).eq(name))
        .to_owned();
    let row = conn.query_one(&who).await?;
    let (holder, expires) = match row {
        Some(row) => (
            row.try_get_by_index::<String>(0)?,
            row.try_get_by_index::<i64>(1)?,
        ),
        None => (String::new(), now),
    };
    Ok(Acquired::Taken {
        holder,
        expires_in: Duration::from_millis(u64::try_from(expires - now).unwrap_or(0)),
    })
}

/// Gives the lease `name` back, if `holder` holds it (a lease lost to expiry stays with
/// whoever took it since).
pub async fn release(db: &Db, name: &str, holder: &str) -> Result<(), DbError> {
    let give_back = Query::update()
        .table(Alias::new(TABLE))
        .value(Alias::new("holder"), "")
        .value(Alias::new("expires_ms"), 0i64)
        .and_where(Expr::col(Alias::new("name")).eq(name))
        .and_where(Expr::col(Alias::new("holder")).eq(holder))
        .to_owned();
    db.conn().execute(&give_back).await?;
    Ok(())
}

/// Whether `error` is a write refused because a concurrent one won (a deadlock, a lock wait
/// timeout, a Galera certification failure, SQLite busy): the other side has the lease.
fn conflict(error: &DbErr) -> bool {
    let text = error.to_string().to_ascii_lowercase();
    text.contains("deadlock") || text.contains("lock wait") || text.contains("database is locked")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_ids_differ_per_process_start() {
        let (a, b) = (holder_id(), holder_id());
        assert_ne!(a, b);
        assert!(a.contains(&format!(":{}:", std::process::id())), "{a}");
    }

    #[tokio::test]
    async fn one_holder_at_a_time_until_expiry_or_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = crate::config::Config {
            state_dir: dir.path().to_owned(),
            ..Default::default()
        };
        let db = Db::connect(&config).await.expect("db");
        ensure_table(&db).await.expect("table");
        ensure_table(&db).await.expect("again: a no-op");
        let long = Duration::from_secs(60);
        assert_eq!(
            acquire(&db, "job", "a", long).await.expect("a"),
            Acquired::Held
        );
        assert_eq!(
            acquire(&db, "job", "a", long).await.expect("renew"),
            Acquired::Held
        );
        match acquire(&db, "job", "b", long).await.expect("b") {
            Acquired::Taken { holder, expires_in } => {
                assert_eq!(holder, "a");
                assert!(expires_in > Duration::from_secs(50), "{expires_in:?}");
            }
            Acquired::Held => panic!("two holders"),
        }
        assert_eq!(
            acquire(&db, "other", "b", long).await.expect("other"),
            Acquired::Held
        );
        release(&db, "job", "b").await.expect("not b's to release");
        assert!(matches!(
            acquire(&db, "job", "b", long).await,
            Ok(Acquired::Taken { .. })
        ));
        release(&db, "job", "a").await.expect("release");
        assert_eq!(
            acquire(&db, "job", "b", long).await.expect("b"),
            Acquired::Held
        );
        // An expired holding is anyone's.
        let short = Duration::from_millis(1);
        assert_eq!(
            acquire(&db, "brief", "a", short).await.expect("a"),
            Acquired::Held
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            acquire(&db, "brief", "b", long).await.expect("b"),
            Acquired::Held
        );
    }
}
