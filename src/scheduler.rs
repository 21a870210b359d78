//! The daily reconciliation `serve` runs by itself (`--reconcile-schedule`): for each enabled
//! online channel, yesterday's (Beijing) statement is downloaded and reconciled once the start
//! time has passed, retried while it is not ready, and given up at the deadline with an error
//! in the log. The reports are written as the `reconcile` command writes them.
//!
//! What to do at an instant is decided by the pure `domain::reconcile_schedule::decide`; this
//! task only reads the app's clock, asks the database whether the day is recorded, runs it and
//! logs. It is safe on several replicas: a day with a recorded run (any version) is skipped,
//! and `run_reconciliation` itself is idempotent per statement and locks the channel/date.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, NaiveDateTime};
use tokio::sync::watch;

use crate::app::reconciliation::RunView;
use crate::app::settlement::PaymentChannel;
use crate::app::{App, AppError};
use crate::config::ReconcileScheduleConfig;
use crate::domain::reconcile_schedule::{DayStatus, Decision, Schedule, decide, due_date};
use crate::gateway::beijing::BEIJING;
use crate::report::{self, RunReport};

/// Shortest pause between rounds, so no mistake can make the task spin.
const PAUSE_MIN: Duration = Duration::from_secs(1);
/// Longest pause: the task looks at the clock at least hourly, whatever it planned.
const PAUSE_MAX: Duration = Duration::from_secs(3_600);

/// The scheduler's settings, checked at start-up.
#[derive(Debug, Clone)]
pub struct DailyReconciliation {
    schedule: Schedule,
    report_dir: PathBuf,
}

/// One channel's due day and what happened to it so far.
struct ChannelDay {
    channel: PaymentChannel,
    date: Option<NaiveDate>,
    status: DayStatus,
}

impl DailyReconciliation {
    /// `None` when the schedule is off; an error naming the setting when it is malformed or
    /// the report directory cannot be created.
    pub fn from_config(config: &ReconcileScheduleConfig) -> anyhow::Result<Option<Self>> {
        if !config.reconcile_schedule {
            return Ok(None);
        }
        let schedule = Schedule::new(
            config.reconcile_at,
            config.reconcile_deadline,
            config.reconcile_retry_every_s,
        )
        .context("--reconcile-at / --reconcile-deadline / --reconcile-retry-every-s")?;
        std::fs::create_dir_all(&config.reconcile_report_dir).with_context(|| {
            format!(
                "creating the reconciliation report directory {}",
                config.reconcile_report_dir.display()
            )
        })?;
        Ok(Some(Self {
            schedule,
            report_dir: config.reconcile_report_dir.clone(),
        }))
    }

