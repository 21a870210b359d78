//! Rows of `discrepancy_actions`: append-only, never updated.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "discrepancy_actions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub discrepancy_id: i64,
    pub action: String,
    pub operator: String,
    pub note: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
