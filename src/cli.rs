//! The `water-billing reconcile` command: builds the app from the same settings as `serve`,
//! runs one channel's day (or lists the counter's cashier closes), prints a summary table and
//! writes the CSV report of domain rules section 6 (summary, then one row per exception).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::app::reconciliation::{CashierClose, RunView};
use crate::app::{App, BillingSettings, gateways::Gateways};
use crate::config::ReconcileArgs;
use crate::db::entity::discrepancy;
use crate::domain::money::Money;

fn yuan(fen: i64) -> String {
    Money::from_fen(fen).to_string()
}

async fn build_app(args: &ReconcileArgs) -> anyhow::Result<App> {
    let settings = BillingSettings::from_config(&args.billing).map_err(anyhow::Error::msg)?;
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
        let path = write_counter_report(&args.report_dir, &args.date, &closes)?;
        println!("counter {}: {} cashier closes", args.date, closes.len());
        for c in &closes {
            println!(
                "  {:<12} expected {:>12} counted {:>12} {:<8} {}",
                c.close.cashier_id,
                yuan(c.close.expected_fen),
                yuan(c.close.counted_fen),
                c.outcome(),
                yuan(c.close.difference_fen)
            );
        }
        println!("report: {}", path.display());
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

/// Runs one channel's day, prints the summary table and writes the CSV report.
pub async fn run_and_report(
    app: &App,
    channel: &str,
    date: &str,
    file: Option<&Path>,
    report_dir: &Path,
) -> anyhow::Result<(RunView, Vec<discrepancy::Model>)> {
    let view = app.run_reconciliation(channel, date, file).await?;
    let items = app.list_discrepancies(view.run.id, "", "").await?;
    print_summary(&view, file);
    let path = write_report(report_dir, &view, file, &items)?;
    println!("report: {}", path.display());
    Ok((view, items))
}

fn summary_rows(view: &RunView, file: Option<&Path>) -> Vec<(&'static str, String)> {
    let r = &view.run;
    vec![
        ("date", r.business_date.to_string()),
        ("channel", r.channel.clone()),
        ("version", r.version.to_string()),
        (
            "statement file",
            file.map_or_else(|| "downloaded".to_owned(), |p| p.display().to_string()),
        ),
        ("statement sha256", r.statement_sha256.clone()),
        ("our count", r.ledger_count.to_string()),
        ("our total", yuan(r.ledger_total_fen)),
        ("gateway count", r.gateway_count.to_string()),
        ("gateway total", yuan(r.gateway_total_fen)),
        ("gateway refunds", yuan(r.gateway_refunds_fen)),
        ("fees", r.fee_total.clone()),
        ("net settlement", r.net_settlement.clone()),
        ("matched count", r.matched_count.to_string()),
        ("matched amount", yuan(r.matched_fen)),
        ("GATEWAY_ONLY count", r.gateway_only_count.to_string()),
        ("GATEWAY_ONLY amount", yuan(r.gateway_only_fen)),
        ("LEDGER_ONLY count", r.ledger_only_count.to_string()),
        ("LEDGER_ONLY amount", yuan(r.ledger_only_fen)),
        ("AMOUNT_MISMATCH count", r.amount_mismatch_count.to_string()),
        ("AMOUNT_MISMATCH amount", yuan(r.amount_mismatch_fen)),
        ("STATUS_MISMATCH count", r.status_mismatch_count.to_string()),
        ("STATUS_MISMATCH amount", yuan(r.status_mismatch_fen)),
        ("DUPLICATE count", r.duplicate_count.to_string()),
        ("DUPLICATE amount", yuan(r.duplicate_fen)),
        ("open count", view.open_count.to_string()),
        ("resolved count", view.resolved_count.to_string()),
    ]
}

fn print_summary(view: &RunView, file: Option<&Path>) {
    for (name, value) in summary_rows(view, file) {
        println!("{name:<24} {value:>20}");
    }
}

const EXCEPTION_HEADER: [&str; 15] = [
    "class",
    "state",
    "movement",
    "out_trade_no",
    "gateway_trade_no",
    "refund_no",
    "account_no",
    "ledger_amount",
    "gateway_amount",
    "difference",
    "ledger_time",
    "gateway_time",
    "action",
    "operator",
    "note",
];

fn exception_row(d: &discrepancy::Model) -> Vec<String> {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| {
            t.with_timezone(&crate::gateway::beijing::BEIJING)
                .to_rfc3339()
        })
        .unwrap_or_default()
    };
    vec![
        d.class.clone(),
        d.state.clone(),
        d.movement.clone(),
        d.out_trade_no.clone(),
        d.gateway_trade_no.clone().unwrap_or_default(),
        d.refund_no.clone().unwrap_or_default(),
        d.account_no.clone().unwrap_or_default(),
        d.ledger_fen.map(yuan).unwrap_or_default(),
        d.gateway_fen.map(yuan).unwrap_or_default(),
        yuan(d.difference_fen),
        time(d.ledger_time),
        time(d.gateway_time),
        d.action.clone().unwrap_or_default(),
        d.operator.clone().unwrap_or_default(),
        d.note.clone().unwrap_or_default(),
    ]
}

fn write_report(
    dir: &Path,
    view: &RunView,
    file: Option<&Path>,
    items: &[discrepancy::Model],
) -> anyhow::Result<PathBuf> {
    let r = &view.run;
    let path = dir.join(format!(
        "reconciliation-{}-{}-v{}.csv",
        r.channel.to_ascii_lowercase(),
        r.business_date,
        r.version
    ));
    let mut out = csv::WriterBuilder::new().flexible(true).from_path(&path)?;
    for (name, value) in summary_rows(view, file) {
        out.write_record([name, value.as_str()])?;
    }
    out.write_record([""])?;
    out.write_record(EXCEPTION_HEADER)?;
    for item in items {
        out.write_record(exception_row(item))?;
    }
    out.flush()?;
    Ok(path)
}

pub fn write_counter_report(
    dir: &Path,
    date: &str,
    closes: &[CashierClose],
) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("reconciliation-counter-{date}.csv"));
    let mut out = csv::Writer::from_path(&path)?;
    out.write_record([
        "cashier_id",
        "business_date",
        "expected",
        "counted",
        "difference",
        "outcome",
    ])?;
    for c in closes {
        out.write_record([
            c.close.cashier_id.clone(),
            c.close.business_date.to_string(),
            yuan(c.close.expected_fen),
            yuan(c.close.counted_fen),
            yuan(c.close.difference_fen),
            c.outcome().to_owned(),
        ])?;
    }
    out.flush()?;
    Ok(path)
}
