//! Rows of `closures`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "closures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub starts_on: Date,
    pub ends_on: Date,
    pub scheduled_ends_on: Date,
    pub reason: String,
    pub waive_late_fees: bool,
    pub close_counters: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
