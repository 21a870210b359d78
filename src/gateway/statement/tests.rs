//! Parser tests on the fixture files of `tests/fixtures/statements/` (written by its
//! `generate.py` from the documented layouts; `sim_*` written by the loopback simulators).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

use super::alipay::{parse_alipay_csv, parse_alipay_zip};
use super::wechat::{parse_wechat_bill, uncompressed, verify_sha1};
use super::{Channel, RowKind, StatementError, parse_fen, sha256_hex};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/statements/",
            $name
        ))
        .as_slice()
    };
}

fn time(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn gbk(text: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(text).0.into_owned()
}

fn gbk_text(bytes: &[u8]) -> String {
    encoding_rs::GBK.decode(bytes).0.into_owned()
}

#[test]
fn yuan_strings_become_exact_fen_and_anything_else_is_refused() {
    let cases = [
        ("35.80", Some(3580)),
        ("35.8", Some(3580)),
        ("35", Some(3500)),
        ("-0.04", Some(-4)),
        ("0.00", Some(0)),
        ("1.234", None),
        ("abc", None),
        ("", None),
        ("1.", None),
        (".5", None),
        ("+1.00", None),
        ("1e3", None),
        ("1,000.00", None),
        (" 1.00", None),
        ("--1", None),
    ];
    for (text, fen) in cases {
        assert_eq!(parse_fen(text), fen, "{text:?}");
    }
}

#[test]
fn alipay_zip_with_gbk_entry_names_yields_payments_and_refunds() {
    let bytes = fixture!("alipay_20250101.csv.zip");
    let statement = parse_alipay_zip(bytes).unwrap();
    assert_eq!(statement.channel, Channel::Alipay);
    assert_eq!(statement.account.as_deref(), Some("20880211096256330156"));
    assert_eq!(statement.business_date, NaiveDate::from_ymd_opt(2025, 1, 1));
    assert_eq!(statement.sha256, sha256_hex(bytes));
    let kinds: Vec<_> = statement.rows.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            RowKind::Payment,
            RowKind::Payment,
            RowKind::Payment,
            RowKind::Refund
        ]
    );
    let first = &statement.rows[0];
    assert_eq!(first.gateway, Channel::Alipay);
    assert_eq!(first.out_trade_no, "WB202501010001");
    assert_eq!(first.gateway_trade_no, "2025010122001400000000000001");
    assert_eq!(first.amount_fen, 3580);
    assert_eq!(first.settlement_fen, 3580);
    assert_eq!(first.fee, dec("0.21"), "a fee written -0.21 is a charge");
    assert_eq!(first.trade_time, time("2025-01-01 10:00:21"));
    assert_eq!(first.status, "交易");
    assert_eq!(first.refund_no, None);
    assert_eq!(first.line_no, 6);

    let refund = &statement.rows[3];
    assert_eq!(refund.out_trade_no, "WB202412310009");
    assert_eq!(
        refund.amount_fen, 1000,
        "negative refund amounts become positive"
    );
    assert_eq!(refund.refund_no.as_deref(), Some("RF202501010001"));
    assert_eq!(refund.trade_time, time("2025-01-01 15:30:00"));
    assert_eq!(refund.fee, dec("-0.06"), "a returned fee is negative");

    let totals = &statement.totals;
    assert_eq!((totals.payment_count, totals.refund_count), (3, 1));
    assert_eq!(totals.payment_settlement_fen, 24270);
    assert_eq!(totals.refund_settlement_fen, 1000);
    assert_eq!(totals.fee, dec("1.39"));
}

#[test]
fn alipay_quoted_field_with_commas_is_one_field() {
    let statement = parse_alipay_csv(fixture!("alipay_detail.csv")).unwrap();
    let row = &statement.rows[1];
    assert_eq!(row.out_trade_no, "WB202501010002");
    assert_eq!(row.amount_fen, 12055);
    assert_eq!(row.line_no, 7);
}

