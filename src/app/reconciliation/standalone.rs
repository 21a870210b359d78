//! Discrepancies outside any reconciliation run: a gateway's word that an order was paid
//! after finance reversed it. Settlement holds the money in suspense (reason
//! `REVERSED_ORDER`) and opens one PAID_AFTER_REVERSAL item here for finance, in the same
//! transaction; a retried notification, our query or a later reconciliation of the same
//! gateway trade finds the item already open and opens no second one. Such items have no run
//! (`run_id` empty; the API lists them under run 0).

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::SERVICE_OPERATOR;
use crate::app::AppResult;
use crate::app::settlement::PaidEvidence;
use crate::db::entity::{account, discrepancy, discrepancy_action, payment};
use crate::domain::discrepancy::{Class, State};
use crate::domain::reconcile::Movement;

/// Opens (once per gateway trade) the item for a payment of the reversed `order`; returns
/// its id.
pub(crate) async fn open_paid_after_reversal(
    txn: &impl ConnectionTrait,
    order: &payment::Model,
    evidence: &PaidEvidence,
) -> AppResult<i64> {
    let existing = discrepancy::Entity::find()
        .filter(discrepancy::Column::RunId.is_null())
        .filter(discrepancy::Column::Class.eq(Class::PaidAfterReversal.as_str()))
        .filter(discrepancy::Column::OutTradeNo.eq(&order.out_trade_no))
        .filter(discrepancy::Column::GatewayTradeNo.eq(&evidence.gateway_trade_no))
        .one(txn)
        .await?;
    if let Some(item) = existing {
        return Ok(item.id);
    }
    let account_no = account::Entity::find_by_id(order.account_id)
        .one(txn)
        .await?
        .map(|a| a.account_no);
    let note = format!(
        "the gateway reports {} paid ({}) after it was reversed: the money is held in \
         suspense; REFUND it by hand, WRITE_OFF or EXPLAIN",
        order.out_trade_no, evidence.source
    );
    let item = discrepancy::ActiveModel {
        run_id: Set(None),
        class: Set(Class::PaidAfterReversal.as_str().to_owned()),
        state: Set(State::Open.as_str().to_owned()),
        movement: Set(Movement::Payment.as_str().to_owned()),
        out_trade_no: Set(order.out_trade_no.clone()),
        gateway_trade_no: Set(Some(evidence.gateway_trade_no.clone())),
        refund_no: Set(None),
        account_no: Set(account_no),
        // Our ledger holds none of it (the payment was reversed); the gateway all of it.
        ledger_fen: Set(Some(0)),
        gateway_fen: Set(Some(evidence.amount_fen)),
        difference_fen: Set(evidence.amount_fen),
        ledger_time: Set(order.paid_at),
        gateway_time: Set(Some(evidence.paid_at)),
        action: Set(None),
        operator: Set(None),
        note: Set(Some(note.clone())),
        resolved_at: Set(None),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    discrepancy_action::ActiveModel {
        discrepancy_id: Set(item.id),
        action: Set("OPEN".to_owned()),
        operator: Set(SERVICE_OPERATOR.to_owned()),
        note: Set(note),
        created_at: Set(evidence.paid_at),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    tracing::warn!(out_trade_no = %order.out_trade_no, discrepancy_id = item.id, "payment for a reversed order held in suspense");
    Ok(item.id)
}
