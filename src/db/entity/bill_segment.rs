//! Rows of `bill_segments`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bill_segments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub bill_no: String,
    pub meter_id: i64,
    pub meter_seq: i32,
    pub previous_index: i64,
    pub current_index: i64,
    pub volume_m3: i64,
    pub actual_index: Option<i64>,
    pub read_on: Date,
    pub last_actual_index: i64,
    pub last_actual_read_on: Date,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
