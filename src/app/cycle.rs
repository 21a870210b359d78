//! The billing cycle: bills every active account for a period, in batches of
//! `cycle_batch_size` accounts, one transaction per batch, reporting progress after each.
//! Resumable by construction: accounts already billed for the period are counted and left
//! alone, so re-running a period issues only what is missing.
//!
//! Reading and writing overlap: while one batch's transaction commits on its own connection,
//! the next batch is read and drafted (its accounts are disjoint, so it does not depend on the
//! writes in flight). At most one write is in flight, so memory stays bounded by two batches,
//! and progress is reported only for committed batches.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::accounts::ACTIVE;
use super::billing::{AccountOutcome, check_period, prepare_batch, write_in_transaction};
use super::validate;
use super::{App, AppError, AppResult};
use crate::db::entity::{account, bill};
use crate::db::queries;
use crate::domain::calendar::Period;
use crate::domain::tariff::TariffVersion;

/// Progress messages buffered for a slow client before the cycle waits for it.
const PROGRESS_BUFFER: usize = 16;

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
        let mut cursor = 0_i64;
        let mut in_flight: Option<JoinHandle<AppResult<CycleProgress>>> = None;
        loop {
            let accounts = active
                .clone()
                .filter(account::Column::Id.gt(cursor))
                .order_by_asc(account::Column::Id)
                .limit(self.settings.cycle_batch_size as u64)
                .all(&self.db)
                .await?;
            let Some(last) = accounts.last() else { break };
            cursor = last.id;
            let batch = self
                .prepare_cycle_batch(accounts, period, issued_on, &versions)
                .await?;
            if let Some(write) = in_flight.take() {
                progress.add(&join_write(write).await?);
                on_progress(progress);
            }
            let app = self.clone();
            let versions = Arc::clone(&versions);
            in_flight = Some(tokio::spawn(async move {
                app.commit_cycle_batch(batch, period, issued_on, &versions)
                    .await
            }));
        }
        if let Some(write) = in_flight.take() {
            progress.add(&join_write(write).await?);
        }
        progress.done = true;
        on_progress(progress);
        Ok(progress)
    }

    /// Reads and drafts one batch; nothing is written.
    async fn prepare_cycle_batch(
        &self,
        accounts: Vec<account::Model>,
        period: Period,
        issued_on: NaiveDate,
        versions: &HashMap<String, Vec<TariffVersion>>,
    ) -> AppResult<CycleBatch> {
        let mut counts = CycleProgress {
            processed: accounts.len() as u64,
            ..Default::default()
        };
        let (billed, later) = self.billed_accounts(&accounts, period).await?;
        counts.already_billed += billed.len() as u64;
        counts.skipped += later.len() as u64;
        let todo: Vec<account::Model> = accounts
            .into_iter()
            .filter(|a| !billed.contains(&a.id) && !later.contains(&a.id))
            .collect();
        let (rows, outcomes) =
            prepare_batch(&self.db, &todo, period, issued_on, versions, &self.settings).await?;
        Ok(CycleBatch {
            todo,
            rows,
            outcomes,
            counts,
        })
    }

    /// Writes one drafted batch in one transaction and returns what it counted.
    async fn commit_cycle_batch(
        &self,
        batch: CycleBatch,
        period: Period,
        issued_on: NaiveDate,
        versions: &HashMap<String, Vec<TariffVersion>>,
    ) -> AppResult<CycleProgress> {
        let mut counts = batch.counts;
        match write_in_transaction(&self.db, batch.rows).await {
            Ok(()) => tally(&mut counts, &batch.outcomes),
            // Another writer billed some of these accounts meanwhile: go one by one.
            Err(err) if err.is_unique_violation() => {
                for account in batch.todo {
                    self.bill_one(account, period, issued_on, versions, &mut counts)
                        .await?;
                }
            }
            Err(err) => return Err(err),
        }
        Ok(counts)
    }

    async fn bill_one(
        &self,
        account: account::Model,
        period: Period,
        issued_on: NaiveDate,
        versions: &HashMap<String, Vec<TariffVersion>>,
        progress: &mut CycleProgress,
    ) -> AppResult<()> {
        let accounts = std::slice::from_ref(&account);
        let (rows, outcomes) = prepare_batch(
            &self.db,
            accounts,
            period,
            issued_on,
            versions,
            &self.settings,
        )
        .await?;
        match write_in_transaction(&self.db, rows).await {
            Ok(()) => tally(progress, &outcomes),
            Err(err) if err.is_unique_violation() => progress.already_billed += 1,
            Err(err) => return Err(err),
        }
        Ok(())
    }

    /// Accounts of the batch billed for this period already, and those billed for a later one.
    async fn billed_accounts(
        &self,
        accounts: &[account::Model],
        period: Period,
    ) -> AppResult<(HashSet<i64>, HashSet<i64>)> {
        let ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
        let rows: Vec<(i64, String)> = bill::Entity::find()
            .select_only()
            .column(bill::Column::AccountId)
            .column(bill::Column::Period)
            .filter(queries::ids_in(bill::Column::AccountId, &ids))
            .filter(bill::Column::Period.gte(period.to_string()))
            .into_tuple()
            .all(&self.db)
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
}

/// One batch, read and drafted, waiting for its transaction.
struct CycleBatch {
    todo: Vec<account::Model>,
    rows: crate::db::writes::BillRows,
    outcomes: Vec<(String, AccountOutcome)>,
    /// What the batch counted before writing (processed, already billed, skipped).
    counts: CycleProgress,
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
