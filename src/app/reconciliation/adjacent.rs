//! What one business date's run keeps for its neighbours: the statement rows it imported, and
//! the re-check of the adjacent dates' HELD items once this date's statement is known.
//!
//! A run stores its statement rows (with the run, so with the file's hash). A later run of the
//! previous or next date reads them as [`Neighbours`](crate::domain::reconcile::Neighbours),
//! and this run settles the items the adjacent dates held near midnight: found with the same
//! amount → AUTO_RESOLVED, not there → OPEN for finance. Each change is appended to the
//! item's audit trail under the operator `reconciliation`.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, Set,
};

use super::persist::latest_run;
use super::{SERVICE_OPERATOR, corrupt};
use crate::app::payments::beijing_to_utc;
use crate::app::settlement::PaymentChannel;
use crate::app::{AppError, AppResult};
use crate::db::entity::{discrepancy, discrepancy_action, statement_row};
use crate::db::writes::insert_chunked;
use crate::domain::discrepancy::{Action, Event, State, transition};
use crate::domain::reconcile::{GatewayRow, HeldItem, HeldVerdict, Movement, recheck_held};
use crate::gateway::beijing::BEIJING;
use crate::gateway::statement::{RowKind, Statement};

/// Statement rows built and written per batch, so a big file never doubles in memory.
const STORE_BATCH_ROWS: usize = 5_000;

/// A stored movement name (`PAYMENT` or `REFUND`) as the matcher's type; anything else is a
/// corrupt row.
fn movement_of(name: &str) -> AppResult<Movement> {
    Movement::parse(name).map_err(corrupt)
}

fn movement_name(kind: RowKind) -> &'static str {
    match kind {
        RowKind::Payment => "PAYMENT",
        RowKind::Refund => "REFUND",
    }
}

/// Writes the run's statement rows.
pub async fn store_rows(
    txn: &impl ConnectionTrait,
    run_id: i64,
    statement: &Statement,
) -> AppResult<()> {
    for chunk in statement.rows.chunks(STORE_BATCH_ROWS) {
        let mut batch = Vec::with_capacity(chunk.len());
        for row in chunk {
            let trade_time = beijing_to_utc(row.trade_time).ok_or_else(|| {
                AppError::invalid(
                    "statement",
                    format!(
                        "line {}: no such Beijing time {}",
                        row.line_no, row.trade_time
                    ),
                )
            })?;
            batch.push(statement_row::ActiveModel {
                run_id: Set(run_id),
                line_no: Set(i32::try_from(row.line_no).unwrap_or(i32::MAX)),
                movement: Set(movement_name(row.kind).to_owned()),
                out_trade_no: Set(row.out_trade_no.clone()),
                gateway_trade_no: Set(row.gateway_trade_no.clone()),
                refund_no: Set(row.refund_no.clone()),
                amount_fen: Set(row.amount_fen),
                settlement_fen: Set(row.settlement_fen),
                fee: Set(row.fee.to_string()),
                trade_time: Set(trade_time),
                status: Set(row.status.clone()),
                ..Default::default()
            });
        }
        insert_chunked::<statement_row::Entity, _>(txn, batch).await?;
    }
    Ok(())
}

type StoredRow = (
    i32,
    String,
    String,
    String,
    Option<String>,
    i64,
    DateTime<Utc>,
);

/// The stored rows of a run, as the matcher reads statement rows.
async fn run_rows(db: &impl ConnectionTrait, run_id: i64) -> AppResult<Vec<GatewayRow<'static>>> {
    use statement_row::Column as C;
    let rows: Vec<StoredRow> = statement_row::Entity::find()
        .select_only()
        .columns([
            C::LineNo,
            C::Movement,
            C::OutTradeNo,
            C::GatewayTradeNo,
            C::RefundNo,
            C::AmountFen,
            C::TradeTime,
        ])
        .filter(C::RunId.eq(run_id))
        .into_tuple()
        .all(db)
        .await?;
    rows.into_iter()
        .map(
            |(line_no, movement, out_trade_no, gateway_trade_no, refund_no, amount_fen, at)| {
                Ok(GatewayRow {
                    movement: movement_of(&movement)?,
                    out_trade_no: out_trade_no.into(),
                    gateway_trade_no: gateway_trade_no.into(),
                    refund_no: refund_no.map(Into::into),
                    amount_fen,
                    // Fees are not needed to recognise a row on an adjacent day.
                    fee: rust_decimal::Decimal::ZERO,
                    trade_time: at.with_timezone(&BEIJING).naive_local(),
                    line_no: usize::try_from(line_no).unwrap_or_default(),
                })
            },
        )
        .collect()
}

