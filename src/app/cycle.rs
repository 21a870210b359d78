//! The billing cycle: bills every active account for a period, in batches of
//! `cycle_batch_size` accounts, one transaction per batch, reporting progress after each.
//! Resumable by construction: accounts already billed for the period are counted and left
//! alone, so re-running a period issues only what is missing.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::mpsc;

use super::accounts::ACTIVE;
use super::billing::{AccountOutcome, check_period, prepare_batch, write_in_transaction};
use super::validate;
use super::{App, AppResult};
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

    /// Runs the whole cycle, calling `on_progress` after every batch; returns the final tally.
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
        let versions = queries::tariff_versions_by_code(&self.db).await?;
        let mut cursor = 0_i64;
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
            self.bill_batch(accounts, period, issued_on, &versions, &mut progress)
                .await?;
            on_progress(progress);
        }
        progress.done = true;
        on_progress(progress);
        Ok(progress)
    }

    async fn bill_batch(
        &self,
        accounts: Vec<account::Model>,
        period: Period,
        issued_on: NaiveDate,
        versions: &HashMap<String, Vec<TariffVersion>>,
        progress: &mut CycleProgress,
    ) -> AppResult<()> {
        progress.processed += accounts.len() as u64;
        let (billed, later) = self.billed_accounts(&accounts, period).await?;
        progress.already_billed += billed.len() as u64;
        progress.skipped += later.len() as u64;
        let todo: Vec<account::Model> = accounts
            .into_iter()
            .filter(|a| !billed.contains(&a.id) && !later.contains(&a.id))
            .collect();
        let (rows, outcomes) =
            prepare_batch(&self.db, &todo, period, issued_on, versions, &self.settings).await?;
        match write_in_transaction(&self.db, rows).await {
            Ok(()) => tally(progress, &outcomes),
            // Another writer billed some of these accounts meanwhile: go one by one.
            Err(err) if err.is_unique_violation() => {
                for account in todo {
                    self.bill_one(account, period, issued_on, versions, progress)
                        .await?;
                }
            }
            Err(err) => return Err(err),
        }
        Ok(())
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
        let ids = accounts.iter().map(|a| a.id);
        let rows: Vec<(i64, String)> = bill::Entity::find()
            .select_only()
            .column(bill::Column::AccountId)
            .column(bill::Column::Period)
            .filter(bill::Column::AccountId.is_in(ids))
            .filter(bill::Column::Period.gte(period.to_string()))
            .into_tuple()
            .all(&self.db)
            .await?;
        let this = period.to_string();
        let (mut billed, mut later) = (HashSet::new(), HashSet::new());
        for (account_id, billed_period) in rows {
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
