//! Rows of `refunds`. `cashier_id` and `business_date` are set for a refund paid out in cash at
//! the counter (the cashier and the Beijing day, counted in that cashier's close) and null for
//! online refunds, which the gateways pay.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refunds")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub refund_no: String,
    pub payment_id: i64,
    pub amount_fen: i64,
    pub reason: String,
    pub status: String,
    pub gateway_refund_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    pub cashier_id: Option<String>,
    pub business_date: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
