//! Rows of `journal_postings`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "journal_postings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub entry_key: String,
    pub ledger: String,
    pub account_id: Option<i64>,
    pub debit_fen: i64,
    pub credit_fen: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
