//! Reconciliation runs (domain rules section 6): one channel × business date against the
//! gateway's statement. The statement is fetched and parsed strictly before anything is
//! written; our ledger is matched against it by the pure `domain::reconcile`; GATEWAY_ONLY
//! payments of known orders are confirmed by a query and posted through `settle` (the same
//! path as a late notification, so never twice), unknown ones go to suspense; the run and
//! its discrepancies are recorded in one transaction.
//!
//! Idempotency: a run is keyed by (channel, date, statement SHA-256), so the same file finds
//! the same run; a different file is the next version, and items finance resolved in an
//! earlier version keep their resolution. Two replicas cannot record the same channel/date at
//! once: PostgreSQL takes an advisory transaction lock on the pair, SQLite's `BEGIN
//! IMMEDIATE` already admits one writer.

mod adjacent;
mod claim;
mod daily;
pub mod inputs;
pub(crate) mod ledger;
mod persist;
mod progress;
mod resolve;
mod standalone;
pub mod statement;

use std::path::Path;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

pub use progress::{OnPhase, ReconcilePhase};
pub use resolve::CashierClose;
pub(crate) use standalone::open_paid_after_reversal;

use super::reversal::REVERSED;
use super::settlement::{CLOSED, PENDING, PaidEvidence, PaymentChannel};
use super::{App, AppError, AppResult, validate};
use crate::db::entity::{discrepancy, payment, reconciliation_run};
use crate::domain::discrepancy::{Class as ItemClass, Corrupt, Refusal, State as ItemState};
use crate::domain::evidence::EvidenceSource;
use crate::domain::reconcile::{
    Class, Discrepancy, MatchOptions, Movement, Neighbours, ReconcileInput, State, reconcile,
};

/// Bound on gateway queries one run makes to confirm GATEWAY_ONLY payments; the rest stay
/// OPEN for the next run or for finance.
const REPAIR_QUERIES_MAX: usize = 1_000;

/// A recorded run and how many of its items still need finance.
#[derive(Debug, Clone)]
pub struct RunView {
    pub run: reconciliation_run::Model,
    pub open_count: u64,
    pub resolved_count: u64,
}

/// The operator name of changes the service makes on its own.
pub(crate) const SERVICE_OPERATOR: &str = "reconciliation";

/// A stored row that is not a valid discrepancy: an internal error, never read as a default.
pub(crate) fn corrupt(err: Corrupt) -> AppError {
    AppError::Database(sea_orm::DbErr::Custom(format!(
        "corrupt discrepancy row: {err}"
    )))
}

/// A transition the item's state does not allow, as the caller sees it.
pub(crate) fn refused(discrepancy_id: i64, refusal: Refusal) -> AppError {
    AppError::FailedPrecondition(format!("discrepancy {discrepancy_id}: {refusal}"))
}

/// What the service did about one GATEWAY_ONLY payment before recording the run.
#[derive(Debug, Clone)]
pub(crate) enum Repair {
    /// The gateway confirmed the payment of our order: post it.
    Confirmed(PaidEvidence),
    /// No order of ours on this channel has the number: suspense.
    Unknown(PaidEvidence),
    /// Nothing to post; finance reads why.
    Note(String),
}

/// Channel of a run: the online gateways (the counter closes through `close_cashier_day`).
pub fn parse_channel(text: &str) -> AppResult<PaymentChannel> {
    super::settlement::requested_channel(&text.to_ascii_uppercase())
}

impl App {
    /// Reconciles `channel` on `business_date` against `file`, or the downloaded statement.
    pub async fn run_reconciliation(
        &self,
        channel: &str,
        business_date: &str,
        file: Option<&Path>,
    ) -> AppResult<RunView> {
        self.run_reconciliation_with(channel, business_date, file, &progress::ignore)
            .await
    }

    /// `run_reconciliation`, telling `on_phase` where it is as it goes.
    pub async fn run_reconciliation_with(
        &self,
        channel: &str,
        business_date: &str,
        file: Option<&Path>,
        on_phase: OnPhase<'_>,
    ) -> AppResult<RunView> {
        let channel = parse_channel(channel)?;
        let date = validate::date("business_date", business_date)?;
        if channel == PaymentChannel::Counter {
            return Err(AppError::invalid(
                "channel",
                "COUNTER is reconciled by each cashier's CloseCashierDay",
            ));
        }
        let bytes = statement::fetch_bytes(self, channel, date, file, on_phase).await?;
        let sha256 = statement::sha256_hex(bytes.as_deref());
        if let Some(existing) = persist::find_run(&self.db, channel, date, &sha256).await? {
            on_phase(ReconcilePhase::AlreadyRecorded);
            return self.run_view(existing).await;
        }
        on_phase(ReconcilePhase::ParsingStatement);
        on_phase(ReconcilePhase::LoadingLedger);
        let inputs = inputs::gather(&self.db, channel, date, bytes).await?;
        let statement = &inputs.statement;
        let rows: Vec<_> = statement.rows.iter().map(ledger::gateway_row).collect();
        let input = ReconcileInput {
            payments: &inputs.ledger.payments,
            refunds: &inputs.ledger.refunds,
            statement: &rows,
            neighbours: Neighbours {
                statement_rows: &inputs.adjacent_rows,
                payments: &inputs.adjacent_payments,
            },
        };
        on_phase(ReconcilePhase::Matching);
        let result = reconcile(&input, &MatchOptions::new(date));
        let confirming =
            progress::Confirming::start(&result.discrepancies, REPAIR_QUERIES_MAX, on_phase);
        let mut repairs = self
            .repairs(channel, &result.discrepancies, &confirming)
            .await?;
        repairs.extend(
            self.ledger_only_notes(channel, &result.discrepancies, &confirming)
                .await,
        );
        on_phase(ReconcilePhase::Recording);
        let run =
            persist::record(self, channel, date, (statement, &rows), &result, &repairs).await?;
        self.run_view(run).await
    }

