//! Rows of `reconciliation_runs`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reconciliation_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub channel: String,
    pub business_date: Date,
    pub version: i32,
    pub status: String,
    pub statement_sha256: String,
    pub ledger_count: i64,
    pub gateway_count: i64,
    pub matched_count: i64,
    pub matched_fen: i64,
    pub gateway_only_count: i64,
    pub gateway_only_fen: i64,
    pub ledger_only_count: i64,
    pub ledger_only_fen: i64,
    pub amount_mismatch_count: i64,
    pub amount_mismatch_fen: i64,
    pub status_mismatch_count: i64,
    pub status_mismatch_fen: i64,
    pub duplicate_count: i64,
    pub duplicate_fen: i64,
    pub ledger_total_fen: i64,
    pub gateway_total_fen: i64,
    pub gateway_refunds_fen: i64,
    pub fee_total: String,
    pub net_settlement: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
