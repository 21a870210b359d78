//! Rows of `bills`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bills")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub bill_no: String,
    pub account_id: i64,
    pub period: String,
    pub estimated: bool,
    pub volume_m3: i64,
    pub period_from: Date,
    pub period_to: Date,
    pub total_fen: i64,
    pub principal_paid_fen: i64,
    pub late_fee_paid_fen: i64,
    pub prepayment_applied_fen: i64,
    pub status: String,
    pub issued_on: Date,
    pub due_on: Date,
    /// The bill's lines as JSON: see `db::bill_lines`.
    pub lines: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
