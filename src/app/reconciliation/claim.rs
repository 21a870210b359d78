//! Claiming a discrepancy and the REFUND resolution that acts after its claim is committed.
//!
//! A claim is the item's conditional move out of OPEN/HELD: of two concurrent resolutions
//! exactly one moves it, and the other learns it lost before it has done anything. A gateway
//! REFUND commits its claim (RESOLVING, with the refund number derived from the discrepancy
//! stored on the item) before it asks for the refund, so a crash or an inconclusive gateway
//! leaves an item that says a refund is under way, and a retry by anyone continues that same
//! refund instead of starting another.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::resolve::{Request, find_discrepancy_in, with_outcome};
use super::{corrupt, refused};
use crate::app::refunds::{REFUND_FAILED, REFUND_PENDING, REFUND_SUCCEEDED};
use crate::app::{App, AppError, AppResult};
use crate::db::entity::{discrepancy, discrepancy_action, refund};
use crate::domain::discrepancy::{Action, Event, State, transition};
use crate::domain::money::Money;

/// The audit name of a REFUND claim given back because nothing was paid.
const RELEASE: &str = "RELEASE";

impl App {
    /// REFUND gives a DUPLICATE payment back through its gateway (from the account's
    /// prepayment, where the second payment landed). The claim (RESOLVING, with the refund
    /// number derived from the discrepancy) is committed first; the refund is then asked for,
    /// and what the refund row says afterwards decides: SUCCEEDED resolves the item, PENDING
    /// leaves it RESOLVING (a retry by anyone continues the same refund), no refund or a
    /// FAILED one means nothing was paid and the item is open again.
    pub(super) async fn refund_resolution(
        &self,
        request: Request,
        continues: bool,
    ) -> AppResult<discrepancy::Model> {
        let row = &request.row;
        let refund_no = match (&row.refund_no, continues) {
            (Some(number), true) => number.clone(),
            _ => next_refund_no(&self.db, row.id).await?,
        };
        let amount = Money::from_fen(row.ledger_fen.unwrap_or_default());
        let now = self.now();
        let txn = crate::db::begin_write(&self.db).await?;
        let outcome = if continues {
            format!("continues refund {refund_no} of {amount}")
        } else {
            let note = with_outcome(
                &request.note,
                &format!("refund {refund_no} of {amount} requested"),
            );
            let claim = Claim {
                id: row.id,
                to: State::Resolving,
                action: Action::Refund,
                operator: &request.operator,
                note: &note,
                refund_no: Some(&refund_no),
            };
            claim.commit_to(&txn, now).await?;
            format!("claimed; refund {refund_no} of {amount} requested")
        };
        let audit_note = with_outcome(&request.note, &outcome);
        append_audit(
            &txn,
            row.id,
            Action::Refund.as_str(),
            &request.operator,
            &audit_note,
            now,
        )
        .await?;
        txn.commit().await?;

        let reason = if request.note.is_empty() {
            "duplicate payment"
        } else {
            request.note.as_str()
        };
        let asked = self
            .refund_payment(&row.out_trade_no, &amount.to_string(), reason, &refund_no)
            .await;
        let status = refund::Entity::find()
            .filter(refund::Column::RefundNo.eq(&refund_no))
            .one(&self.db)
            .await?
            .map(|r| r.status);
        match status.as_deref() {
            Some(REFUND_SUCCEEDED) => {
                let outcome = format!("refund {refund_no} of {amount}: SUCCEEDED");
                self.finish_refund_claim(&request, &outcome).await
            }
            Some(REFUND_PENDING) => {
                asked?;
                find_discrepancy_in(&self.db, row.id).await
            }
            None | Some(REFUND_FAILED) => {
                let why = match &asked {
                    Err(err) => err.to_string(),
                    Ok(_) => "the gateway refused it".to_owned(),
                };
                self.release_refund_claim(&request, &refund_no, &why)
                    .await?;
                Err(asked.err().unwrap_or_else(|| {
                    AppError::FailedPrecondition(format!("refund {refund_no}: {why}"))
                }))
            }
            Some(other) => Err(AppError::Database(sea_orm::DbErr::Custom(format!(
                "refund {refund_no} has the unknown status {other:?}"
            )))),
        }
    }

