//! ACME's storage when several boxes share it (`web.acme.storage = "database"`): values by
//! name (`acme_store`: the account, the certificates and their private keys) and the http-01
//! answers of the order under way (`acme_challenges`). ACME's own rules (what the names mean,
//! who orders, when) are not this file's: it stores and fetches, each change one statement.
//!
//! The account key and the private keys are then in the database, as Caddy's and certmagic's
//! database storage modules keep them: whoever reads the database or its dumps can use them.

use sea_orm::sea_query::{Alias, OnConflict, Query};
use sea_orm::{ConnectionTrait, Statement, Value};

use super::{Db, DbError, now_ms};

/// ACME's values by name.
pub const STORE_TABLE: &str = "acme_store";

/// The http-01 answers of the orders under way. Not part of a dump (`dump`): they matter for
/// the minutes an order takes, to the running boxes only.
pub const CHALLENGES_TABLE: &str = "acme_challenges";

fn statement(db: &Db, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(db.backend(), sql, values)
}

/// The value stored under `name`, if there is one.
pub async fn load(db: &Db, name: &str) -> Result<Option<Vec<u8>>, DbError> {
    let row = db
        .reads()
        .query_one_raw(statement(
            db,
            "SELECT value FROM acme_store WHERE name = ?",
            vec![name.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get_by_index::<Vec<u8>>(0)?),
        None => None,
    })
}

/// Stores `value` under `name`, replacing what was there (one statement: a reader sees the old
/// value or the new one, whole).
pub async fn save(db: &Db, name: &str, value: &[u8]) -> Result<(), DbError> {
    let upsert = Query::insert()
        .into_table(Alias::new(STORE_TABLE))
        .columns([
            Alias::new("name"),
            Alias::new("value"),
            Alias::new("updated_ms"),
        ])
        .values_panic([name.into(), value.to_vec().into(), now_ms().into()])
        .on_conflict(
            OnConflict::column(Alias::new("name"))
                .update_columns([Alias::new("value"), Alias::new("updated_ms")])
                .to_owned(),
        )
        .to_owned();
    db.writes().execute(&upsert).await?;
    Ok(())
}

/// Publishes the http-01 answer `key_authorization` for `token` until `expires_ms` (Unix
/// milliseconds), and forgets the answers that have expired.
pub async fn publish_answer(
    db: &Db,
    token: &str,
    key_authorization: &str,
    expires_ms: i64,
) -> Result<(), DbError> {
    db.writes()
        .execute_raw(statement(
            db,
            "DELETE FROM acme_challenges WHERE expires_ms <= ?",
            vec![now_ms().into()],
        ))
        .await?;
    let upsert = Query::insert()
        .into_table(Alias::new(CHALLENGES_TABLE))
        .columns([
            Alias::new("token"),
            Alias::new("key_authorization"),
            Alias::new("expires_ms"),
        ])
        .values_panic([token.into(), key_authorization.into(), expires_ms.into()])
        .on_conflict(
            OnConflict::column(Alias::new("token"))
                .update_columns([Alias::new("key_authorization"), Alias::new("expires_ms")])
                .to_owned(),
        )
        .to_owned();
    db.writes().execute(&upsert).await?;
    Ok(())
}

/// Withdraws the http-01 answer for `token`.
pub async fn withdraw_answer(db: &Db, token: &str) -> Result<(), DbError> {
    db.writes()
        .execute_raw(statement(
            db,
            "DELETE FROM acme_challenges WHERE token = ?",
            vec![token.into()],
        ))
        .await?;
    Ok(())
}

/// The unexpired http-01 answer for `token`, if one is published.
pub async fn answer(db: &Db, token: &str) -> Result<Option<String>, DbError> {
    let row = db
        .reads()
        .query_one_raw(statement(
            db,
            "SELECT key_authorization FROM acme_challenges WHERE token = ? AND expires_ms > ?",
            vec![token.into(), now_ms().into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get_by_index::<String>(0)?),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_are_replaced_whole() {
        let (_dir, db) = crate::db::migrated().await;
        assert_eq!(load(&db, "certs/x/cert.pem").await.expect("none"), None);
        save(&db, "certs/x/cert.pem", b"first").await.expect("save");
        save(&db, "certs/x/cert.pem", b"\x00second\xff")
            .await
            .expect("replace");
        assert_eq!(
            load(&db, "certs/x/cert.pem")
                .await
                .expect("load")
                .as_deref(),
            Some(&b"\x00second\xff"[..])
        );
    }

    #[tokio::test]
    async fn answers_are_found_until_withdrawn_or_expired() {
        let (_dir, db) = crate::db::migrated().await;
        let later = now_ms() + 60_000;
        publish_answer(&db, "tok", "tok.print", later)
            .await
            .expect("publish");
        assert_eq!(
            answer(&db, "tok").await.expect("read").as_deref(),
            Some("tok.print")
        );
        assert_eq!(answer(&db, "other").await.expect("read"), None);
        withdraw_answer(&db, "tok").await.expect("withdraw");
        assert_eq!(answer(&db, "tok").await.expect("read"), None);
        publish_answer(&db, "old", "old.print", now_ms() - 1)
            .await
            .expect("publish");
        assert_eq!(answer(&db, "old").await.expect("read"), None, "expired");
        publish_answer(&db, "new", "new.print", later)
            .await
            .expect("publish");
        let left = db
            .reads()
            .query_one_raw(statement(
                &db,
                "SELECT COUNT(*) FROM acme_challenges",
                vec![],
            ))
            .await
            .expect("count")
            .expect("row")
            .try_get_by_index::<i64>(0)
            .expect("n");
        assert_eq!(left, 1, "the expired answer was forgotten");
    }
}
