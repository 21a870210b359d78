//! Rows of `cashier_closes`: what the cashier counted against what the day's counter payments
//! and refunds say the drawer holds (`expected_fen` = `payments_fen` − `refunds_fen`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cashier_closes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub cashier_id: String,
    pub business_date: Date,
    pub expected_fen: i64,
    pub payments_fen: i64,
    pub refunds_fen: i64,
    pub counted_fen: i64,
    pub difference_fen: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
