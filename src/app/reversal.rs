//! Reversing a posted payment the gateway never took (finance's REVERSE of a LEDGER_ONLY
//! item, domain rules section 6). Never automatic: the caller has already asked the gateway
//! and been told the order is not paid.
//!
//! The journal is append-only, so a reversal adds: the opposite of the payment's journal
//! entry under the unique key `PAYMENT_REVERSED:<order>` (so it cannot happen twice), and the
//! bills' paid amounts and statuses put back; the payment's allocation rows stay as history. The part that went to
//! prepayment must still be there; if the customer already used or refunded it, the reversal
//! is refused and finance handles the account by hand.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::settlement::{payment_status, refused, stored, write_bill_balances, write_entry};
use super::{AppError, AppResult};
use crate::db::entity::{bill, payment, payment_allocation};
use crate::db::{prepayment, queries};
use crate::domain::allocation::{Allocation, BillAllocation};
use crate::domain::journal::PAYMENT_REVERSED;
use crate::domain::money::Money;
use crate::domain::payment::{PaymentEvent, PaymentStatus};
use crate::domain::posting::{self, AccountBooks, PostingRefusal};

pub const REVERSED: &str = PaymentStatus::Reversed.as_str();

/// How the payment was shared, rebuilt from its allocation rows.
async fn allocation_of(
    txn: &impl ConnectionTrait,
    order: &payment::Model,
) -> AppResult<Allocation> {
    let rows = payment_allocation::Entity::find()
        .filter(payment_allocation::Column::PaymentId.eq(order.id))
        .all(txn)
        .await?;
    let mut bills: Vec<BillAllocation> = Vec::new();
    for row in rows {
        let part = BillAllocation {
            bill_no: row.bill_no,
            late_fee: Money::from_fen(row.late_fee_fen),
            principal: Money::from_fen(row.principal_fen),
        };
        match bills.iter_mut().find(|b| b.bill_no == part.bill_no) {
            Some(known) => {
                known.late_fee += part.late_fee;
                known.principal += part.principal;
            }
            None => bills.push(part),
        }
    }
    let to_bills: Money = bills.iter().map(BillAllocation::total).sum();
    Ok(Allocation {
        bills,
        to_prepayment: Money::from_fen(order.amount_fen) - to_bills,
    })
}

/// Reverses `out_trade_no` inside the caller's transaction, posted on `posted_on`.
pub async fn reverse_payment(
    txn: &impl ConnectionTrait,
    out_trade_no: &str,
    posted_on: chrono::NaiveDate,
) -> AppResult<()> {
    let order = payment::Entity::find()
        .filter(payment::Column::OutTradeNo.eq(out_trade_no))
        .one(txn)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("order {out_trade_no} not found")))?;
    let account = prepayment::lock_account(txn, order.account_id).await?;
    let next = payment_status(&order)?
        .on(PaymentEvent::Reverse)
        .map_err(|refusal| {
            AppError::FailedPrecondition(format!(
                "order {out_trade_no}: {refusal}; only a posted, unrefunded payment can be reversed"
            ))
        })?;
    let moved = payment::Entity::update_many()
        .col_expr(payment::Column::Status, Expr::value(next.as_str()))
        .filter(payment::Column::Id.eq(order.id))
        .filter(
            payment::Column::Status.is_in(stored(PaymentStatus::accepting(PaymentEvent::Reverse))),
        )
        .filter(payment::Column::RefundedFen.eq(0))
        .exec(txn)
        .await?;
    if moved.rows_affected != 1 {
        return Err(AppError::FailedPrecondition(format!(
            "order {out_trade_no} is {} (refunded {} fen): only a posted, unrefunded payment can be reversed",
            order.status, order.refunded_fen
        )));
    }
    let allocation = allocation_of(txn, &order).await?;
    let bill_nos: Vec<&str> = allocation
        .bills
        .iter()
        .map(|b| b.bill_no.as_str())
        .collect();
    let rows = bill::Entity::find()
        .filter(bill::Column::BillNo.is_in(bill_nos))
        .all(txn)
        .await?;
    let books = AccountBooks {
        bills: rows
            .iter()
            .map(queries::booked_bill)
            .collect::<crate::db::DbResult<_>>()?,
        prepayment: Money::from_fen(account.prepayment_fen),
    };
    let channel = super::settlement::stored_channel(&order.channel)?;
    let effect = match posting::take_back(&books, &allocation, channel.ledger()) {
        Ok(effect) => effect,
        Err(PostingRefusal::PrepaymentShort { held, needed }) => {
            return Err(AppError::FailedPrecondition(format!(
                "{needed} of order {out_trade_no} went to prepayment but the account holds only {held}; \
                 the customer already used it, so the reversal needs a manual adjustment"
            )));
        }
        Err(other) => return Err(refused(other)),
    };
    write_bill_balances(txn, &rows, &effect.bills).await?;
    write_entry(
        txn,
        &format!("{PAYMENT_REVERSED}:{out_trade_no}"),
        &effect.entry,
        Some(order.account_id),
        posted_on,
    )
    .await
}
