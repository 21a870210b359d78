//! Reconciliation reports for finance (domain rules section 6). This module owns what a report
//! says: the run's summary rows, one row per exception, and the counter's cashier closes; and it
//! writes each report twice. The CSV is the record: amounts are the exact decimal text we store.
//! The XLSX carries the same rows for people who filter and sum in a spreadsheet, so its amounts
//! are numeric cells. The `reconcile` command, the demo and the `serve` scheduler all write
//! through here, so the two formats and the three callers cannot drift apart.

mod csv_file;
mod xlsx_file;

use std::path::{Path, PathBuf};

use crate::app::reconciliation::{CashierClose, RunView};
use crate::db::entity::discrepancy;
use crate::domain::money::Money;

/// One value of a report, typed so each format can render it properly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Count(i64),
    /// An amount in yuan as its exact decimal text (`"192.15"`).
    Yuan(String),
    Blank,
}

impl Cell {
    fn fen(fen: i64) -> Self {
        Self::Yuan(Money::from_fen(fen).to_string())
    }

    fn optional_fen(fen: Option<i64>) -> Self {
        fen.map_or(Self::Blank, Self::fen)
    }

    fn optional_text(text: Option<&String>) -> Self {
        text.map_or(Self::Blank, |t| Self::Text(t.clone()))
    }

    /// The text the CSV and the terminal show: amounts exactly as recorded.
    pub fn to_text(&self) -> String {
        match self {
            Self::Text(text) | Self::Yuan(text) => text.clone(),
            Self::Count(count) => count.to_string(),
            Self::Blank => String::new(),
        }
    }
}

/// One run's report: summary rows, then the exceptions under `EXCEPTION_HEADER`.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// File name without extension: `reconciliation-<channel>-<date>-v<version>`.
    pub stem: String,
    pub summary: Vec<(&'static str, Cell)>,
    pub exceptions: Vec<Vec<Cell>>,
}

/// The counter's cashier closes of one day, under `COUNTER_HEADER`.
#[derive(Debug, Clone)]
pub struct CounterReport {
    /// File name without extension: `reconciliation-counter-<date>`.
    pub stem: String,
    pub closes: Vec<Vec<Cell>>,
}

/// Where one report was written, in both formats.
#[derive(Debug, Clone)]
pub struct ReportPaths {
    pub csv: PathBuf,
    pub xlsx: PathBuf,
}