/// The previous and next dates' statement rows, from their newest runs (empty when a date
/// has not been reconciled yet).
pub async fn neighbour_rows(
    db: &impl ConnectionTrait,
    channel: PaymentChannel,
    date: NaiveDate,
) -> AppResult<Vec<GatewayRow<'static>>> {
    let mut rows = Vec::new();
    for day in [date.pred_opt(), date.succ_opt()].into_iter().flatten() {
        if let Some(run) = latest_run(db, channel, day).await? {
            rows.extend(run_rows(db, run.id).await?);
        }
    }
    Ok(rows)
}

fn held_item(item: &discrepancy::Model) -> AppResult<HeldItem> {
    Ok(HeldItem {
        movement: movement_of(&item.movement)?,
        out_trade_no: item.out_trade_no.clone(),
        refund_no: item.refund_no.clone(),
        amount_fen: item.ledger_fen.unwrap_or_default(),
        at: item
            .ledger_time
            .unwrap_or_default()
            .with_timezone(&BEIJING)
            .naive_local(),
    })
}

/// Settles the adjacent dates' HELD items against `date`'s statement `rows`. Returns how many
/// items changed state.
pub async fn settle_held(
    txn: &impl ConnectionTrait,
    channel: PaymentChannel,
    date: NaiveDate,
    rows: &[GatewayRow<'_>],
    now: DateTime<Utc>,
) -> AppResult<usize> {
    let mut changed = 0;
    for day in [date.pred_opt(), date.succ_opt()].into_iter().flatten() {
        let Some(run) = latest_run(txn, channel, day).await? else {
            continue;
        };
        let held = discrepancy::Entity::find()
            .filter(discrepancy::Column::RunId.eq(run.id))
            .filter(discrepancy::Column::State.eq(State::Held.as_str()))
            .all(txn)
            .await?;
        let items: Vec<HeldItem> = held.iter().map(held_item).collect::<AppResult<_>>()?;
        let verdicts = recheck_held(&items, day, rows, date);
        for (item, verdict) in held.into_iter().zip(verdicts) {
            if settle_one(txn, item, verdict, date, now).await? {
                changed += 1;
            }
        }
    }
    Ok(changed)
}

async fn settle_one(
    txn: &impl ConnectionTrait,
    item: discrepancy::Model,
    verdict: HeldVerdict,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let current = item.item().map_err(corrupt)?;
    let (event, action, note) = match verdict {
        HeldVerdict::NotThisDay => return Ok(false),
        HeldVerdict::Found { line_no } => (
            Event::HeldFound,
            Action::Explain.as_str(),
            format!("on line {line_no} of the {date} statement: the gateway dated it that day"),
        ),
        HeldVerdict::Missing => (
            Event::HeldMissing,
            "REOPEN",
            format!(
                "not on the {date} statement either: query the gateway, then REVERSE or EXPLAIN"
            ),
        ),
    };
    let state = transition(current, event)
        .map_err(|refusal| super::refused(item.id, refusal))?
        .state;
    discrepancy_action::ActiveModel {
        discrepancy_id: Set(item.id),
        action: Set(action.to_owned()),
        operator: Set(SERVICE_OPERATOR.to_owned()),
        note: Set(note.clone()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let resolved = state == State::AutoResolved;
    let mut row = item.into_active_model();
    row.state = Set(state.as_str().to_owned());
    row.note = Set(Some(note));
    if resolved {
        row.action = Set(Some(action.to_owned()));
        row.operator = Set(Some(SERVICE_OPERATOR.to_owned()));
        row.resolved_at = Set(Some(now));
    }
    row.update(txn).await?;
    Ok(true)
}
