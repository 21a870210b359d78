//! Rows of `bill_usage`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bill_usage")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub bill_no: String,
    pub account_id: i64,
    pub year: i32,
    pub volume_m3: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
