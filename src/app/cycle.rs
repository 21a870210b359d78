//! The billing cycle: bills every active account for a period, in batches of
//! `cycle_batch_size` accounts, one transaction per batch, reporting progress after each.
//! Resumable by construction: accounts already billed for the period are counted and left
//! alone, so re-running a period issues only what is missing.
//!
//! Each batch is one transaction that locks its accounts' rows, reads what they need, drafts
//! and writes their bills, so a bill is drafted only from data read under the lock that
//! writes it (a concurrent refund cannot spend the prepayment the bill applies). On
//! PostgreSQL two batches overlap: while one commits, the next (its accounts disjoint) locks,
//! reads and drafts on another connection; on SQLite, which has one writer, batches run one
//! after another. Progress is reported only for committed batches, in order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::NaiveDate;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::accounts::ACTIVE;
use super::billing::{AccountOutcome, check_period, prepare_batch, write_and_commit};
use super::validate;
use super::{App, AppError, AppResult};
use crate::db::entity::{account, bill};
use crate::db::{prepayment, queries};
use crate::domain::calendar::Period;
use crate::domain::tariff::TariffVersion;

/// Progress messages buffered for a slow client before the cycle waits for it.
const PROGRESS_BUFFER: usize = 16;
/// Batch transactions open at once on PostgreSQL: one commits while the next reads and
/// drafts under its own (disjoint) account locks. Memory stays bounded by two batches.
const IN_FLIGHT_MAX_POSTGRES: usize = 2;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CycleProgress {
    pub total: u64,
    pub processed: u64,
    pub issued: u64,
    pub skipped: u64,
    pub failed: u64,
    pub already_billed: u64,
    pub done: bool,
}

impl App {
    /// Validates the request, then runs the cycle in the background, streaming progress.
    /// The cycle finishes even if the receiver goes away: its work is committed batch by batch.
    pub fn start_billing_cycle(
        &self,
        period: &str,
        issued_on: &str,
    ) -> AppResult<mpsc::Receiver<AppResult<CycleProgress>>> {
        let (period, issued_on) = self.cycle_request(period, issued_on)?;
        let (sender, receiver) = mpsc::channel(PROGRESS_BUFFER);
        let app = self.clone();
        tokio::spawn(async move {
            let progress_sender = sender.clone();
            let outcome = app
                .run_billing_cycle(period, issued_on, |progress| {
                    let _ = progress_sender.try_send(Ok(progress));
                })
                .await;
            let last = match outcome {
                Ok(progress) => Ok(progress),
                Err(err) => {
                    tracing::error!(error = ?err, %period, "billing cycle failed");
                    Err(err)
                }
            };
            let _ = sender.send(last).await;
        });
        Ok(receiver)
    }

    pub fn cycle_request(&self, period: &str, issued_on: &str) -> AppResult<(Period, NaiveDate)> {
        let period = validate::period("period", period)?;
        let today = self.today();
        let issued_on = validate::date_or("issued_on", issued_on, today)?;
        check_period(period, issued_on, today)?;
        Ok((period, issued_on))
    }

    /// Runs the whole cycle, calling `on_progress` after every committed batch; returns the
    /// final tally.
    pub async fn run_billing_cycle(
        &self,
        period: Period,
        issued_on: NaiveDate,
        mut on_progress: impl FnMut(CycleProgress),
    ) -> AppResult<CycleProgress> {
        let active = account::Entity::find().filter(account::Column::Status.eq(ACTIVE));
        let mut progress = CycleProgress {
            total: active.clone().count(&self.db).await?,
            ..Default::default()
        };
        let versions = Arc::new(queries::tariff_versions_by_code(&self.db).await?);
        // SQLite has one writer at a time: a second batch would only wait on the busy timeout.
        let in_flight_max = match self.db.get_database_backend() {
            DatabaseBackend::Postgres => IN_FLIGHT_MAX_POSTGRES,
            _ => 1,
        };
        let mut cursor = 0_i64;
        let mut in_flight: VecDeque<JoinHandle<AppResult<CycleProgress>>> = VecDeque::new();
        loop {
            let ids: Vec<i64> = active
                .clone()
                .select_only()
                .column(account::Column::Id)
                .filter(account::Column::Id.gt(cursor))
                .order_by_asc(account::Column::Id)
                .limit(self.settings.cycle_batch_size as u64)
                .into_tuple()
                .all(&self.db)
                .await?;
            let Some(&last) = ids.last() else { break };
            cursor = last;
            while in_flight.len() >= in_flight_max {
                let Some(write) = in_flight.pop_front() else {
                    break;
                };
                progress.add(&join_write(write).await?);
                on_progress(progress);
            }
            let app = self.clone();
            let versions = Arc::clone(&versions);
            in_flight.push_back(tokio::spawn(async move {
                app.bill_cycle_batch(ids, period, issued_on, &versions)
                    .await
            }));
        }
        while let Some(write) = in_flight.pop_front() {
            progress.add(&join_write(write).await?);
            if !in_flight.is_empty() {
                on_progress(progress);
            }
        }
        progress.done = true;
        on_progress(progress);
        Ok(progress)
    }

