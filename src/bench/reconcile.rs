//! `bench reconcile --rows N`: one business day's statement of N rows against our ledger of
//! about N payments with a realistic mix of exceptions ([`day`]), timed through the same
//! functions a reconciliation run calls: `statement::read_file`, then `inputs::gather` (the
//! parse on a blocking thread while `ledger::load`, `ledger::adjacent_payments` and
//! `adjacent::neighbour_rows` read the database; each side's own time is printed under the
//! wall time), `ledger::gateway_row` (row conversion) and `domain::reconcile::reconcile`
//! (match). Recording the run is not part of it.
//!
//! Setup is not timed: the day is generated, the statement written in the channel's real
//! format by the sandbox's bill writers, the ledger seeded with batch inserts, and both also
//! written for `bench/join.py` (the pandas/polars reference). The timed part then runs in a
//! child process of this binary (`--measure-only`), once per `--repeat`, so its peak memory
//! (`VmHWM`) is the run's own and not the generator's. The child fails loudly when the class
//! counts differ from what the generator injected.

pub mod day;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{NaiveDate, TimeDelta};
use clap::{Args, ValueEnum};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use sea_orm::{DatabaseConnection, TransactionTrait};

use super::billing::{BenchDatabase, bench_database, describe};
use crate::app::reconciliation::inputs::{self, Inputs};
use crate::app::reconciliation::{ledger, statement};
use crate::app::settlement::{PARTIALLY_REFUNDED, PaymentChannel};
use crate::config::DatabaseConfig;
use crate::db::entity::{account, payment, refund};
use crate::db::writes::insert_chunked;
use crate::domain::evidence::EvidenceSource;
use crate::domain::reconcile::{MatchOptions, Neighbours, ReconcileInput, reconcile};
use day::{Day, Mix};

#[derive(Debug, Clone, Args)]
pub struct ReconcileBench {
    /// Statement rows (the ledger holds about as many payments).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    #[arg(long, value_enum, default_value_t = BenchChannel::Alipay)]
    pub channel: BenchChannel,
    /// `sqlite` (a fresh file in a temporary directory, removed after), a `sqlite://` URL of
    /// a file to keep, or a PostgreSQL server URL, on which the bench creates and afterwards
    /// drops a fresh database.
    #[arg(
        long,
        alias = "database",
        env = "BILLING_BENCH_DATABASE",
        default_value = "sqlite"
    )]
    pub database_url: String,
    /// Where the statement file, `ledger.csv` and `expected.json` go (kept for
    /// `bench/join.py`). Default: `water-billing-bench-reconcile` in the temporary directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Timed runs over the same files and database, each in a fresh process.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Internal: skip the setup and time one run against an already seeded `--database-url`
    /// and the files in `--out`.
    #[arg(long, hide = true)]
    pub measure_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchChannel {
    Alipay,
    Wechat,
}

impl BenchChannel {
    fn payment_channel(self) -> PaymentChannel {
        match self {
            BenchChannel::Alipay => PaymentChannel::Alipay,
            BenchChannel::Wechat => PaymentChannel::Wechat,
        }
    }

    fn arg(self) -> &'static str {
        match self {
            BenchChannel::Alipay => "alipay",
            BenchChannel::Wechat => "wechat",
        }
    }
}

/// The business date of the bench's statement.
fn business_date() -> anyhow::Result<NaiveDate> {
    NaiveDate::from_ymd_opt(2025, 3, 14).context("date")
}

/// Name of the file in `--out` that holds the statement's own file name.
const STATEMENT_NAME_FILE: &str = "statement.name";

pub async fn run(bench: ReconcileBench) -> anyhow::Result<()> {
    let out = bench
        .out
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("water-billing-bench-reconcile"));
    if bench.measure_only {
        return measure(&bench, &out).await;
    }
    if bench.database_url.starts_with("sqlite:") {
        // A SQLite URL names a file to keep: `--measure-only` can time it again later.
        return setup_and_measure(&bench, &out, &bench.database_url).await;
    }
    let database = bench_database(&bench.database_url).await?;
    let url = database.url.clone();
    let outcome = setup_and_measure(&bench, &out, &url).await;
    drop_database(database).await?;
    outcome
}

async fn setup_and_measure(bench: &ReconcileBench, out: &Path, url: &str) -> anyhow::Result<()> {
    println!(
        "water-billing bench reconcile: {} statement rows, {}, {}; files in {}",
        bench.rows,
        bench.channel.arg(),
        describe(&bench.database_url),
        out.display()
    );
    let started = Instant::now();
    let date = business_date()?;
    let day = Day::generate(Mix::for_rows(bench.rows)?, date)?;
    write_files(&day, bench.channel, out)?;
    let generated = started.elapsed();
    let db = crate::db::connect(&DatabaseConfig::new(url)).await?;
    crate::db::migrate(&db).await?;
    let seeding = Instant::now();
    seed(&db, &day, bench.channel.payment_channel()).await?;
    println!(
        "setup (not timed): generated and wrote files in {:.1} s; seeded {} payments, {} refunds in {:.1} s",
        generated.as_secs_f64(),
        day.ledger.len(),
        day.ledger_refunds.len(),
        seeding.elapsed().as_secs_f64()
    );
    db.close().await?;
    drop(day);
    for _ in 0..bench.repeat.max(1) {
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(["bench", "reconcile", "--measure-only", "--channel"])
            .arg(bench.channel.arg())
            .arg("--rows")
            .arg(bench.rows.to_string())
            .arg("--database-url")
            .arg(url)
            .arg("--out")
            .arg(out)
            .status()
            .context("starting the measuring process")?;
        anyhow::ensure!(status.success(), "the measured run failed ({status})");
    }
    Ok(())
}