    /// Runs the schedule until `stop` turns true.
    pub async fn run_until_stopped(self, app: App, mut stop: watch::Receiver<bool>) {
        let channels = app.gateways.enabled_online();
        if channels.is_empty() {
            tracing::warn!("reconciliation schedule: no online channel is enabled; idle");
            return;
        }
        tracing::info!(?channels, report_dir = %self.report_dir.display(), "reconciliation schedule on");
        let mut days: Vec<ChannelDay> = channels
            .into_iter()
            .map(|channel| ChannelDay {
                channel,
                date: None,
                status: DayStatus::NotAttempted,
            })
            .collect();
        loop {
            let wake = self.round(&app, &mut days).await;
            let pause = (wake - beijing_now(&app))
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(PAUSE_MIN, PAUSE_MAX);
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass over the channels: does what is due now and says when to look again.
    async fn round(&self, app: &App, days: &mut [ChannelDay]) -> NaiveDateTime {
        let now = beijing_now(app);
        let due = due_date(now);
        let mut wake = now
            .checked_add_signed(chrono::TimeDelta::hours(1))
            .unwrap_or(now);
        for day in days.iter_mut() {
            if day.date != Some(due) {
                day.date = Some(due);
                day.status = DayStatus::NotAttempted;
            }
            day.status = match decide(now, &self.schedule, day.status) {
                Decision::Run { date } => self.attempt(app, day.channel, date).await,
                Decision::GiveUp { date } => give_up(app, day.channel, date).await,
                Decision::WaitUntil(_) | Decision::RetryAt(_) | Decision::Done { .. } => day.status,
            };
            wake = wake.min(decide(now, &self.schedule, day.status).wake_at(now));
        }
        wake
    }

    /// Reconciles `channel` on `date` unless a run is recorded already.
    async fn attempt(&self, app: &App, channel: PaymentChannel, date: NaiveDate) -> DayStatus {
        let channel_name = channel.as_str();
        match app.latest_reconciliation_run(channel, date).await {
            Ok(Some(run)) => {
                tracing::info!(channel = channel_name, %date, run_id = run.id, "already reconciled; skipping");
                return DayStatus::Recorded;
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(channel = channel_name, %date, error = ?err, "cannot tell whether the day is reconciled; retrying later");
                return DayStatus::Failed {
                    at: beijing_now(app),
                };
            }
        }
        let outcome = app
            .run_reconciliation(channel_name, &date.to_string(), None)
            .await;
        match outcome {
            Ok(view) => {
                self.report(app, &view).await;
                DayStatus::Recorded
            }
            Err(AppError::NotReady(why)) => {
                tracing::info!(channel = channel_name, %date, %why, "statement not ready yet; retrying later");
                DayStatus::Failed {
                    at: beijing_now(app),
                }
            }
            Err(err) => {
                tracing::warn!(channel = channel_name, %date, error = ?err, "scheduled reconciliation failed; retrying later");
                DayStatus::Failed {
                    at: beijing_now(app),
                }
            }
        }
    }

    /// Logs the recorded run and writes its reports; a report that cannot be written is
    /// logged, the run stays recorded (`water-billing reconcile` can write it again).
    async fn report(&self, app: &App, view: &RunView) {
        let run = &view.run;
        tracing::info!(
            channel = %run.channel, date = %run.business_date, run_id = run.id, version = run.version,
            status = %run.status, open = view.open_count, "scheduled reconciliation recorded"
        );
        let written = match app.list_discrepancies(run.id, "", "").await {
            Ok(items) => {
                let report = RunReport::new(view, None, &items);
                let dir = self.report_dir.clone();
                tokio::task::spawn_blocking(move || report::write_run_report(&dir, &report))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|written| written)
            }
            Err(err) => Err(err.into()),
        };
        match written {
            Ok(paths) => {
                tracing::info!(csv = %paths.csv.display(), xlsx = %paths.xlsx.display(), "reconciliation report written")
            }
            Err(err) => {
                tracing::error!(run_id = run.id, error = ?err, "writing the reconciliation report failed")
            }
        }
    }
}

/// The deadline passed: unless another replica recorded the day meanwhile, say so loudly.
async fn give_up(app: &App, channel: PaymentChannel, date: NaiveDate) -> DayStatus {
    if let Ok(Some(_)) = app.latest_reconciliation_run(channel, date).await {
        return DayStatus::Recorded;
    }
    tracing::error!(
        channel = channel.as_str(),
        %date,
        "no reconciliation recorded by the deadline; giving up for the day: run \
         `water-billing reconcile` by hand once the statement is available"
    );
    DayStatus::GaveUp
}

fn beijing_now(app: &App) -> NaiveDateTime {
    app.now().with_timezone(&BEIJING).naive_local()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn config(at: &str, deadline: &str, dir: &tempfile::TempDir) -> ReconcileScheduleConfig {
        ReconcileScheduleConfig {
            reconcile_schedule: true,
            reconcile_at: at.parse().unwrap(),
            reconcile_deadline: deadline.parse().unwrap(),
            reconcile_retry_every_s: 600,
            reconcile_report_dir: dir.path().join("reports"),
        }
    }

    #[test]
    fn the_schedule_is_off_unless_asked_for() {
        let off = ReconcileScheduleConfig::default();
        assert!(DailyReconciliation::from_config(&off).unwrap().is_none());
    }

    #[test]
    fn a_deadline_before_the_start_stops_start_up_naming_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let err = DailyReconciliation::from_config(&config("10:30", "09:00", &dir)).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("--reconcile-deadline"), "{text}");
        assert!(
            text.contains("09:00 must be later than the start time 10:30"),
            "{text}"
        );
    }

    #[test]
    fn a_valid_schedule_creates_its_report_directory() {
        let dir = tempfile::tempdir().unwrap();
        let config = config("10:30", "18:00", &dir);
        assert!(DailyReconciliation::from_config(&config).unwrap().is_some());
        assert!(config.reconcile_report_dir.is_dir());
    }
}
