//! A run's inputs, gathered at once: the statement is parsed on a blocking thread while our
//! side loads from the database (the day's payments and refunds, the adjacent days' payments
//! and statement rows). The two are independent, and the parse (1.2–2 s for a million rows)
//! is CPU work for the second core while this task mostly waits on the database, so it costs
//! little wall time.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sea_orm::DatabaseConnection;

use super::ledger::{self, Ledger};
use super::{adjacent, statement};
use crate::app::settlement::PaymentChannel;
use crate::app::{AppError, AppResult};
use crate::domain::reconcile::{GatewayRow, LedgerPayment};
use crate::gateway::statement::Statement;

/// Everything a run matches, before conversion into the matcher's input.
pub struct Inputs {
    pub statement: Statement,
    pub ledger: Ledger,
    /// Our payments of the previous and next business dates.
    pub adjacent_payments: Vec<LedgerPayment>,
    /// The previous and next dates' statement rows, as their newest runs stored them.
    pub adjacent_rows: Vec<GatewayRow<'static>>,
    /// How long the parse took on its thread.
    pub parse_time: Duration,
    /// How long the database side took.
    pub load_time: Duration,
}

/// Parses `bytes` (as `statement::fetch_bytes` returned them) and loads our side of
/// `channel` on `date`, both at once. A rejected statement stops the load.
pub async fn gather(
    db: &DatabaseConnection,
    channel: PaymentChannel,
    date: NaiveDate,
    bytes: Option<Vec<u8>>,
) -> AppResult<Inputs> {
    let parse = async {
        let parsing = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            statement::parse_fetched(channel, bytes.as_deref()).map(|s| (s, started.elapsed()))
        });
        match parsing.await {
            Ok(parsed) => parsed,
            // A panic in the parser stays a panic, as when it ran on this task.
            Err(err) => match err.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(err) => Err(AppError::Unavailable(format!(
                    "the statement parse was cancelled ({err}); retry"
                ))),
            },
        }
    };
    let load = async {
        let started = Instant::now();
        let ledger = ledger::load(db, channel, date).await?;
        let adjacent_payments = ledger::adjacent_payments(db, channel, date).await?;
        let adjacent_rows = adjacent::neighbour_rows(db, channel, date).await?;
        Ok::<_, AppError>((ledger, adjacent_payments, adjacent_rows, started.elapsed()))
    };
    let ((statement, parse_time), (ledger, adjacent_payments, adjacent_rows, load_time)) =
        tokio::try_join!(parse, load)?;
    Ok(Inputs {
        statement,
        ledger,
        adjacent_payments,
        adjacent_rows,
        parse_time,
        load_time,
    })
}