async fn drop_database(database: BenchDatabase) -> anyhow::Result<()> {
    if let Some((admin, name)) = database.admin {
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    Ok(())
}

fn write_files(day: &Day, channel: BenchChannel, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let (name, bytes) = day.statement_file(channel.payment_channel())?;
    std::fs::write(out.join(&name), bytes)?;
    std::fs::write(out.join(STATEMENT_NAME_FILE), &name)?;
    std::fs::write(out.join("ledger.csv"), day.ledger_csv())?;
    let mix = day.mix;
    let expected = serde_json::json!({
        "channel": channel.arg(),
        "statement": name,
        "business_date": day.date.to_string(),
        "statement_rows": mix.rows,
        "refund_rows": mix.refunds + mix.refund_only,
        // What a full outer join of payment rows on out_trade_no sees.
        "join": {
            "matched": mix.matched + mix.duplicates,
            "amount_mismatch": mix.amount_mismatches,
            "gateway_only": mix.gateway_only + mix.cross_day,
            "ledger_only": mix.ledger_only + mix.held,
        },
    });
    std::fs::write(
        out.join("expected.json"),
        serde_json::to_string_pretty(&expected)?,
    )?;
    Ok(())
}

/// Seeds accounts, payments and refunds in one transaction with the batch insert path the
/// billing cycle uses.
async fn seed(db: &DatabaseConnection, day: &Day, channel: PaymentChannel) -> anyhow::Result<()> {
    let txn = db.begin().await?;
    let mut numbers: Vec<&str> = day.ledger.iter().map(|e| e.account_no.as_str()).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let accounts = numbers.iter().map(|no| account::ActiveModel {
        account_no: Set((*no).to_owned()),
        holder_name: Set(format!("用户{no}")),
        address: Set(format!("{no} 号")),
        customer_class: Set("RESIDENTIAL".into()),
        household_size: Set(3),
        tariff_code: Set("RES".into()),
        status: Set("ACTIVE".into()),
        ..Default::default()
    });
    insert_chunked::<account::Entity, _>(&txn, accounts.collect()).await?;
    let ids: std::collections::HashMap<String, i64> = account::Entity::find()
        .select_only()
        .column(account::Column::AccountNo)
        .column(account::Column::Id)
        .into_tuple::<(String, i64)>()
        .all(&txn)
        .await?
        .into_iter()
        .collect();
    let mut payments = Vec::with_capacity(day.ledger.len());
    for entry in &day.ledger {
        let account_id = *ids.get(&entry.account_no).context("seeded account")?;
        payments.push(payment::ActiveModel {
            out_trade_no: Set(entry.out_trade_no.clone()),
            account_id: Set(account_id),
            channel: Set(channel.as_str().to_owned()),
            amount_fen: Set(entry.amount_fen),
            status: Set(entry.status.to_owned()),
            idempotency_key: Set(None),
            qr_code: Set(None),
            created_at: Set(entry.paid_at - TimeDelta::seconds(60)),
            expires_at: Set(None),
            last_queried_at: Set(None),
            gateway_trade_no: Set(Some(entry.gateway_trade_no.clone())),
            paid_at: Set(Some(entry.paid_at)),
            business_date: Set(Some(entry.business_date)),
            refunded_fen: Set(entry.refunded_fen),
            cashier_id: Set(None),
            receipt_no: Set(None),
            settled_by: Set(Some(EvidenceSource::Notify.as_str().into())),
            ..Default::default()
        });
    }
    drop(ids);
    insert_chunked::<payment::Entity, _>(&txn, payments).await?;
    seed_refunds(&txn, day).await?;
    txn.commit().await?;
    Ok(())
}

async fn seed_refunds(db: &impl ConnectionTrait, day: &Day) -> anyhow::Result<()> {
    let ids: std::collections::HashMap<String, i64> = payment::Entity::find()
        .select_only()
        .column(payment::Column::OutTradeNo)
        .column(payment::Column::Id)
        .filter(payment::Column::Status.eq(PARTIALLY_REFUNDED))
        .into_tuple::<(String, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut refunds = Vec::with_capacity(day.ledger_refunds.len());
    for entry in &day.ledger_refunds {
        let order = day.ledger.get(entry.payment).context("refunded payment")?;
        refunds.push(refund::ActiveModel {
            refund_no: Set(entry.refund_no.clone()),
            payment_id: Set(*ids.get(&order.out_trade_no).context("seeded payment")?),
            amount_fen: Set(entry.amount_fen),
            reason: Set("水费退款".into()),
            status: Set(crate::app::refunds::REFUND_SUCCEEDED.into()),
            gateway_refund_id: Set(Some(entry.gateway_refund_id.clone())),
            created_at: Set(entry.completed_at - TimeDelta::seconds(5)),
            completed_at: Set(Some(entry.completed_at)),
            ..Default::default()
        });
    }
    insert_chunked::<refund::Entity, _>(db, refunds).await?;
    Ok(())
}

/// One timed phase: its wall time and the resident memory after it (none for a part of a
/// phase that ran concurrently with another).
struct Phase {
    name: &'static str,
    elapsed: Duration,
    rss_mib: Option<u64>,
}

fn phase(name: &'static str, started: Instant) -> Phase {
    Phase {
        name,
        elapsed: started.elapsed(),
        rss_mib: Some(proc_status_mib("VmRSS:")),
    }
}

fn part(name: &'static str, elapsed: Duration) -> Phase {
    Phase {
        name,
        elapsed,
        rss_mib: None,
    }
}

/// The timed run: parse, ledger load, row conversion, match; then the class check.
async fn measure(bench: &ReconcileBench, out: &Path) -> anyhow::Result<()> {
    let expected = Mix::for_rows(bench.rows)?.expected();
    let name = std::fs::read_to_string(out.join(STATEMENT_NAME_FILE))
        .context("no statement in --out: run the bench without --measure-only first")?;
    let path = out.join(name.trim());
    let channel = bench.channel.payment_channel();
    let date = business_date()?;
    let db = crate::db::connect(&DatabaseConfig::new(bench.database_url.clone())).await?;
    let mut phases = Vec::with_capacity(4);
    let run_started = Instant::now();

    let started = Instant::now();
    let bytes = statement::read_file(&path)?;
    let inputs = inputs::gather(&db, channel, date, Some(bytes)).await?;
    phases.push(phase("read, then parse ∥ ledger load (wall)", started));
    phases.push(part(
        "  parse (statement::parse_fetched)",
        inputs.parse_time,
    ));
    phases.push(part(
        "  ledger load (load, adjacent days)",
        inputs.load_time,
    ));
    let Inputs {
        statement,
        ledger,
        adjacent_payments: adjacent,
        adjacent_rows,
        ..
    } = inputs;

    let started = Instant::now();
    let rows: Vec<_> = statement.rows.iter().map(ledger::gateway_row).collect();
    phases.push(phase("rows -> matcher input (gateway_row)", started));

    let started = Instant::now();
    let input = ReconcileInput {
        payments: &ledger.payments,
        refunds: &ledger.refunds,
        statement: &rows,
        neighbours: Neighbours {
            statement_rows: &adjacent_rows,
            payments: &adjacent,
        },
    };
    let result = reconcile(&input, &MatchOptions::new(date));
    phases.push(phase("match (domain::reconcile)", started));
    let total = run_started.elapsed();

    print_phases(&phases, total);
    println!(
        "  statement {} rows, ledger {} payments + {} refunds (+{} adjacent), {} discrepancies",
        statement.rows.len(),
        ledger.payments.len(),
        ledger.refunds.len(),
        adjacent.len(),
        result.discrepancies.len()
    );
    anyhow::ensure!(
        ledger.payments.len() == expected.ledger_payments
            && ledger.refunds.len() == expected.ledger_refunds,
        "ledger load is wrong: expected {} payments and {} refunds",
        expected.ledger_payments,
        expected.ledger_refunds
    );
    expected.check(&result.totals)?;
    println!(
        "  classes as injected: MATCHED {}, GATEWAY_ONLY {}, LEDGER_ONLY {}, AMOUNT_MISMATCH {}, \
         STATUS_MISMATCH {}, DUPLICATE {} (HELD {}, AUTO_RESOLVED {})",
        expected.matched,
        expected.gateway_only,
        expected.ledger_only,
        expected.amount_mismatch,
        expected.status_mismatch,
        expected.duplicate,
        expected.held,
        expected.auto_resolved
    );
    Ok(())
}

fn print_phases(phases: &[Phase], total: Duration) {
    println!("  {:<42} {:>9} {:>14}", "phase", "time", "RSS after");
    for phase in phases {
        let rss = phase
            .rss_mib
            .map_or_else(String::new, |mib| format!("{mib:>10} MiB"));
        println!(
            "  {:<42} {:>7.3} s {rss}",
            phase.name,
            phase.elapsed.as_secs_f64(),
        );
    }
    println!(
        "  {:<42} {:>7.3} s {:>10} MiB peak (VmHWM)",
        "total",
        total.as_secs_f64(),
        proc_status_mib("VmHWM:")
    );
}

/// A `kB` line of /proc/self/status in MiB (0 where unavailable).
fn proc_status_mib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb / 1024)
}

#[cfg(test)]
mod tests;
