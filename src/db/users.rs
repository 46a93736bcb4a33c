//! The users aggregate: who may sign in, with which password hash and role.
//!
//! E-mail addresses are stored and compared lower-case; the schema keeps them unique, and a
//! second user with the same address fails with [`UserError::EmailTaken`], recognised from the
//! database's own unique violation (two writers may race past any check made before).

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, SqlErr};

use super::entity::user;
pub use super::entity::user::Role;
use super::{Db, DbError};

/// A user to add.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The sign-in name (stored lower-case).
    pub email: String,
    /// The name shown.
    pub display_name: String,
    /// The password's argon2id hash (PHC string).
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
}

/// Adding a user failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Another user has this e-mail address.
    #[error("a user with the e-mail address {0} exists already")]
    EmailTaken(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Adds a user; returns it as stored.
pub async fn insert(db: &Db, new: NewUser) -> Result<user::Model, UserError> {
    let now = Utc::now().naive_utc();
    let email = new.email.to_lowercase();
    let inserted = user::ActiveModel {
        email: Set(email.clone()),
        display_name: Set(new.display_name),
        password_hash: Set(new.password_hash),
        role: Set(new.role),
        api_token_hash: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&db.writes())
    .await;
    match inserted {
        Ok(user) => Ok(user),
        // `id` is the database's own and no token is set: the address is what collided.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(UserError::EmailTaken(email))
        }
        Err(e) => Err(UserError::Db(e.into())),
    }
}

/// The user with this e-mail address (compared lower-case).
pub async fn by_email(db: &Db, email: &str) -> Result<Option<user::Model>, DbError> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.to_lowercase()))
        .one(&db.reads())
        .await?)
}

/// Every user, by e-mail address.
pub async fn all(db: &Db) -> Result<Vec<user::Model>, DbError> {
    Ok(user::Entity::find()
        .order_by_asc(user::Column::Email)
        .all(&db.reads())
        .await?)
}

/// The user whose API token has this digest.
pub async fn by_api_token(db: &Db, digest: &str) -> Result<Option<user::Model>, DbError> {
    Ok(user::Entity::find()
        .filter(user::Column::ApiTokenHash.eq(digest))
        .one(&db.reads())
        .await?)
}

/// Sets (or replaces) the digest of a user's API token.
pub async fn set_api_token(db: &Db, id: i64, digest: &str) -> Result<(), DbError> {
    user::ActiveModel {
        id: Set(id),
        api_token_hash: Set(Some(digest.to_owned())),
        updated_at: Set(Utc::now().naive_utc()),
        ..Default::default()
    }
    .update(&db.writes())
    .await?;
    Ok(())
}