    /// Bills one batch of account ids in one transaction and returns what it counted. If a
    /// unique key refuses the batch (a writer that does not take the account lock billed one
    /// of them meanwhile), the accounts are billed one by one instead.
    async fn bill_cycle_batch(
        &self,
        ids: Vec<i64>,
        period: Period,
        issued_on: NaiveDate,
        versions: &HashMap<String, Vec<TariffVersion>>,
    ) -> AppResult<CycleProgress> {
        if let Some(counts) = self.bill_locked(&ids, period, issued_on, versions).await? {
            return Ok(counts);
        }
        let mut counts = CycleProgress::default();
        for id in ids {
            match self.bill_locked(&[id], period, issued_on, versions).await? {
                Some(one) => counts.add(&one),
                None => {
                    counts.processed += 1;
                    counts.already_billed += 1;
                }
            }
        }
        Ok(counts)
    }

    /// One transaction: locks the accounts, reads and drafts under the lock, writes, commits.
    /// `None` when a unique key refused the write (everything was rolled back).
    async fn bill_locked(
        &self,
        ids: &[i64],
        period: Period,
        issued_on: NaiveDate,
        versions: &HashMap<String, Vec<TariffVersion>>,
    ) -> AppResult<Option<CycleProgress>> {
        let mut counts = CycleProgress {
            processed: ids.len() as u64,
            ..Default::default()
        };
        let txn = crate::db::begin_write(&self.db).await?;
        let locked = prepayment::lock_accounts(&txn, ids).await?;
        // Closed (or gone) since the page was read: not billed by this cycle.
        let accounts: Vec<account::Model> =
            locked.into_iter().filter(|a| a.status == ACTIVE).collect();
        counts.skipped += (ids.len() - accounts.len()) as u64;
        let (billed, later) = billed_accounts(&txn, &accounts, period).await?;
        counts.already_billed += billed.len() as u64;
        counts.skipped += later.len() as u64;
        let todo: Vec<account::Model> = accounts
            .into_iter()
            .filter(|a| !billed.contains(&a.id) && !later.contains(&a.id))
            .collect();
        let (rows, outcomes) =
            prepare_batch(&txn, &todo, period, issued_on, versions, &self.settings).await?;
        match write_and_commit(txn, rows).await {
            Ok(()) => tally(&mut counts, &outcomes),
            Err(err) if err.is_unique_violation() => return Ok(None),
            Err(err) => return Err(err),
        }
        Ok(Some(counts))
    }
}

/// Accounts of the batch billed for this period already, and those billed for a later one.
async fn billed_accounts(
    db: &impl ConnectionTrait,
    accounts: &[account::Model],
    period: Period,
) -> AppResult<(HashSet<i64>, HashSet<i64>)> {
    let ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
    if ids.is_empty() {
        return Ok((HashSet::new(), HashSet::new()));
    }
    let rows: Vec<(i64, String)> = bill::Entity::find()
        .select_only()
        .column(bill::Column::AccountId)
        .column(bill::Column::Period)
        .filter(queries::ids_in(bill::Column::AccountId, &ids))
        .filter(bill::Column::Period.gte(period.to_string()))
        .into_tuple()
        .all(db)
        .await?;
    let this = period.to_string();
    let batch: HashSet<i64> = ids.into_iter().collect();
    let (mut billed, mut later) = (HashSet::new(), HashSet::new());
    // The query may read a range wider than the batch: only the batch's accounts count.
    for (account_id, billed_period) in rows {
        if !batch.contains(&account_id) {
            continue;
        }
        if billed_period == this {
            billed.insert(account_id);
        } else {
            later.insert(account_id);
        }
    }
    later.retain(|id| !billed.contains(id));
    Ok((billed, later))
}

impl CycleProgress {
    /// Adds one batch's counts (everything but `total` and `done`).
    fn add(&mut self, batch: &CycleProgress) {
        self.processed += batch.processed;
        self.issued += batch.issued;
        self.skipped += batch.skipped;
        self.failed += batch.failed;
        self.already_billed += batch.already_billed;
    }
}

async fn join_write(write: JoinHandle<AppResult<CycleProgress>>) -> AppResult<CycleProgress> {
    write
        .await
        .map_err(|e| AppError::Unavailable(format!("the billing batch writer stopped: {e}")))?
}

fn tally(progress: &mut CycleProgress, outcomes: &[(String, AccountOutcome)]) {
    for (account_no, outcome) in outcomes {
        match outcome {
            AccountOutcome::Issued => progress.issued += 1,
            AccountOutcome::Skipped(reason) => {
                tracing::debug!(%account_no, %reason, "account skipped by the billing cycle");
                progress.skipped += 1;
            }
            AccountOutcome::Failed(reason) => {
                tracing::warn!(%account_no, %reason, "account failed in the billing cycle");
                progress.failed += 1;
            }
        }
    }
}
