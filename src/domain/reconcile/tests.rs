//! Matching tests: the worked example 7.11, one test per class and state, property tests of
//! the invariant, and an ignored timing run over a million rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

use super::*;

mod properties;

pub(super) fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
}

pub(super) fn at(hms: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(&format!("2025-01-01 {hms}"), "%Y-%m-%d %H:%M:%S").unwrap()
}

pub(super) fn payment(no: &str, account: &str, fen: i64, paid_at: &str) -> LedgerPayment {
    LedgerPayment {
        out_trade_no: no.to_owned(),
        gateway_trade_no: Some(format!("G{no}")),
        account_no: account.to_owned(),
        amount_fen: fen,
        status: PaymentStatus::Succeeded,
        refunded_fen: 0,
        paid_at: at(paid_at),
    }
}

pub(super) fn row(no: &str, fen: i64, time: &str) -> GatewayRow<'static> {
    GatewayRow {
        movement: Movement::Payment,
        out_trade_no: no.to_owned().into(),
        gateway_trade_no: format!("G{no}").into(),
        refund_no: None,
        amount_fen: fen,
        fee: Decimal::ZERO,
        trade_time: at(time),
        line_no: 0,
    }
}

fn refund_row(no: &str, refund_no: Option<&str>, fen: i64) -> GatewayRow<'static> {
    GatewayRow {
        movement: Movement::Refund,
        refund_no: refund_no.map(|number| number.to_owned().into()),
        ..row(no, fen, "15:00:00")
    }
}

fn ledger_refund(no: &str, refund_no: &str, fen: i64, time: &str) -> LedgerRefund {
    LedgerRefund {
        out_trade_no: no.to_owned(),
        refund_no: refund_no.to_owned(),
        account_no: "A1".to_owned(),
        amount_fen: fen,
        refunded_at: at(time),
    }
}