    /// The refund is paid: RESOLVING -> RESOLVED, conditionally, so of two callers finishing
    /// one refund only one records it; the other is told it was resolved meanwhile.
    async fn finish_refund_claim(
        &self,
        request: &Request,
        outcome: &str,
    ) -> AppResult<discrepancy::Model> {
        let id = request.row.id;
        let now = self.now();
        let txn = crate::db::begin_write(&self.db).await?;
        let current = find_discrepancy_in(&txn, id).await?;
        let step = transition(current.item().map_err(corrupt)?, Event::RefundConfirmed)
            .map_err(|refusal| refused(id, refusal))?;
        let note = with_outcome(&request.note, outcome);
        let moved = discrepancy::Entity::update_many()
            .col_expr(discrepancy::Column::State, Expr::value(step.state.as_str()))
            .col_expr(
                discrepancy::Column::Operator,
                Expr::value(request.operator.clone()),
            )
            .col_expr(discrepancy::Column::Note, Expr::value(note.clone()))
            .col_expr(discrepancy::Column::ResolvedAt, Expr::value(now))
            .filter(discrepancy::Column::Id.eq(id))
            .filter(discrepancy::Column::State.eq(State::Resolving.as_str()))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 {
            return Err(AppError::FailedPrecondition(format!(
                "discrepancy {id} was resolved meanwhile"
            )));
        }
        append_audit(
            &txn,
            id,
            Action::Refund.as_str(),
            &request.operator,
            &note,
            now,
        )
        .await?;
        let updated = find_discrepancy_in(&txn, id).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Nothing was paid: RESOLVING -> OPEN, with an audit row saying why. The next REFUND
    /// claim asks under a new refund number.
    async fn release_refund_claim(
        &self,
        request: &Request,
        refund_no: &str,
        why: &str,
    ) -> AppResult<()> {
        let id = request.row.id;
        let now = self.now();
        let txn = crate::db::begin_write(&self.db).await?;
        // Asked again under the write lock: a concurrent continuation may have booked the
        // refund since; then it is under way, and the claim stays.
        let booked = refund::Entity::find()
            .filter(refund::Column::RefundNo.eq(refund_no))
            .filter(refund::Column::Status.ne(REFUND_FAILED))
            .one(&txn)
            .await?;
        if booked.is_some() {
            return Ok(());
        }
        let current = find_discrepancy_in(&txn, id).await?;
        let step = transition(current.item().map_err(corrupt)?, Event::RefundRefused)
            .map_err(|refusal| refused(id, refusal))?;
        let note = format!("[refund {refund_no} not paid ({why}); open again]");
        let moved = discrepancy::Entity::update_many()
            .col_expr(discrepancy::Column::State, Expr::value(step.state.as_str()))
            .col_expr(
                discrepancy::Column::Action,
                Expr::value(Option::<String>::None),
            )
            .col_expr(discrepancy::Column::Note, Expr::value(note.clone()))
            .filter(discrepancy::Column::Id.eq(id))
            .filter(discrepancy::Column::State.eq(State::Resolving.as_str()))
            .filter(discrepancy::Column::RefundNo.eq(refund_no))
            .exec(&txn)
            .await?;
        if moved.rows_affected == 1 {
            append_audit(&txn, id, RELEASE, &request.operator, &note, now).await?;
        }
        txn.commit().await?;
        Ok(())
    }
}

/// A claim: the item's move out of OPEN/HELD to `to`, conditional on it still being there.
pub(super) struct Claim<'a> {
    pub(super) id: i64,
    pub(super) to: State,
    pub(super) action: Action,
    pub(super) operator: &'a str,
    pub(super) note: &'a str,
    /// The refund a REFUND claim requests.
    pub(super) refund_no: Option<&'a str>,
}

impl Claim<'_> {
    /// Writes the claim in `txn`; a claim that finds the item taken is a lost race.
    pub(super) async fn commit_to(
        &self,
        txn: &impl ConnectionTrait,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<()> {
        let mut update = discrepancy::Entity::update_many()
            .col_expr(discrepancy::Column::State, Expr::value(self.to.as_str()))
            .col_expr(
                discrepancy::Column::Action,
                Expr::value(self.action.as_str()),
            )
            .col_expr(discrepancy::Column::Operator, Expr::value(self.operator))
            .col_expr(discrepancy::Column::Note, Expr::value(self.note));
        if self.to == State::Resolved {
            update = update.col_expr(discrepancy::Column::ResolvedAt, Expr::value(now));
        }
        if let Some(refund_no) = self.refund_no {
            update = update.col_expr(discrepancy::Column::RefundNo, Expr::value(refund_no));
        }
        let claimed = update
            .filter(discrepancy::Column::Id.eq(self.id))
            .filter(discrepancy::Column::State.is_in([State::Open.as_str(), State::Held.as_str()]))
            .exec(txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(AppError::Conflict(format!(
                "discrepancy {} was claimed by a concurrent resolution; read it again",
                self.id
            )));
        }
        Ok(())
    }
}

/// Appends one row to the item's audit trail.
pub(super) async fn append_audit(
    txn: &impl ConnectionTrait,
    discrepancy_id: i64,
    action: &str,
    operator: &str,
    note: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    discrepancy_action::ActiveModel {
        discrepancy_id: Set(discrepancy_id),
        action: Set(action.to_owned()),
        operator: Set(operator.to_owned()),
        note: Set(note.to_owned()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// The refund number a new REFUND claim requests: `RC-<id>`, derived from the discrepancy so
/// a retry finds the same refund; after a release (nothing was paid under the earlier
/// number) `RC-<id>-<n>`, n counting the releases.
async fn next_refund_no(db: &impl ConnectionTrait, discrepancy_id: i64) -> AppResult<String> {
    let releases = discrepancy_action::Entity::find()
        .filter(discrepancy_action::Column::DiscrepancyId.eq(discrepancy_id))
        .filter(discrepancy_action::Column::Action.eq(RELEASE))
        .order_by_asc(discrepancy_action::Column::Id)
        .all(db)
        .await?
        .len();
    Ok(match releases {
        0 => format!("RC-{discrepancy_id}"),
        n => format!("RC-{discrepancy_id}-{n}"),
    })
}
