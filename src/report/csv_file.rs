//! The CSV form of the reports: the record. Amounts are the exact decimal text we store, so a
//! CSV report re-reads to the same fen.

use std::path::Path;

use super::{COUNTER_HEADER, CounterReport, EXCEPTION_HEADER, RunReport};

/// Summary rows (`name,value`), an empty line, then the exception table.
pub(super) fn write_run(path: &Path, report: &RunReport) -> anyhow::Result<()> {
    let mut out = csv::WriterBuilder::new().flexible(true).from_path(path)?;
    for (name, value) in &report.summary {
        out.write_record([*name, value.to_text().as_str()])?;
    }
    out.write_record([""])?;
    out.write_record(EXCEPTION_HEADER)?;
    for row in &report.exceptions {
        out.write_record(row.iter().map(super::Cell::to_text))?;
    }
    out.flush()?;
    Ok(())
}

pub(super) fn write_counter(path: &Path, report: &CounterReport) -> anyhow::Result<()> {
    let mut out = csv::Writer::from_path(path)?;
    out.write_record(COUNTER_HEADER)?;
    for row in &report.closes {
        out.write_record(row.iter().map(super::Cell::to_text))?;
    }
    out.flush()?;
    Ok(())
}
