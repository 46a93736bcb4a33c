//! What several boxes sharing the database agree on through it (issue 12): failed sign-ins
//! (`signin_failures`) and named counters (`counters`, the pages' generation among them). The
//! rules (how many failures, how long a window, when a page is stale) are the application's;
//! this file only stores and counts, each change one statement the engine applies atomically.

use sea_orm::sea_query::{Alias, OnConflict, Query};
use sea_orm::{ConnectionTrait, Statement, Value};

use super::{Db, DbError};

/// One subject's failures in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// When the window's first failure happened (Unix milliseconds).
    pub window_start_ms: i64,
    /// Failures since.
    pub failures: u32,
}

fn statement(db: &Db, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(db.backend(), sql, values)
}

/// The failures recorded for each of `subjects` that has some.
pub async fn failures(db: &Db, subjects: &[String]) -> Result<Vec<Failures>, DbError> {
    let mut found = Vec::new();
    for subject in subjects {
        let row = db
            .reads()
            .query_one_raw(statement(
                db,
                "SELECT window_start_ms, failures FROM signin_failures WHERE subject = ?",
                vec![subject.clone().into()],
            ))
            .await?;
        if let Some(row) = row {
            found.push(Failures {
                window_start_ms: row.try_get_by_index::<i64>(0)?,
                failures: u32::try_from(row.try_get_by_index::<i32>(1)?).unwrap_or(0),
            });
        }
    }
    Ok(found)
}

/// Counts one failure of `subject` at `now_ms`: one more in its window if that began after
/// `window_start_after_ms`, else the first of a new window. Atomic per subject: two boxes
/// counting at once count two.
pub async fn fail(
    db: &Db,
    subject: &str,
    now_ms: i64,
    window_start_after_ms: i64,
) -> Result<(), DbError> {
    // `failures` first: MySQL assigns left to right, and both CASEs must see the old start.
    let count = || {
        statement(
            db,
            "UPDATE signin_failures SET \
             failures = CASE WHEN window_start_ms > ? THEN failures + 1 ELSE 1 END, \
             window_start_ms = CASE WHEN window_start_ms > ? THEN window_start_ms ELSE ? END \
             WHERE subject = ?",
            vec![
                window_start_after_ms.into(),
                window_start_after_ms.into(),
                now_ms.into(),
                subject.into(),
            ],
        )
    };
    if db.conn().execute_raw(count()).await?.rows_affected() == 1 {
        return Ok(());
    }
    // The subject's first failure: its row with none yet (unless another box made it
    // meanwhile), then counted as above.
    let seed = Query::insert()
        .into_table(Alias::new("signin_failures"))
        .columns([
            Alias::new("subject"),
            Alias::new("window_start_ms"),
            Alias::new("failures"),
        ])
        .values_panic([subject.into(), now_ms.into(), 0i32.into()])
        .on_conflict(
            OnConflict::column(Alias::new("subject"))
                .do_nothing_on([Alias::new("subject")])
                .to_owned(),
        )
        .to_owned();
    db.conn().execute(&seed).await?;
    db.conn().execute_raw(count()).await?;
    Ok(())
}

/// Forgets the failures of `subject` (a successful sign-in for an address).
pub async fn clear(db: &Db, subject: &str) -> Result<(), DbError> {
    db.conn()
        .execute_raw(statement(
            db,
            "DELETE FROM signin_failures WHERE subject = ?",
            vec![subject.into()],
        ))
        .await?;
    Ok(())
}

/// Deletes the failures whose window began at or before `before_ms`; returns how many.
pub async fn purge_failures(db: &Db, before_ms: i64) -> Result<u64, DbError> {
    let done = db
        .conn()
        .execute_raw(statement(
            db,
            "DELETE FROM signin_failures WHERE window_start_ms <= ?",
            vec![before_ms.into()],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// The counter `name` (0 when there is none).
pub async fn counter(db: &Db, name: &str) -> Result<i64, DbError> {
    let row = db
        .reads()
        .query_one_raw(statement(
            db,
            "SELECT value FROM counters WHERE name = ?",
            vec![name.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get_by_index::<i64>(0)?,
        None => 0,
    })
}

/// Adds one to the counter `name` (made at 1 if there is none).
pub async fn bump(db: &Db, name: &str) -> Result<(), DbError> {
    let add = || {
        statement(
            db,
            "UPDATE counters SET value = value + 1 WHERE name = ?",
            vec![name.into()],
        )
    };
    if db.conn().execute_raw(add()).await?.rows_affected() == 1 {
        return Ok(());
    }
    let seed = Query::insert()
        .into_table(Alias::new("counters"))
        .columns([Alias::new("name"), Alias::new("value")])
        .values_panic([name.into(), 0i64.into()])
        .on_conflict(
            OnConflict::column(Alias::new("name"))
                .do_nothing_on([Alias::new("name")])
                .to_owned(),
        )
        .to_owned();
    db.conn().execute(&seed).await?;
    db.conn().execute_raw(add()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_count_within_a_window_and_start_again_after() {
        let (_dir, db) = crate::db::migrated().await;
        let who = vec!["a".to_owned()];
        assert!(failures(&db, &who).await.expect("none").is_empty());
        fail(&db, "a", 1000, 0).await.expect("first");
        fail(&db, "a", 1500, 0).await.expect("second");
        assert_eq!(
            failures(&db, &who).await.expect("two"),
            [Failures {
                window_start_ms: 1000,
                failures: 2
            }]
        );
        // The window began at 1000: a failure whose window must have begun after 1200 starts
        // a new one.
        fail(&db, "a", 5000, 1200).await.expect("new window");
        assert_eq!(
            failures(&db, &who).await.expect("one"),
            [Failures {
                window_start_ms: 5000,
                failures: 1
            }]
        );
        clear(&db, "a").await.expect("clear");
        assert!(failures(&db, &who).await.expect("cleared").is_empty());
        fail(&db, "b", 10, 0).await.expect("b");
        assert_eq!(purge_failures(&db, 10).await.expect("purge"), 1);
    }

    #[tokio::test]
    async fn counters_go_up_by_one() {
        let (_dir, db) = crate::db::migrated().await;
        let start = counter(&db, "page_cache").await.expect("read");
        bump(&db, "page_cache").await.expect("bump");
        assert_eq!(counter(&db, "page_cache").await.expect("read"), start + 1);
        assert_eq!(counter(&db, "new").await.expect("none"), 0);
        bump(&db, "new").await.expect("made");
        assert_eq!(counter(&db, "new").await.expect("read"), 1);
    }
}
