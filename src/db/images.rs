//! The images aggregate: pictures uploaded for posts, stored whole in the database so that
//! every box sharing it serves them.
//!
//! An image is named by the SHA-256 of its bytes: its content never changes under that name
//! (caches may keep it for good), and the same file uploaded twice is stored once — the second
//! [`insert`] finds the row there and leaves it. The data layer stores and fetches; which
//! types are accepted and how large is the application's rule.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use super::entity::image;
use super::{Db, DbError};

/// An image to store.
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    /// The SHA-256 of `data`, lower-case hex.
    pub id: &'a str,
    /// Its media type (`image/png`, ...).
    pub content_type: &'static str,
    /// The file.
    pub data: &'a [u8],
    /// Who uploads it.
    pub uploader_id: i64,
}

/// A stored image, as it is served.
#[derive(Debug, Clone, PartialEq, Eq, sea_orm::FromQueryResult)]
pub struct Stored {
    /// Its media type.
    pub content_type: String,
    /// The file.
    pub data: Vec<u8>,
}

/// Stores `image` unless an image with its name is already there; returns whether it was new
/// (two uploads of the same file at the same moment may both say so; one row is kept).
pub async fn insert(db: &Db, image: NewImage<'_>) -> Result<bool, DbError> {
    // Asked first: MySQL counts `ON DUPLICATE KEY` rows as affected, SQLite does not.
    let known = image::Entity::find_by_id(image.id.to_owned())
        .select_only()
        .column(image::Column::Id)
        .into_tuple::<String>()
        .one(&db.reads())
        .await?
        .is_some();
    if known {
        return Ok(false);
    }
    let row = image::ActiveModel {
        id: Set(image.id.to_owned()),
        content_type: Set(image.content_type.to_owned()),
        byte_len: Set(i64::try_from(image.data.len()).unwrap_or(i64::MAX)),
        data: Set(image.data.to_vec()),
        uploader_id: Set(image.uploader_id),
        created_at: Set(super::posts::now()),
    };
    image::Entity::insert(row)
        .on_conflict_do_nothing()
        .exec_without_returning(&db.writes())
        .await?;
    Ok(true)
}

/// The image named `id` (its SHA-256, hex), if there is one.
pub async fn by_id(db: &Db, id: &str) -> Result<Option<Stored>, DbError> {
    let found = image::Entity::find()
        .select_only()
        .column(image::Column::ContentType)
        .column(image::Column::Data)
        .filter(image::Column::Id.eq(id))
        .into_model::<Stored>()
        .one(&db.reads())
        .await?;
    Ok(found)
}
