//! Rows of `tariff_versions`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tariff_versions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub code: String,
    pub customer_class: String,
    pub effective_from: Date,
    pub tiers: String,
    pub sewage_price: String,
    pub resource_price: String,
    pub base_household_size: i32,
    pub extra_m3_per_person: i64,
    pub price_change: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
