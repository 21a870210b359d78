//! Group commit for webhook notifications. Handlers verify signatures in parallel, then hand
//! the verified notification to a committer task, which applies every notification waiting at
//! that moment (up to `BATCH_MAX`) in one transaction, commits once and only then answers each
//! handler. A batch of plain payments is posted set-wise (`group_settle`: a fixed number of
//! statements per batch); any other batch, or one whose set-wise posting fails, is applied one
//! notification at a time, one savepoint each. A notification whose own work fails is rolled back to its
//! savepoint and answered with its error; the others still commit. If the commit itself fails,
//! every handler in the batch gets an error, so every gateway resends: nothing is
//! acknowledged that was not committed.

use sea_orm::TransactionTrait;
use tokio::sync::{mpsc, oneshot};

use super::notifications::{OwnedRaw, Verified};
use super::{App, AppError, AppResult};
use crate::domain::evidence::NotificationOutcome;

/// Notifications applied in one transaction, at most.
const BATCH_MAX: usize = 64;
/// Verified notifications waiting for a committer, at most (back-pressure beyond).
const QUEUE_MAX: usize = 4_096;

struct Job {
    verified: Verified,
    raw: OwnedRaw,
    reply: oneshot::Sender<AppResult<NotificationOutcome>>,
}

/// The handlers' side: a bounded queue to the committer tasks.
#[derive(Debug, Clone)]
pub struct Committer {
    sender: mpsc::Sender<Job>,
}

/// The committers share one queue; whoever holds the lock takes the next batch.
type SharedQueue = std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>;

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl Committer {
    /// Starts `workers` committer tasks applying notifications with `app` (one for SQLite,
    /// which has one writer anyway; a few for PostgreSQL).
    pub fn start(app: App, workers: usize) -> Self {
        let (sender, receiver) = mpsc::channel::<Job>(QUEUE_MAX);
        let queue: SharedQueue = std::sync::Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..workers.max(1) {
            let app = app.clone();
            let receiver = std::sync::Arc::clone(&queue);
            tokio::spawn(async move { run(app, receiver).await });
        }
        Self { sender }
    }

    pub async fn submit(
        &self,
        verified: Verified,
        raw: OwnedRaw,
    ) -> AppResult<NotificationOutcome> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Job {
                verified,
                raw,
                reply,
            })
            .await
            .map_err(|_| AppError::Unavailable("the notification committer has stopped".into()))?;
        answer.await.map_err(|_| {
            AppError::Unavailable("the notification committer dropped the notification".into())
        })?
    }
}

async fn run(app: App, queue: SharedQueue) {
    loop {
        let jobs = {
            let mut receiver = queue.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut jobs = vec![first];
            while jobs.len() < BATCH_MAX {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        commit_batch(&app, jobs).await;
    }
}

async fn commit_batch(app: &App, mut jobs: Vec<Job>) {
    // Every batch takes its row locks in merchant-number order, so two committers working on
    // overlapping orders wait for each other instead of deadlocking.
    jobs.sort_by(|a, b| a.verified.out_trade_no().cmp(b.verified.out_trade_no()));
    match commit_group(app, &jobs).await {
        Ok(Some(outcomes)) => {
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.reply.send(Ok(outcome));
            }
            return;
        }
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(error = ?err, "notification batch: set-wise posting failed; applying one by one");
        }
    }
    let txn = match crate::db::begin_write(&app.db).await {
        Ok(txn) => txn,
        Err(err) => {
            tracing::error!(error = ?err, "notification batch: cannot begin");
            return fail_all(jobs);
        }
    };
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in &jobs {
        outcomes.push(apply_in_savepoint(app, &txn, job).await);
    }
    if let Err(err) = txn.commit().await {
        tracing::error!(error = ?err, "notification batch: commit failed; every notification will be resent");
        return fail_all(jobs);
    }
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        let _ = job.reply.send(outcome);
    }
}

/// The fast path: a batch of plain payments posted set-wise in one transaction (see
/// `group_settle`). `None`: the batch needs the one-by-one path; nothing was written.
async fn commit_group(app: &App, jobs: &[Job]) -> AppResult<Option<Vec<NotificationOutcome>>> {
    let refs: Vec<_> = jobs.iter().map(|job| (&job.verified, &job.raw)).collect();
    let Some(payments) = super::group_settle::plain_payments(&refs) else {
        return Ok(None);
    };
    let txn = crate::db::begin_write(&app.db).await?;
    match super::group_settle::settle_group(app, &txn, &refs, &payments).await? {
        Some(outcomes) => {
            txn.commit().await?;
            Ok(Some(outcomes))
        }
        None => {
            txn.rollback().await?;
            Ok(None)
        }
    }
}

async fn apply_in_savepoint(
    app: &App,
    txn: &sea_orm::DatabaseTransaction,
    job: &Job,
) -> AppResult<NotificationOutcome> {
    let savepoint = txn.begin().await?;
    match app
        .apply_verified(&savepoint, &job.verified, &job.raw)
        .await
    {
        Ok(outcome) => {
            savepoint.commit().await?;
            Ok(outcome)
        }
        Err(err) => {
            savepoint.rollback().await?;
            Err(err)
        }
    }
}

fn fail_all(jobs: Vec<Job>) {
    for job in jobs {
        let _ = job
            .reply
            .send(Err(AppError::Unavailable("not committed; resend".into())));
    }
}
