//! The `water-billing reconcile` command: builds the app from the same settings as `serve`,
//! runs one channel's day (or lists the counter's cashier closes), prints a summary table and
//! writes the reports of domain rules section 6 (CSV and XLSX, through `report`). A run shows
//! its phases on stderr as it goes (`progress`).

mod progress;

use std::path::Path;

use anyhow::Context;

use crate::app::reconciliation::{CashierClose, RunView};
use crate::app::{App, gateways::Gateways};
use crate::config::ReconcileArgs;
use crate::db::entity::discrepancy;
use crate::domain::money::Money;
use crate::report::{self, CounterReport, ReportPaths, RunReport};

fn yuan(fen: i64) -> String {
    Money::from_fen(fen).to_string()
}

async fn build_app(args: &ReconcileArgs) -> anyhow::Result<App> {
    let settings = args.billing.settings().map_err(anyhow::Error::msg)?;
    let db = crate::db::connect(&args.database)
        .await
        .with_context(|| format!("connecting to {}", args.database.redacted_url()))?;
    crate::db::migrate(&db)
        .await
        .context("applying migrations")?;
    let gateways = Gateways::from_config(&args.alipay, &args.wechat)?;
    Ok(App::new(db, settings).with_gateways(gateways, args.payments.clone()))
}

/// Runs the command; `Ok(true)` when nothing is left open.
pub async fn reconcile(args: &ReconcileArgs) -> anyhow::Result<bool> {
    let app = build_app(args).await?;
    std::fs::create_dir_all(&args.report_dir)
        .with_context(|| format!("creating {}", args.report_dir.display()))?;
    if args.channel.eq_ignore_ascii_case("counter") {
        let closes = app.cashier_closes(&args.date).await?;
        println!("counter {}: {} cashier closes", args.date, closes.len());
        for c in &closes {
            println!(
                "  {:<12} payments {:>12} refunds {:>12} expected {:>12} counted {:>12} {:<8} {}",
                c.close.cashier_id,
                yuan(c.close.payments_fen),
                yuan(c.close.refunds_fen),
                yuan(c.close.expected_fen),
                yuan(c.close.counted_fen),
                c.outcome(),
                yuan(c.close.difference_fen)
            );
        }
        counter_report(&args.report_dir, &args.date, &closes)?;
        return Ok(closes.iter().all(|c| c.close.difference_fen == 0));
    }
    let (view, _) = run_and_report(
        &app,
        &args.channel,
        &args.date,
        args.file.as_deref(),
        &args.report_dir,
    )
    .await?;
    Ok(view.open_count == 0)
}

/// Runs one channel's day (showing its phases on stderr), prints the summary table and writes
/// the CSV and XLSX reports.
pub async fn run_and_report(
    app: &App,
    channel: &str,
    date: &str,
    file: Option<&Path>,
    report_dir: &Path,
) -> anyhow::Result<(RunView, Vec<discrepancy::Model>)> {
    let display = progress::PhaseDisplay::on_stderr(channel, date);
    let run = app
        .run_reconciliation_with(channel, date, file, &|phase| display.show(phase))
        .await;
    display.finish();
    let view = run?;
    let items = app.list_discrepancies(view.run.id, "", "").await?;
    let report = RunReport::new(&view, file, &items);
    for (name, value) in &report.summary {
        println!("{name:<24} {:>20}", value.to_text());
    }
    let paths = report::write_run_report(report_dir, &report)?;
    print_paths(&paths);
    Ok((view, items))
}

/// Writes the counter's reports and prints where they are.
pub fn counter_report(dir: &Path, date: &str, closes: &[CashierClose]) -> anyhow::Result<()> {
    let paths = report::write_counter_report(dir, &CounterReport::new(date, closes))?;
    print_paths(&paths);
    Ok(())
}

fn print_paths(paths: &ReportPaths) {
    println!("report: {}", paths.csv.display());
    println!("report: {}", paths.xlsx.display());
}
