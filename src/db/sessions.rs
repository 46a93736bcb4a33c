//! The sessions aggregate: signed-in browsers, stored server-side, found by their token's
//! digest, gone when they expire or the user signs out.

use chrono::{NaiveDateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entity::{session, user};
use super::{Db, DbError};

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct Live {
    /// The session.
    pub session: session::Model,
    /// Whose it is.
    pub user: user::Model,
}

/// Stores a new session for `user_id` until `expires_at`. `id` is the token's digest.
pub async fn create(
    db: &Db,
    id: String,
    user_id: i64,
    csrf_token: String,
    expires_at: NaiveDateTime,
) -> Result<(), DbError> {
    session::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        csrf_token: Set(csrf_token),
        created_at: Set(Utc::now().naive_utc()),
        expires_at: Set(expires_at),
    }
    .insert(&db.writes())
    .await?;
    Ok(())
}

/// The unexpired session with this digest, with its user (one query).
pub async fn find(db: &Db, id: &str) -> Result<Option<Live>, DbError> {
    let found = session::Entity::find_by_id(id.to_owned())
        .filter(session::Column::ExpiresAt.gt(Utc::now().naive_utc()))
        .find_also_related(user::Entity)
        .one(&db.reads())
        .await?;
    Ok(found.and_then(|(session, user)| user.map(|user| Live { session, user })))
}

/// Ends the session with this digest (signing out).
pub async fn delete(db: &Db, id: &str) -> Result<(), DbError> {
    session::Entity::delete_by_id(id.to_owned())
        .exec(&db.writes())
        .await?;
    Ok(())
}

/// Removes every expired session; returns how many.
pub async fn purge_expired(db: &Db) -> Result<u64, DbError> {
    let result = session::Entity::delete_many()
        .filter(session::Column::ExpiresAt.lte(Utc::now().naive_utc()))
        .exec(&db.writes())
        .await?;
    Ok(result.rows_affected)
}
