#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;

use super::*;

fn report() -> RunReport {
    RunReport {
        stem: "reconciliation-wechat-2026-11-28-v2".to_owned(),
        summary: vec![
            ("date", Cell::Text("2026-11-28".to_owned())),
            ("our count", Cell::Count(3)),
            ("our total", Cell::Yuan("192.15".to_owned())),
        ],
        exceptions: vec![vec![
            Cell::Text("GATEWAY_ONLY".to_owned()),
            Cell::Text("OPEN".to_owned()),
            Cell::Text("PAYMENT".to_owned()),
            Cell::Text("WB20261128000001".to_owned()),
            Cell::Blank,
            Cell::Blank,
            Cell::Blank,
            Cell::Blank,
            Cell::Yuan("1234.50".to_owned()),
            Cell::Yuan("-1234.50".to_owned()),
        ]],
    }
}

/// The named part of the written workbook, as text.
fn part(path: &Path, name: &str) -> String {
    let file = std::fs::File::open(path).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn a_run_report_is_written_as_csv_and_as_a_workbook_of_summary_and_exceptions() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_run_report(dir.path(), &report()).unwrap();
    assert!(
        paths
            .xlsx
            .ends_with("reconciliation-wechat-2026-11-28-v2.xlsx")
    );

    let csv = std::fs::read_to_string(&paths.csv).unwrap();
    assert!(
        csv.starts_with("date,2026-11-28\nour count,3\nour total,192.15\n\"\"\nclass,"),
        "{csv}"
    );
    assert!(csv.contains("GATEWAY_ONLY,OPEN,PAYMENT,WB20261128000001,,,,,1234.50,-1234.50"));

    let workbook = part(&paths.xlsx, "xl/workbook.xml");
    assert!(workbook.contains(r#"name="Summary""#), "{workbook}");
    assert!(workbook.contains(r#"name="Exceptions""#), "{workbook}");
    let strings = part(&paths.xlsx, "xl/sharedStrings.xml");
    for text in [
        "our total",
        "GATEWAY_ONLY",
        "WB20261128000001",
        "gateway_amount",
    ] {
        assert!(strings.contains(text), "{text} in {strings}");
    }
    let summary = part(&paths.xlsx, "xl/worksheets/sheet1.xml");
    assert!(summary.contains("<v>3</v>"), "{summary}");
    assert!(summary.contains("<v>192.15</v>"), "{summary}");
}

#[test]
fn exception_amounts_are_summable_numbers_under_a_frozen_filtered_header() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_run_report(dir.path(), &report()).unwrap();
    let sheet = part(&paths.xlsx, "xl/worksheets/sheet2.xml");
    assert!(sheet.contains("<v>1234.5</v>"), "{sheet}");
    assert!(sheet.contains("<v>-1234.5</v>"), "{sheet}");
    assert!(sheet.contains(r#"<autoFilter ref="A1:O2"/>"#), "{sheet}");
    assert!(sheet.contains(r#"ySplit="1""#), "{sheet}");
    assert!(sheet.contains("<cols>"), "columns get widths: {sheet}");
    let styles = part(&paths.xlsx, "xl/styles.xml");
    assert!(styles.contains(r##"formatCode="#,##0.00""##), "{styles}");
    assert!(styles.contains("<b/>"), "{styles}");
}

#[test]
fn the_counter_report_is_one_sheet_of_cashier_closes() {
    let dir = tempfile::tempdir().unwrap();
    let report = CounterReport {
        stem: "reconciliation-counter-2026-11-28".to_owned(),
        closes: vec![vec![
            Cell::Text("C-7".to_owned()),
            Cell::Text("2026-11-28".to_owned()),
            Cell::Yuan("400.00".to_owned()),
            Cell::Yuan("50.00".to_owned()),
            Cell::Yuan("350.00".to_owned()),
            Cell::Yuan("349.50".to_owned()),
            Cell::Yuan("-0.50".to_owned()),
            Cell::Text("SHORT".to_owned()),
        ]],
    };
    let paths = write_counter_report(dir.path(), &report).unwrap();
    let csv = std::fs::read_to_string(&paths.csv).unwrap();
    assert!(
        csv.ends_with("C-7,2026-11-28,400.00,50.00,350.00,349.50,-0.50,SHORT\n"),
        "{csv}"
    );
    let workbook = part(&paths.xlsx, "xl/workbook.xml");
    assert!(workbook.contains(r#"name="Cashier closes""#), "{workbook}");
    let sheet = part(&paths.xlsx, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains("<v>349.5</v>"), "{sheet}");
    assert!(sheet.contains(r#"<autoFilter ref="A1:H2"/>"#), "{sheet}");
}
