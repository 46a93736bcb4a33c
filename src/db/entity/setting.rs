//! `settings`: the site's editable settings (title, tagline, ...), one row per key.

use sea_orm::entity::prelude::*;

/// One setting.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "settings")]
pub struct Model {
    /// The setting's name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Its value.
    #[sea_orm(column_type = "Text")]
    pub value: String,
    /// When it last changed (UTC).
    pub updated_at: DateTime,
}

/// Links to other tables.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
