//! The bench cannot silently rot: its generator, the real statement parsers and the matcher
//! must agree on exactly the injected class counts (no database, nothing timed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;

use super::day::{Day, Mix};
use crate::app::reconciliation::{ledger, statement};
use crate::app::settlement::{PARTIALLY_REFUNDED, PaymentChannel};
use crate::domain::reconcile::{
    LedgerPayment, LedgerRefund, MatchOptions, Neighbours, PaymentStatus, ReconcileInput, reconcile,
};
use crate::gateway::beijing::BEIJING;

fn ledger_payment(entry: &super::day::LedgerEntry) -> LedgerPayment {
    LedgerPayment {
        out_trade_no: entry.out_trade_no.clone(),
        gateway_trade_no: Some(entry.gateway_trade_no.clone()),
        account_no: entry.account_no.clone(),
        amount_fen: entry.amount_fen,
        status: if entry.status == PARTIALLY_REFUNDED {
            PaymentStatus::PartiallyRefunded
        } else {
            PaymentStatus::Succeeded
        },
        refunded_fen: entry.refunded_fen,
        paid_at: entry.paid_at.with_timezone(&BEIJING).naive_local(),
    }
}

fn generated_day_matches_as_injected(channel: PaymentChannel, rows: usize) {
    let date = NaiveDate::from_ymd_opt(2025, 3, 14).unwrap();
    let mix = Mix::for_rows(rows).unwrap();
    let day = Day::generate(mix, date).unwrap();
    let (_, bytes) = day.statement_file(channel).unwrap();
    let parsed = statement::parse(channel, &bytes).unwrap();
    let (payments, adjacent): (Vec<_>, Vec<_>) =
        day.ledger.iter().partition(|e| e.business_date == date);
    let payments: Vec<LedgerPayment> = payments.into_iter().map(ledger_payment).collect();
    let adjacent: Vec<LedgerPayment> = adjacent.into_iter().map(ledger_payment).collect();
    let refunds: Vec<LedgerRefund> = day
        .ledger_refunds
        .iter()
        .map(|r| {
            let order = &day.ledger[r.payment];
            LedgerRefund {
                out_trade_no: order.out_trade_no.clone(),
                refund_no: r.refund_no.clone(),
                account_no: order.account_no.clone(),
                amount_fen: r.amount_fen,
                refunded_at: r.completed_at.with_timezone(&BEIJING).naive_local(),
            }
        })
        .collect();
    let expected = mix.expected();
    assert_eq!(payments.len(), expected.ledger_payments);
    assert_eq!(refunds.len(), expected.ledger_refunds);
    let rows: Vec<_> = parsed.rows.iter().map(ledger::gateway_row).collect();
    let input = ReconcileInput {
        payments: &payments,
        refunds: &refunds,
        statement: &rows,
        neighbours: Neighbours {
            statement_rows: &[],
            payments: &adjacent,
        },
    };
    let result = reconcile(&input, &MatchOptions::new(date));
    expected.check(&result.totals).unwrap();
    assert!(expected.duplicate > 0 && expected.held > 0 && expected.auto_resolved > 0);
}

#[test]
fn the_alipay_bench_day_parses_and_matches_into_exactly_the_injected_classes() {
    generated_day_matches_as_injected(PaymentChannel::Alipay, 3_000);
}

#[test]
fn the_wechat_bench_day_parses_and_matches_into_exactly_the_injected_classes() {
    generated_day_matches_as_injected(PaymentChannel::Wechat, 3_000);
}

#[test]
fn a_wrong_class_count_fails_the_check_naming_the_class() {
    let expected = Mix::for_rows(1_000).unwrap().expected();
    let totals = crate::domain::reconcile::ReconcileTotals::default();
    let error = expected.check(&totals).unwrap_err().to_string();
    assert!(error.contains("MATCHED: expected"), "{error}");
}