pub const EXCEPTION_HEADER: [&str; 15] = [
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

/// `expected` = `payments` − `refunds`: the cash the drawer should hold.
pub const COUNTER_HEADER: [&str; 8] = [
    "cashier_id",
    "business_date",
    "payments",
    "refunds",
    "expected",
    "counted",
    "difference",
    "outcome",
];

impl RunReport {
    pub fn new(view: &RunView, file: Option<&Path>, items: &[discrepancy::Model]) -> Self {
        let r = &view.run;
        Self {
            stem: format!(
                "reconciliation-{}-{}-v{}",
                r.channel.to_ascii_lowercase(),
                r.business_date,
                r.version
            ),
            summary: summary_rows(view, file),
            exceptions: items.iter().map(exception_row).collect(),
        }
    }
}

impl CounterReport {
    pub fn new(date: &str, closes: &[CashierClose]) -> Self {
        Self {
            stem: format!("reconciliation-counter-{date}"),
            closes: closes.iter().map(close_row).collect(),
        }
    }
}

/// Writes `<stem>.csv` and `<stem>.xlsx` of one run into `dir`.
pub fn write_run_report(dir: &Path, report: &RunReport) -> anyhow::Result<ReportPaths> {
    let paths = paths(dir, &report.stem);
    csv_file::write_run(&paths.csv, report)?;
    xlsx_file::write_run(&paths.xlsx, report)?;
    Ok(paths)
}

/// Writes `<stem>.csv` and `<stem>.xlsx` of the counter's day into `dir`.
pub fn write_counter_report(dir: &Path, report: &CounterReport) -> anyhow::Result<ReportPaths> {
    let paths = paths(dir, &report.stem);
    csv_file::write_counter(&paths.csv, report)?;
    xlsx_file::write_counter(&paths.xlsx, report)?;
    Ok(paths)
}

fn paths(dir: &Path, stem: &str) -> ReportPaths {
    ReportPaths {
        csv: dir.join(format!("{stem}.csv")),
        xlsx: dir.join(format!("{stem}.xlsx")),
    }
}

fn summary_rows(view: &RunView, file: Option<&Path>) -> Vec<(&'static str, Cell)> {
    let r = &view.run;
    let text = |s: String| Cell::Text(s);
    vec![
        ("date", text(r.business_date.to_string())),
        ("channel", text(r.channel.clone())),
        ("version", Cell::Count(i64::from(r.version))),
        (
            "statement file",
            text(file.map_or_else(|| "downloaded".to_owned(), |p| p.display().to_string())),
        ),
        ("statement sha256", text(r.statement_sha256.clone())),
        ("our count", Cell::Count(r.ledger_count)),
        ("our total", Cell::fen(r.ledger_total_fen)),
        ("gateway count", Cell::Count(r.gateway_count)),
        ("gateway total", Cell::fen(r.gateway_total_fen)),
        ("gateway refunds", Cell::fen(r.gateway_refunds_fen)),
        ("fees", Cell::Yuan(r.fee_total.clone())),
        ("net settlement", Cell::Yuan(r.net_settlement.clone())),
        ("matched count", Cell::Count(r.matched_count)),
        ("matched amount", Cell::fen(r.matched_fen)),
        ("GATEWAY_ONLY count", Cell::Count(r.gateway_only_count)),
        ("GATEWAY_ONLY amount", Cell::fen(r.gateway_only_fen)),
        ("LEDGER_ONLY count", Cell::Count(r.ledger_only_count)),
        ("LEDGER_ONLY amount", Cell::fen(r.ledger_only_fen)),
        (
            "AMOUNT_MISMATCH count",
            Cell::Count(r.amount_mismatch_count),
        ),
        ("AMOUNT_MISMATCH amount", Cell::fen(r.amount_mismatch_fen)),
        (
            "STATUS_MISMATCH count",
            Cell::Count(r.status_mismatch_count),
        ),
        ("STATUS_MISMATCH amount", Cell::fen(r.status_mismatch_fen)),
        ("DUPLICATE count", Cell::Count(r.duplicate_count)),
        ("DUPLICATE amount", Cell::fen(r.duplicate_fen)),
        ("open count", count(view.open_count)),
        ("resolved count", count(view.resolved_count)),
    ]
}

fn count(n: u64) -> Cell {
    i64::try_from(n).map_or_else(|_| Cell::Text(n.to_string()), Cell::Count)
}

fn exception_row(d: &discrepancy::Model) -> Vec<Cell> {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or(Cell::Blank, |t| {
            Cell::Text(
                t.with_timezone(&crate::gateway::beijing::BEIJING)
                    .to_rfc3339(),
            )
        })
    };
    vec![
        Cell::Text(d.class.clone()),
        Cell::Text(d.state.clone()),
        Cell::Text(d.movement.clone()),
        Cell::Text(d.out_trade_no.clone()),
        Cell::optional_text(d.gateway_trade_no.as_ref()),
        Cell::optional_text(d.refund_no.as_ref()),
        Cell::optional_text(d.account_no.as_ref()),
        Cell::optional_fen(d.ledger_fen),
        Cell::optional_fen(d.gateway_fen),
        Cell::fen(d.difference_fen),
        time(d.ledger_time),
        time(d.gateway_time),
        Cell::optional_text(d.action.as_ref()),
        Cell::optional_text(d.operator.as_ref()),
        Cell::optional_text(d.note.as_ref()),
    ]
}

fn close_row(c: &CashierClose) -> Vec<Cell> {
    vec![
        Cell::Text(c.close.cashier_id.clone()),
        Cell::Text(c.close.business_date.to_string()),
        Cell::fen(c.close.payments_fen),
        Cell::fen(c.close.refunds_fen),
        Cell::fen(c.close.expected_fen),
        Cell::fen(c.close.counted_fen),
        Cell::fen(c.close.difference_fen),
        Cell::Text(c.outcome().as_str().to_owned()),
    ]
}

#[cfg(test)]
mod tests;
