//! Rows of `discrepancies`. Class, state, movement and action are stored by their domain
//! names; [`Model::item`] reads them back as the domain's values, and a name it does not know
//! is a corrupt row, never a default. `run_id` is empty for an item opened outside a
//! reconciliation run (a payment for an order finance had reversed).

use sea_orm::entity::prelude::*;

use crate::domain::discrepancy::{Action, Class, Corrupt, Item, State};
use crate::domain::reconcile::Movement;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "discrepancies")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: Option<i64>,
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

impl Model {
    /// The row as the discrepancy aggregate reads it.
    pub fn item(&self) -> Result<Item, Corrupt> {
        Ok(Item {
            state: State::parse(&self.state)?,
            class: Class::parse(&self.class)?,
            movement: Movement::parse(&self.movement)?,
            action: self.action.as_deref().map(Action::parse).transpose()?,
        })
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
