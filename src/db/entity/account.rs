//! Rows of `accounts`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub account_no: String,
    pub holder_name: String,
    pub address: String,
    pub customer_class: String,
    pub household_size: i32,
    pub tariff_code: String,
    pub status: String,
    /// Mirrors the account's PREPAYMENT ledger; never below zero (`db::prepayment`).
    pub prepayment_fen: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
