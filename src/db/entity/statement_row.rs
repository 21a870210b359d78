//! Rows of `statement_rows`: one gateway statement line, kept with the run that imported it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "statement_rows")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: i64,
    pub line_no: i32,
    pub movement: String,
    pub out_trade_no: String,
    pub gateway_trade_no: String,
    pub refund_no: Option<String>,
    pub amount_fen: i64,
    pub settlement_fen: i64,
    pub fee: String,
    pub trade_time: DateTimeUtc,
    pub status: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
