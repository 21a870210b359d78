//! Rows of `payments`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub out_trade_no: String,
    pub account_id: i64,
    pub channel: String,
    pub amount_fen: i64,
    pub status: String,
    pub idempotency_key: Option<String>,
    pub qr_code: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub last_queried_at: Option<DateTimeUtc>,
    pub gateway_trade_no: Option<String>,
    pub paid_at: Option<DateTimeUtc>,
    pub business_date: Option<Date>,
    pub refunded_fen: i64,
    pub cashier_id: Option<String>,
    pub receipt_no: Option<String>,
    pub settled_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
