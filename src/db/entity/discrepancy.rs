//! Rows of `discrepancies`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "discrepancies")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: i64,
    pub class: String,
    pub state: String,
    pub movement: String,
    pub out_trade_no: String,
    pub gateway_trade_no: Option<String>,
    pub refund_no: Option<String>,
    pub account_no: Option<String>,
    pub ledger_fen: Option<i64>,
    pub gateway_fen: Option<i64>,
    pub difference_fen: i64,
    pub ledger_time: Option<DateTimeUtc>,
    pub gateway_time: Option<DateTimeUtc>,
    pub action: Option<String>,
    pub operator: Option<String>,
    pub note: Option<String>,
    pub resolved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