    /// Decides, per GATEWAY_ONLY payment, whether to post it (after the gateway confirms) or
    /// hold it in suspense. Index = position in `discrepancies`.
    async fn repairs(
        &self,
        channel: PaymentChannel,
        discrepancies: &[Discrepancy],
        confirming: &progress::Confirming<'_>,
    ) -> AppResult<Vec<(usize, Repair)>> {
        let mut repairs = Vec::new();
        let candidates = discrepancies.iter().enumerate().filter(|(_, d)| {
            d.class == Class::GatewayOnly
                && d.movement == Movement::Payment
                && d.state == State::Open
        });
        for (index, item) in candidates.take(REPAIR_QUERIES_MAX) {
            confirming.tick();
            let order = payment::Entity::find()
                .filter(payment::Column::OutTradeNo.eq(&item.out_trade_no))
                .one(&self.db)
                .await?;
            match order {
                Some(order) if order.channel == channel.as_str() => {
                    // A reversed order the gateway reports paid is held in suspense by `settle`.
                    if ![PENDING, CLOSED, REVERSED].contains(&order.status.as_str()) {
                        continue;
                    }
                    match self.query_paid(channel, &item.out_trade_no).await {
                        Ok(Some(mut evidence)) => {
                            evidence.source = EvidenceSource::Reconciliation;
                            repairs.push((index, Repair::Confirmed(evidence)));
                        }
                        Ok(None) => {}
                        Err(err) => {
                            tracing::info!(out_trade_no = %item.out_trade_no, error = %err, "reconciliation query inconclusive");
                        }
                    }
                }
                _ => repairs.push((index, Repair::Unknown(statement_evidence(item)))),
            }
        }
        Ok(repairs)
    }

    /// Asks the gateway about each open LEDGER_ONLY payment and says what it answered. A
    /// reversal is only ever proposed: finance decides with `resolve_discrepancy`.
    async fn ledger_only_notes(
        &self,
        channel: PaymentChannel,
        discrepancies: &[Discrepancy],
        confirming: &progress::Confirming<'_>,
    ) -> Vec<(usize, Repair)> {
        let candidates = discrepancies.iter().enumerate().filter(|(_, d)| {
            d.class == Class::LedgerOnly
                && d.movement == Movement::Payment
                && d.state == State::Open
        });
        let mut notes = Vec::new();
        for (index, item) in candidates.take(REPAIR_QUERIES_MAX) {
            confirming.tick();
            let note = match self.query_paid(channel, &item.out_trade_no).await {
                Ok(Some(evidence)) => format!(
                    "the gateway reports it paid at {} but the statement has no row; \
                     look in the adjacent day's statement before any reversal",
                    evidence
                        .paid_at
                        .with_timezone(&crate::gateway::beijing::BEIJING)
                ),
                Ok(None) => "the gateway does not report it paid: REVERSE proposed".to_owned(),
                Err(err) => format!("the gateway query was inconclusive ({err})"),
            };
            notes.push((index, Repair::Note(note)));
        }
        notes
    }

    pub async fn get_reconciliation_run(&self, run_id: i64) -> AppResult<RunView> {
        let run = reconciliation_run::Entity::find_by_id(run_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("reconciliation run {run_id} not found")))?;
        self.run_view(run).await
    }

    async fn run_view(&self, run: reconciliation_run::Model) -> AppResult<RunView> {
        let items = discrepancy::Entity::find()
            .filter(discrepancy::Column::RunId.eq(run.id))
            .all(&self.db)
            .await?;
        let mut open_count = 0;
        for item in &items {
            if ItemState::parse(&item.state)
                .map_err(corrupt)?
                .needs_finance()
            {
                open_count += 1;
            }
        }
        let resolved_count = items.len() as u64 - open_count;
        Ok(RunView {
            run,
            open_count,
            resolved_count,
        })
    }

    /// The run's discrepancies, optionally of one class and/or state. Run 0 lists the items
    /// opened outside any run (payments for orders finance had reversed).
    pub async fn list_discrepancies(
        &self,
        run_id: i64,
        class: &str,
        state: &str,
    ) -> AppResult<Vec<discrepancy::Model>> {
        let mut query = discrepancy::Entity::find().order_by_asc(discrepancy::Column::Id);
        if run_id == 0 {
            query = query.filter(discrepancy::Column::RunId.is_null());
        } else {
            self.get_reconciliation_run(run_id).await?;
            query = query.filter(discrepancy::Column::RunId.eq(run_id));
        }
        if !class.is_empty() {
            let class = ItemClass::parse(class).map_err(|e| AppError::invalid("class", e))?;
            query = query.filter(discrepancy::Column::Class.eq(class.as_str()));
        }
        if !state.is_empty() {
            let state = ItemState::parse(state).map_err(|e| AppError::invalid("state", e))?;
            query = query.filter(discrepancy::Column::State.eq(state.as_str()));
        }
        Ok(query.all(&self.db).await?)
    }
}

/// What the statement row says about a payment nobody of ours ordered.
fn statement_evidence(item: &Discrepancy) -> PaidEvidence {
    let paid_at = item
        .gateway_time
        .and_then(super::payments::beijing_to_utc)
        .unwrap_or_default();
    PaidEvidence {
        out_trade_no: item.out_trade_no.clone(),
        gateway_trade_no: item.gateway_trade_no.clone().unwrap_or_default(),
        amount_fen: item.gateway_fen.unwrap_or(0),
        paid_at,
        source: EvidenceSource::Reconciliation,
    }
}
