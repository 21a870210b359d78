//! The XLSX form of the reports, for finance's spreadsheets: a `Summary` sheet and an
//! `Exceptions` sheet per run, one `Cashier closes` sheet for the counter. Tables have a bold,
//! frozen header row with an autofilter; amounts are numeric cells formatted `#,##0.00` so a
//! column can be summed.

use std::path::Path;

use rust_xlsxwriter::{ColNum, Format, RowNum, Workbook, Worksheet, XlsxError};

use super::{COUNTER_HEADER, Cell, CounterReport, EXCEPTION_HEADER, RunReport};

/// Autofit stops here: a long note must not push the other columns off screen.
const COLUMN_WIDTH_MAX_PX: u32 = 300;

const YUAN_FORMAT: &str = "#,##0.00";

pub(super) fn write_run(path: &Path, report: &RunReport) -> anyhow::Result<()> {
    let mut workbook = Workbook::new();
    let summary = workbook.add_worksheet().set_name("Summary")?;
    let formats = Formats::new();
    for (row, (name, value)) in (0..).zip(&report.summary) {
        summary.write_string_with_format(row, 0, *name, &formats.bold)?;
        write_cell(summary, row, 1, value, &formats)?;
    }
    summary.set_autofit_max_width(COLUMN_WIDTH_MAX_PX).autofit();
    let exceptions = workbook.add_worksheet().set_name("Exceptions")?;
    write_table(exceptions, &EXCEPTION_HEADER, &report.exceptions)?;
    workbook.save(path)?;
    Ok(())
}

pub(super) fn write_counter(path: &Path, report: &CounterReport) -> anyhow::Result<()> {
    let mut workbook = Workbook::new();
    let closes = workbook.add_worksheet().set_name("Cashier closes")?;
    write_table(closes, &COUNTER_HEADER, &report.closes)?;
    workbook.save(path)?;
    Ok(())
}

/// A header row (bold, frozen, with an autofilter over the table) and one row per record.
fn write_table(sheet: &mut Worksheet, header: &[&str], rows: &[Vec<Cell>]) -> anyhow::Result<()> {
    let formats = Formats::new();
    for (col, name) in (0..).zip(header) {
        sheet.write_string_with_format(0, col, *name, &formats.bold)?;
    }
    for (row, cells) in (1..).zip(rows) {
        for (col, cell) in (0..).zip(cells) {
            write_cell(sheet, row, col, cell, &formats)?;
        }
    }
    let last_row = RowNum::try_from(rows.len())?;
    let last_col = ColNum::try_from(header.len().saturating_sub(1))?;
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, last_row, last_col)?;
    sheet.set_autofit_max_width(COLUMN_WIDTH_MAX_PX).autofit();
    Ok(())
}

struct Formats {
    bold: Format,
    yuan: Format,
}

impl Formats {
    fn new() -> Self {
        Self {
            bold: Format::new().set_bold(),
            yuan: Format::new().set_num_format(YUAN_FORMAT),
        }
    }
}

fn write_cell(
    sheet: &mut Worksheet,
    row: RowNum,
    col: ColNum,
    cell: &Cell,
    formats: &Formats,
) -> Result<(), XlsxError> {
    let written = match cell {
        Cell::Blank => return Ok(()),
        Cell::Text(text) => sheet.write_string(row, col, text.as_str()),
        Cell::Count(count) => match i32::try_from(*count) {
            Ok(small) => sheet.write_number(row, col, small),
            Err(_) => sheet.write_string(row, col, count.to_string()),
        },
        Cell::Yuan(yuan) => match excel_number(yuan) {
            Some(number) => sheet.write_number_with_format(row, col, number, &formats.yuan),
            None => sheet.write_string(row, col, yuan.as_str()),
        },
    };
    written.map(drop)
}

/// The spreadsheet's number for an exact decimal text. Excel stores every number as an IEEE
/// double, so this is the one place money leaves `Decimal`: we parse the exact yuan string
/// (`"192.15"`), which gives the double nearest to it, the same value Excel would read from the
/// CSV. No arithmetic is done on the float; the CSV stays the record. Text that is not a
/// finite number is kept as text rather than guessed at.
fn excel_number(exact: &str) -> Option<f64> {
    exact.parse::<f64>().ok().filter(|n| n.is_finite())
}