/// Numbers the rows' lines as a file would (header on line 1).
fn lines(mut rows: Vec<GatewayRow<'static>>) -> Vec<GatewayRow<'static>> {
    for (index, row) in rows.iter_mut().enumerate() {
        row.line_no = index + 2;
    }
    rows
}

fn run(payments: &[LedgerPayment], statement: &[GatewayRow<'_>]) -> ReconcileResult {
    run_with(payments, &[], statement, Neighbours::default())
}

fn run_with(
    payments: &[LedgerPayment],
    refunds: &[LedgerRefund],
    statement: &[GatewayRow<'_>],
    neighbours: Neighbours<'_>,
) -> ReconcileResult {
    let input = ReconcileInput {
        payments,
        refunds,
        statement,
        neighbours,
    };
    reconcile(&input, &MatchOptions::new(day()))
}

fn only(result: &ReconcileResult) -> &Discrepancy {
    assert_eq!(result.discrepancies.len(), 1, "{:#?}", result.discrepancies);
    &result.discrepancies[0]
}

#[test]
fn worked_example_7_11_ties_out() {
    let ours = [
        payment("001", "A1", 24000, "09:00:00"),
        payment("002", "A2", 8635, "10:00:00"),
        payment("003", "A3", 15000, "11:00:00"),
        payment("005", "A5", 10000, "12:00:00"),
    ];
    let gateway = lines(vec![
        row("001", 24000, "09:00:01"),
        row("002", 8635, "10:00:01"),
        row("004", 5500, "11:30:00"),
        row("005", 1000, "12:00:01"),
    ]);
    let result = run(&ours, &gateway);
    let totals = &result.totals;
    assert_eq!(totals.matched_count, 2);
    assert_eq!(totals.matched_fen, 32635);
    assert_eq!(totals.ledger_fen, 57635);
    assert_eq!(totals.gateway_fen, 39135);
    let classes: Vec<_> = result
        .discrepancies
        .iter()
        .map(|d| (d.out_trade_no.as_str(), d.class, d.difference_fen))
        .collect();
    assert_eq!(
        classes,
        [
            ("003", Class::LedgerOnly, -15000),
            ("004", Class::GatewayOnly, 5500),
            ("005", Class::AmountMismatch, -9000),
        ]
    );
    assert_eq!(totals.ledger_only.ledger_fen, 15000);
    assert_eq!(totals.gateway_only.gateway_fen, 5500);
    assert_eq!(totals.amount_mismatch.difference_fen, -9000);
    // 576.35 − 150.00 + 55.00 − 90.00 = 391.35
    assert_eq!(
        totals.ledger_fen - totals.ledger_only.ledger_fen
            + totals.gateway_only.gateway_fen
            + totals.amount_mismatch.difference_fen,
        totals.gateway_fen
    );
    let mismatch = &result.discrepancies[2];
    assert_eq!(mismatch.account_no.as_deref(), Some("A5"));
    assert_eq!(mismatch.gateway_trade_no.as_deref(), Some("G005"));
    assert_eq!(
        (mismatch.ledger_fen, mismatch.gateway_fen),
        (Some(10000), Some(1000))
    );
    assert_eq!(mismatch.statement_line, Some(5));
}

#[test]
fn equal_amounts_on_the_same_order_match() {
    let result = run(
        &[payment("001", "A1", 3580, "10:00:00")],
        &[row("001", 3580, "10:00:01")],
    );
    assert!(result.discrepancies.is_empty());
    assert_eq!(
        result.matched,
        [Matched {
            ledger: LedgerRef::Payment(0),
            row: 0,
            movement: Movement::Payment,
            amount_fen: 3580
        }]
    );
}

#[test]
fn a_row_with_an_unknown_order_number_matches_on_the_gateway_trade_number() {
    let mut gateway = row("001", 3580, "10:00:01");
    gateway.out_trade_no = "SOMETHING-ELSE".into();
    let result = run(&[payment("001", "A1", 3580, "10:00:00")], &[gateway]);
    assert_eq!(result.totals.matched_count, 1);
}

#[test]
fn money_the_gateway_has_and_we_do_not_is_gateway_only_and_open() {
    let result = run(&[], &[row("004", 5500, "11:30:00")]);
    let item = only(&result);
    assert_eq!((item.class, item.state), (Class::GatewayOnly, State::Open));
    assert_eq!(
        (item.ledger_fen, item.gateway_fen, item.difference_fen),
        (None, Some(5500), 5500)
    );
    assert_eq!(item.account_no, None);
}

#[test]
fn a_second_row_for_an_order_already_matched_is_gateway_only() {
    let result = run(
        &[payment("001", "A1", 3580, "10:00:00")],
        &[row("001", 3580, "10:00:01"), row("001", 3580, "10:05:00")],
    );
    assert_eq!(result.totals.matched_count, 1);
    assert_eq!(only(&result).class, Class::GatewayOnly);
    assert_eq!(only(&result).row, Some(1));
}

#[test]
fn money_we_posted_that_the_gateway_lacks_is_ledger_only_and_open_by_day() {
    let result = run(&[payment("003", "A3", 15000, "11:00:00")], &[]);
    let item = only(&result);
    assert_eq!((item.class, item.state), (Class::LedgerOnly, State::Open));
    assert_eq!(item.difference_fen, -15000);
    assert_eq!(item.gateway_trade_no.as_deref(), Some("G003"));
}

#[test]
fn ledger_only_near_midnight_is_held_for_the_adjacent_day() {
    let cases = [
        ("23:49:59", State::Open),
        ("23:50:00", State::Held),
        ("23:59:59", State::Held),
        ("00:00:00", State::Held),
        ("00:10:00", State::Held),
        ("00:10:01", State::Open),
    ];
    for (time, state) in cases {
        let result = run(&[payment("003", "A3", 15000, time)], &[]);
        assert_eq!(only(&result).state, state, "{time}");
    }
}

#[test]
fn ledger_only_found_in_the_next_days_statement_is_auto_resolved_and_keeps_its_class() {
    let mut next = row("003", 15000, "00:00:02");
    next.line_no = 17;
    let next = [next];
    let neighbours = Neighbours {
        statement_rows: &next,
        payments: &[],
    };
    let result = run_with(
        &[payment("003", "A3", 15000, "23:59:58")],
        &[],
        &[],
        neighbours,
    );
    let item = only(&result);
    assert_eq!(
        (item.class, item.state),
        (Class::LedgerOnly, State::AutoResolved)
    );
    assert_eq!(item.cross_day, Some(CrossDay::StatementLine(17)));
    assert_eq!(result.totals.auto_resolved_count, 1);
}

#[test]
fn gateway_only_that_is_our_payment_of_the_adjacent_day_is_auto_resolved() {
    let previous = [payment("009", "A9", 2000, "00:00:00")];
    let neighbours = Neighbours {
        statement_rows: &[],
        payments: &previous,
    };
    let result = run_with(&[], &[], &[row("009", 2000, "00:00:03")], neighbours);
    let item = only(&result);
    assert_eq!(
        (item.class, item.state),
        (Class::GatewayOnly, State::AutoResolved)
    );
    assert_eq!(item.cross_day, Some(CrossDay::LedgerPaidAt(at("00:00:00"))));
}

#[test]
fn different_amounts_on_one_order_are_an_amount_mismatch_with_the_difference() {
    let result = run(
        &[payment("005", "A5", 10000, "12:00:00")],
        &[row("005", 1000, "12:00:01")],
    );
    let item = only(&result);
    assert_eq!(item.class, Class::AmountMismatch);
    assert_eq!(item.difference_fen, -9000);
    assert_eq!(item.ledger, Some(LedgerRef::Payment(0)));
    assert_eq!(item.row, Some(0));
}

#[test]
fn refunds_match_on_our_refund_number() {
    let refunds = [ledger_refund("001", "RF1", 1000, "15:00:00")];
    let result = run_with(
        &[],
        &refunds,
        &[refund_row("001", Some("RF1"), 1000)],
        Neighbours::default(),
    );
    assert!(result.discrepancies.is_empty());
    assert_eq!(result.totals.matched_fen, -1000);
    assert_eq!(result.totals.gateway_fen, -1000);
    assert_eq!(result.totals.ledger_fen, -1000);
}

#[test]
fn a_refund_row_without_a_refund_number_matches_a_refund_of_the_same_order_and_amount() {
    let refunds = [
        ledger_refund("001", "RF1", 500, "15:00:00"),
        ledger_refund("001", "RF2", 1000, "15:00:00"),
    ];
    let result = run_with(
        &[],
        &refunds,
        &[refund_row("001", None, 1000)],
        Neighbours::default(),
    );
    assert_eq!(result.matched[0].ledger, LedgerRef::Refund(1));
    assert_eq!(only(&result).ledger, Some(LedgerRef::Refund(0)));
}

#[test]
fn a_refund_on_the_gateway_only_is_a_status_mismatch() {
    let result = run_with(
        &[],
        &[],
        &[refund_row("001", Some("RF1"), 1000)],
        Neighbours::default(),
    );
    let item = only(&result);
    assert_eq!(
        (item.class, item.movement),
        (Class::StatusMismatch, Movement::Refund)
    );
    assert_eq!(
        item.difference_fen, -1000,
        "the gateway gave back money we still count"
    );
    assert_eq!(item.refund_no.as_deref(), Some("RF1"));
}

#[test]
fn a_refund_in_our_ledger_only_is_a_status_mismatch_held_near_midnight() {
    let refunds = [
        ledger_refund("001", "RF1", 1000, "15:00:00"),
        ledger_refund("002", "RF2", 700, "23:59:00"),
    ];
    let result = run_with(&[], &refunds, &[], Neighbours::default());
    let states: Vec<_> = result
        .discrepancies
        .iter()
        .map(|d| (d.class, d.state, d.difference_fen))
        .collect();
    assert_eq!(
        states,
        [
            (Class::StatusMismatch, State::Open, 1000),
            (Class::StatusMismatch, State::Held, 700),
        ]
    );
}

#[test]
fn refund_amounts_that_differ_are_an_amount_mismatch_signed_as_refunds() {
    let refunds = [ledger_refund("001", "RF1", 1000, "15:00:00")];
    let result = run_with(
        &[],
        &refunds,
        &[refund_row("001", Some("RF1"), 800)],
        Neighbours::default(),
    );
    let item = only(&result);
    assert_eq!(
        (item.class, item.movement),
        (Class::AmountMismatch, Movement::Refund)
    );
    assert_eq!(
        item.difference_fen, 200,
        "the gateway refunded 2.00 less than we did"
    );
}

#[test]
fn one_account_paying_the_same_amount_twice_in_a_day_is_a_duplicate_of_the_earlier() {
    let ours = [
        payment("002", "A1", 8635, "10:00:00"),
        payment("001", "A1", 8635, "09:00:00"),
        payment("003", "A1", 8635, "11:00:00"),
        payment("004", "A1", 1200, "11:00:00"),
        payment("005", "A2", 8635, "11:00:00"),
    ];
    let gateway: Vec<_> = ours
        .iter()
        .map(|p| row(&p.out_trade_no, p.amount_fen, "12:00:00"))
        .collect();
    let result = run(&ours, &gateway);
    let duplicates: Vec<_> = result
        .discrepancies
        .iter()
        .map(|d| {
            (
                d.class,
                d.out_trade_no.as_str(),
                d.duplicate_of.as_deref(),
                d.difference_fen,
            )
        })
        .collect();
    assert_eq!(
        duplicates,
        [
            (Class::Duplicate, "002", Some("001"), 0),
            (Class::Duplicate, "003", Some("001"), 0),
        ]
    );
    assert_eq!(result.totals.matched_count, 3);
    assert_eq!(result.totals.duplicate.count, 2);
    assert_eq!(result.totals.duplicate.gateway_fen, 2 * 8635);
}

#[test]
fn a_repeat_payment_already_refunded_in_full_is_not_a_duplicate() {
    let mut refunded = payment("002", "A1", 8635, "10:00:00");
    refunded.status = PaymentStatus::Refunded;
    refunded.refunded_fen = 8635;
    let ours = [payment("001", "A1", 8635, "09:00:00"), refunded];
    let gateway = [row("001", 8635, "09:00:01"), row("002", 8635, "10:00:01")];
    let result = run(&ours, &gateway);
    assert!(result.discrepancies.is_empty());
}

#[test]
fn fees_are_reported_apart_and_net_settlement_deducts_them() {
    let mut paid = row("001", 3580, "10:00:01");
    paid.fee = "0.21480".parse().unwrap();
    let mut refunded = refund_row("009", Some("RF9"), 1000);
    refunded.fee = "-0.06000".parse().unwrap();
    let refunds = [ledger_refund("009", "RF9", 1000, "15:00:00")];
    let result = run_with(
        &[payment("001", "A1", 3580, "10:00:00")],
        &refunds,
        &[paid, refunded],
        Neighbours::default(),
    );
    let totals = &result.totals;
    assert_eq!(totals.gateway_payments_fen, 3580);
    assert_eq!(totals.gateway_refunds_fen, 1000);
    assert_eq!(totals.fee_total, "0.15480".parse::<Decimal>().unwrap());
    assert_eq!(
        totals.net_settlement,
        "25.64520".parse::<Decimal>().unwrap()
    );
}

#[test]
fn discrepancies_come_out_sorted_by_order_number() {
    let result = run(
        &[
            payment("b", "A1", 1, "10:00:00"),
            payment("a", "A2", 2, "10:00:00"),
        ],
        &[row("c", 3, "10:00:00"), row("0", 4, "10:00:00")],
    );
    let order: Vec<_> = result
        .discrepancies
        .iter()
        .map(|d| d.out_trade_no.as_str())
        .collect();
    assert_eq!(order, ["0", "a", "b", "c"]);
}

/// A day large enough for the join to run on threads: the same result as one thread, with
/// every kind of payment row (matched, mismatched, repeated, unknown, found by the gateway's
/// number) and duplicates across the parts.
#[test]
fn a_threaded_join_gives_the_single_threaded_result() {
    const PAYMENTS: usize = 30_000;
    let payments: Vec<_> = (0..PAYMENTS)
        .map(|i| {
            let account = format!("A{}", i % 20_000);
            let mut payment = payment(
                &format!("WB{i:08}"),
                &account,
                100 + (i % 20_000 % 7) as i64,
                "12:00:00",
            );
            payment.paid_at += chrono::TimeDelta::seconds((i % 3_600) as i64);
            payment
        })
        .collect();
    let mut statement = Vec::new();
    for (i, p) in payments.iter().enumerate() {
        let fen = if i % 101 == 0 {
            p.amount_fen + 1
        } else {
            p.amount_fen
        };
        match i % 13 {
            0 => {}
            1 => statement.extend([
                row(&p.out_trade_no, fen, "12:00:00"),
                row(&p.out_trade_no, fen, "12:00:01"),
            ]),
            2 => {
                let mut by_number = row(&format!("THEIRS{i}"), fen, "12:00:00");
                by_number.gateway_trade_no = format!("G{}", p.out_trade_no).into();
                statement.push(by_number);
            }
            _ => statement.push(row(&p.out_trade_no, fen, "12:00:00")),
        }
        if i % 997 == 0 {
            statement.push(row(&format!("UNKNOWN{i}"), 5, "13:00:00"));
        }
    }
    let statement = lines(statement);
    let input = ReconcileInput {
        payments: &payments,
        refunds: &[],
        statement: &statement,
        neighbours: Neighbours::default(),
    };
    let one = MatchOptions {
        threads: 1,
        ..MatchOptions::new(day())
    };
    let expected = reconcile(&input, &one);
    assert!(
        expected.totals.duplicate.count > 1_000,
        "{:?}",
        expected.totals
    );
    assert!(expected.totals.amount_mismatch.count > 100);
    for threads in [2, 3] {
        assert_eq!(
            reconcile(&input, &MatchOptions { threads, ..one }),
            expected
        );
    }
}

#[test]
#[ignore = "timing run: cargo test --release -- --ignored --nocapture million"]
fn million_rows_timing() {
    const ROWS: usize = 1_000_000;
    let base = at("08:00:00");
    let payments: Vec<_> = (0..ROWS)
        .map(|i| LedgerPayment {
            out_trade_no: format!("WB{i:012}"),
            gateway_trade_no: Some(format!("42{i:026}")),
            account_no: format!("A{:07}", i % 700_000),
            amount_fen: i64::try_from(i % 49_999).unwrap() + 100,
            status: PaymentStatus::Succeeded,
            refunded_fen: 0,
            paid_at: base + chrono::TimeDelta::milliseconds(i64::try_from(i).unwrap() * 40),
        })
        .collect();
    let statement: Vec<_> = payments
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 1000 != 7)
        .map(|(i, p)| GatewayRow {
            movement: Movement::Payment,
            out_trade_no: p.out_trade_no.as_str().into(),
            gateway_trade_no: p.gateway_trade_no.as_deref().unwrap_or_default().into(),
            refund_no: None,
            amount_fen: if i % 1000 == 3 {
                p.amount_fen + 1
            } else {
                p.amount_fen
            },
            fee: Decimal::new(i64::try_from(i % 7).unwrap(), 5),
            trade_time: p.paid_at,
            line_no: i + 2,
        })
        .collect();
    let started = std::time::Instant::now();
    let result = run(&payments, &statement);
    println!(
        "reconciled {} ledger payments against {} rows in {:?}: {} matched, {} discrepancies",
        payments.len(),
        statement.len(),
        started.elapsed(),
        result.totals.matched_count,
        result.discrepancies.len()
    );
}
