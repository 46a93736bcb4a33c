//! The settings aggregate: the site's editable settings (title, tagline, ...), one row per key.
//!
//! Read whole ([`all`]) and written several at once in one transaction ([`set_many`]): a
//! failed write leaves nothing half-written.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, Set};

use super::entity::setting;
use super::{Db, DbError};

/// Every stored setting, by key.
pub async fn all(db: &Db) -> Result<BTreeMap<String, String>, DbError> {
    Ok(setting::Entity::find()
        .all(&db.reads())
        .await?
        .into_iter()
        .map(|row| (row.key, row.value))
        .collect())
}

/// Stores every `(key, value)` pair (inserted, or replacing the stored value), all or none.
pub async fn set_many(db: &Db, pairs: &[(&str, &str)]) -> Result<(), DbError> {
    let now = Utc::now().naive_utc();
    let txn = db.begin().await?;
    for (key, value) in pairs {
        let row = setting::ActiveModel {
            key: Set((*key).to_owned()),
            value: Set((*value).to_owned()),
            updated_at: Set(now),
        };
        setting::Entity::insert(row)
            .on_conflict(
                OnConflict::column(setting::Column::Key)
                    .update_columns([setting::Column::Value, setting::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}