#[test]
fn alipay_csv_alone_parses_like_the_zip_and_hashes_its_own_bytes() {
    let csv = fixture!("alipay_detail.csv");
    let from_csv = parse_alipay_csv(csv).unwrap();
    let from_zip = parse_alipay_zip(fixture!("alipay_20250101.csv.zip")).unwrap();
    assert_eq!(from_csv.rows, from_zip.rows);
    assert_eq!(from_csv.sha256, sha256_hex(csv));
    let from_lf = parse_alipay_csv(fixture!("alipay_detail_lf.csv")).unwrap();
    assert_eq!(from_lf.rows, from_csv.rows, "LF and CRLF read the same");
}

#[test]
fn alipay_zip_with_utf8_flagged_names_is_accepted() {
    let statement = parse_alipay_zip(fixture!("alipay_utf8_names.csv.zip")).unwrap();
    assert_eq!(statement.rows.len(), 4);
}

#[test]
fn alipay_zip_without_the_detail_entry_is_rejected_naming_its_entries() {
    let error = parse_alipay_zip(fixture!("alipay_no_detail_entry.csv.zip")).unwrap_err();
    match error {
        StatementError::MissingDetailEntry { entries } => {
            assert!(entries.ends_with("_业务明细(汇总).csv"), "{entries}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        parse_alipay_zip(b"PK not a zip"),
        Err(StatementError::Zip(_))
    ));
}

#[test]
fn alipay_empty_day_is_a_valid_statement_with_zero_totals() {
    for bytes in [
        fixture!("alipay_empty_day.csv"),
        fixture!("alipay_empty_day_no_refund_footer.csv"),
    ] {
        let statement = parse_alipay_csv(bytes).unwrap();
        assert!(statement.rows.is_empty());
        assert_eq!(statement.totals.payment_count, 0);
        assert_eq!(statement.totals.refund_settlement_fen, 0);
    }
}

#[test]
fn alipay_positive_refund_amounts_are_classified_by_business_type() {
    let text = gbk_text(fixture!("alipay_detail.csv")).replace(",-10.00,-10.00,", ",10.00,10.00,");
    let statement = parse_alipay_csv(&gbk(&text)).unwrap();
    assert_eq!(statement.rows[3].kind, RowKind::Refund);
    assert_eq!(statement.rows[3].amount_fen, 1000);
}

#[test]
fn alipay_totals_that_do_not_tie_reject_the_file() {
    let error = parse_alipay_csv(fixture!("alipay_bad_totals.csv")).unwrap_err();
    assert_eq!(
        error,
        StatementError::TotalsMismatch {
            what: "#交易合计 商家实收",
            declared: "242.71".to_owned(),
            computed: "242.70".to_owned(),
        }
    );
    let error = parse_alipay_csv(fixture!("alipay_bad_refund_count.csv")).unwrap_err();
    assert!(
        matches!(
            error,
            StatementError::TotalsMismatch {
                what: "#退款合计 count",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn alipay_row_with_the_wrong_field_count_is_rejected_naming_the_line() {
    let error = parse_alipay_csv(fixture!("alipay_wrong_field_count.csv")).unwrap_err();
    assert_eq!(
        error,
        StatementError::FieldCount {
            line: 7,
            expected: 25,
            found: 24
        }
    );
    assert_eq!(error.to_string(), "line 7: 24 fields, expected 25");
}

#[test]
fn alipay_amounts_with_three_decimals_or_letters_are_rejected() {
    for bytes in [
        fixture!("alipay_bad_amount_decimals.csv"),
        fixture!("alipay_bad_amount_text.csv"),
    ] {
        let error = parse_alipay_csv(bytes).unwrap_err();
        assert!(
            matches!(
                error,
                StatementError::BadValue {
                    line: 6,
                    column: "订单金额（元）",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}

#[test]
fn alipay_unknown_header_missing_marker_and_non_gbk_bytes_are_rejected() {
    let error = parse_alipay_csv(fixture!("alipay_unknown_header.csv")).unwrap_err();
    match &error {
        StatementError::UnknownHeader {
            line: 5,
            looks_like,
        } => {
            assert!(looks_like.contains("ASCII"), "{looks_like}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        parse_alipay_csv(fixture!("alipay_missing_end_marker.csv")),
        Err(StatementError::Missing { .. })
    ));
    assert_eq!(
        parse_alipay_csv(fixture!("alipay_not_gbk.csv")).unwrap_err(),
        StatementError::NotGbk { line: 7 }
    );
    let no_marker = gbk("#支付宝业务明细查询\r\n");
    assert!(matches!(
        parse_alipay_csv(&no_marker),
        Err(StatementError::Missing { .. })
    ));
}

#[test]
fn alipay_other_business_types_are_rejected() {
    let text = gbk_text(fixture!("alipay_detail.csv")).replacen("交易\t", "冻结\t", 1);
    let error = parse_alipay_csv(&gbk(&text)).unwrap_err();
    assert!(
        matches!(
            error,
            StatementError::BadValue {
                line: 6,
                column: "业务类型",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn alipay_bill_written_by_the_simulator_parses_and_ties() {
    let statement = parse_alipay_zip(fixture!("sim_alipay_20250314.csv.zip")).unwrap();
    assert_eq!(statement.account.as_deref(), Some("20880000000000020156"));
    assert_eq!(
        statement.business_date,
        NaiveDate::from_ymd_opt(2025, 3, 14)
    );
    assert_eq!(statement.rows.len(), 4);
    assert_eq!(statement.totals.payment_settlement_fen, 3580 + 12055 + 8635);
    let refund = &statement.rows[3];
    assert_eq!(refund.kind, RowKind::Refund);
    assert_eq!(refund.amount_fen, 1000);
    assert_eq!(refund.out_trade_no, "WB202503140002");
    assert_eq!(refund.refund_no.as_deref(), Some("RF2025031400001"));
    assert_eq!(statement.rows[2].trade_time, time("2025-03-14 23:00:21"));
    let empty = parse_alipay_zip(fixture!("sim_alipay_empty_day.csv.zip")).unwrap();
    assert!(empty.rows.is_empty());
}

#[test]
fn wechat_all_bill_yields_payments_refunds_and_exact_fees() {
    let bytes = fixture!("wechat_all.csv");
    let statement = parse_wechat_bill(bytes).unwrap();
    assert_eq!(statement.channel, Channel::Wechat);
    assert_eq!(statement.account.as_deref(), Some("1900000001"));
    assert_eq!(statement.business_date, None);
    assert_eq!(statement.sha256, sha256_hex(bytes));
    assert_eq!(statement.rows.len(), 4);
    let first = &statement.rows[0];
    assert_eq!(first.kind, RowKind::Payment);
    assert_eq!(first.out_trade_no, "WB202501010101");
    assert_eq!(first.gateway_trade_no, "4200000001202501010000000001");
    assert_eq!(first.amount_fen, 3580);
    assert_eq!(first.fee, dec("0.21480"));
    assert_eq!(first.fee.scale(), 5, "the fee keeps its 5 decimals");
    assert_eq!(first.status, "SUCCESS");
    assert_eq!(first.line_no, 2);
    let comma = &statement.rows[1];
    assert_eq!(
        comma.out_trade_no, "WB202501010102",
        "a comma in 商品名称 splits nothing"
    );
    assert_eq!(comma.amount_fen, 12055);
    let refund = &statement.rows[3];
    assert_eq!(refund.kind, RowKind::Refund);
    assert_eq!(refund.out_trade_no, "WB202412310109");
    assert_eq!(refund.refund_no.as_deref(), Some("RF202501010101"));
    assert_eq!(refund.amount_fen, 1000);
    assert_eq!(refund.settlement_fen, 1000);
    assert_eq!(refund.fee, dec("-0.06"));
    assert_eq!(refund.trade_time, time("2025-01-01 15:30:00"));
    let totals = &statement.totals;
    assert_eq!((totals.payment_count, totals.refund_count), (3, 1));
    assert_eq!(totals.payment_settlement_fen, 24270);
    assert_eq!(totals.refund_settlement_fen, 1000);
    assert_eq!(totals.fee, dec("1.39620"));
}

#[test]
fn wechat_gzip_bom_and_crlf_read_the_same_rows() {
    let plain = parse_wechat_bill(fixture!("wechat_all.csv")).unwrap();
    let gz = parse_wechat_bill(fixture!("wechat_all.csv.gz")).unwrap();
    assert_eq!(gz.rows, plain.rows);
    assert_eq!(gz.sha256, sha256_hex(fixture!("wechat_all.csv.gz")));
    let crlf = parse_wechat_bill(fixture!("wechat_all_bom_crlf.csv")).unwrap();
    assert_eq!(crlf.rows, plain.rows);
}

#[test]
fn wechat_sha1_is_checked_on_the_uncompressed_file_in_any_case() {
    let expected = std::str::from_utf8(fixture!("wechat_all.csv.sha1"))
        .unwrap()
        .trim();
    let gz = uncompressed(fixture!("wechat_all.csv.gz")).unwrap();
    verify_sha1(&gz, expected).unwrap();
    verify_sha1(fixture!("wechat_all.csv"), &expected.to_uppercase()).unwrap();
    let error = verify_sha1(fixture!("wechat_all.csv.gz"), expected).unwrap_err();
    assert!(matches!(error, StatementError::HashMismatch { .. }));
}

#[test]
fn wechat_empty_day_is_a_valid_statement() {
    let statement = parse_wechat_bill(fixture!("wechat_empty_day.csv")).unwrap();
    assert!(statement.rows.is_empty());
    assert_eq!(statement.account, None);
    assert_eq!(statement.totals.fee, Decimal::ZERO);
}

#[test]
fn wechat_summary_that_does_not_tie_rejects_the_file() {
    let error = parse_wechat_bill(fixture!("wechat_bad_fee_total.csv")).unwrap_err();
    assert_eq!(
        error,
        StatementError::TotalsMismatch {
            what: "手续费总金额",
            declared: "1.39621".to_owned(),
            computed: "1.39620".to_owned(),
        }
    );
    let error = parse_wechat_bill(fixture!("wechat_bad_count.csv")).unwrap_err();
    assert!(
        matches!(error, StatementError::TotalsMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn wechat_row_with_the_wrong_field_count_is_rejected_naming_the_line() {
    let error = parse_wechat_bill(fixture!("wechat_wrong_field_count.csv")).unwrap_err();
    assert_eq!(
        error,
        StatementError::FieldCount {
            line: 3,
            expected: 27,
            found: 26
        }
    );
}

#[test]
fn wechat_bad_amounts_are_rejected_naming_line_and_column() {
    let error = parse_wechat_bill(fixture!("wechat_bad_amount_decimals.csv")).unwrap_err();
    assert!(
        matches!(
            error,
            StatementError::BadValue {
                line: 2,
                column: "订单金额",
                ..
            }
        ),
        "{error:?}"
    );
    let error = parse_wechat_bill(fixture!("wechat_bad_amount_text.csv")).unwrap_err();
    assert!(
        error.to_string().starts_with("line 2: 应结订单金额 `abc`"),
        "{error}"
    );
    let six = String::from_utf8(fixture!("wechat_all.csv").to_vec())
        .unwrap()
        .replacen("`0.21480", "`0.214800", 1);
    let error = parse_wechat_bill(six.as_bytes()).unwrap_err();
    assert!(
        matches!(
            error,
            StatementError::BadValue {
                column: "手续费",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn wechat_unknown_layouts_are_rejected_saying_what_they_look_like() {
    let cases = [
        (fixture!("wechat_legacy_header.csv"), "legacy"),
        (fixture!("wechat_success_bill.csv"), "SUCCESS bill"),
    ];
    for (bytes, looks_like) in cases {
        let error = parse_wechat_bill(bytes).unwrap_err();
        assert!(
            matches!(&error, StatementError::UnknownHeader { line: 1, looks_like: l } if l.contains(looks_like)),
            "{error:?}"
        );
    }
}

#[test]
fn wechat_revoked_rows_missing_summary_and_bad_utf8_are_rejected() {
    let text = String::from_utf8(fixture!("wechat_all.csv").to_vec()).unwrap();
    let revoked = text.replacen("`SUCCESS", "`REVOKED", 1);
    let error = parse_wechat_bill(revoked.as_bytes()).unwrap_err();
    assert!(
        matches!(
            error,
            StatementError::BadValue {
                line: 2,
                column: "交易状态",
                ..
            }
        ),
        "{error:?}"
    );
    let cut: String = text.lines().take(3).collect::<Vec<_>>().join("\n");
    assert!(matches!(
        parse_wechat_bill(cut.as_bytes()),
        Err(StatementError::Missing { .. })
    ));
    let mut bad = text.into_bytes();
    let second_line = bad.iter().position(|&b| b == b'\n').unwrap() + 5;
    bad[second_line] = 0xff;
    assert_eq!(
        parse_wechat_bill(&bad).unwrap_err(),
        StatementError::NotUtf8 { line: 2 }
    );
    assert!(matches!(
        parse_wechat_bill(&[0x1f, 0x8b, 0, 1]),
        Err(StatementError::Gzip(_))
    ));
}

#[test]
fn wechat_bill_written_by_the_simulator_parses_and_ties() {
    let plain = parse_wechat_bill(fixture!("sim_wechat_20250314.csv")).unwrap();
    let gz = parse_wechat_bill(fixture!("sim_wechat_20250314.csv.gz")).unwrap();
    assert_eq!(plain.rows, gz.rows);
    assert_eq!(plain.rows.len(), 3);
    assert_eq!(plain.totals.fee, dec("0.87810"));
    assert_eq!(plain.rows[2].kind, RowKind::Refund);
    assert_eq!(plain.rows[2].refund_no.as_deref(), Some("RF2025031400001"));
}

/// The reference the integer `parse_fen` replaced: through `Decimal`.
fn fen_by_decimal(text: &str) -> Option<i64> {
    let yuan = super::parse_yuan(text, 2)?;
    i64::try_from(yuan.checked_mul(Decimal::ONE_HUNDRED)?.normalize()).ok()
}

#[test]
fn integer_fen_parsing_agrees_with_the_decimal_reference_at_the_edges() {
    for text in [
        "0",
        "-0.00",
        "35.8",
        "35.80",
        "-0.04",
        "007.5",
        "1.",
        ".5",
        "-",
        "",
        "+1",
        "1e3",
        "1.234",
        "3.5.1",
        " 1",
        "92233720368547758.07",
        "92233720368547758.08",
        "-92233720368547758.08",
        "-92233720368547758.09",
        "999999999999999999.99",
        "1999999999999999999",
    ] {
        assert_eq!(parse_fen(text), fen_by_decimal(text), "{text:?}");
    }
}

proptest::proptest! {
    #[test]
    fn integer_fen_parsing_agrees_with_the_decimal_reference(text in "-?[0-9.+e ]{0,22}") {
        proptest::prop_assert_eq!(parse_fen(&text), fen_by_decimal(&text));
    }

    #[test]
    fn the_direct_time_reader_agrees_with_chrono(
        y in 0_u32..10_000, mo in 0_u32..14, d in 0_u32..33, h in 0_u32..25, mi in 0_u32..61,
        s in 0_u32..62,
    ) {
        let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
        let chrono = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S").ok();
        proptest::prop_assert_eq!(super::parse_time(&text), chrono);
    }
}
