//! Property tests: random ledgers and statements with exceptions injected. Whatever the mix,
//! every statement row and every ledger entry lands in exactly one place, the totals tie out,
//! and each injected exception comes out in its class.

use std::collections::HashMap;

use proptest::prelude::*;

use super::super::*;
use super::{at, day};

const AMOUNTS_FEN: [i64; 4] = [1000, 2500, 8635, 12055];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    Match,
    Drop,
    Mismatch(i64),
    Twice,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RefundFate {
    Both,
    NoNumber,
    LedgerOnly,
    GatewayOnly,
    Mismatch(i64),
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => Just(Fate::Match),
        1 => Just(Fate::Drop),
        1 => (1i64..500).prop_map(Fate::Mismatch),
        1 => Just(Fate::Twice),
    ]
}

fn refund_fate() -> impl Strategy<Value = RefundFate> {
    prop_oneof![
        3 => Just(RefundFate::Both),
        1 => Just(RefundFate::NoNumber),
        1 => Just(RefundFate::LedgerOnly),
        1 => Just(RefundFate::GatewayOnly),
        1 => (1i64..500).prop_map(RefundFate::Mismatch),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    /// (account, amount index, second of the day, fate)
    payments: Vec<(u8, usize, u32, Fate)>,
    /// (amount, second of the day, fate)
    refunds: Vec<(i64, u32, RefundFate)>,
    unknown_rows: Vec<i64>,
    shuffle_seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(
            (0u8..5, 0usize..AMOUNTS_FEN.len(), 0u32..86_400, fate()),
            0..40,
        ),
        prop::collection::vec((1i64..5000, 0u32..86_400, refund_fate()), 0..10),
        prop::collection::vec(1i64..100_000, 0..5),
        any::<u64>(),
    )
        .prop_map(|(payments, refunds, unknown_rows, shuffle_seed)| Case {
            payments,
            refunds,
            unknown_rows,
            shuffle_seed,
        })
}

fn time_of(second: u32) -> chrono::NaiveDateTime {
    at("00:00:00") + chrono::TimeDelta::seconds(i64::from(second))
}

struct Built {
    payments: Vec<LedgerPayment>,
    refunds: Vec<LedgerRefund>,
    statement: Vec<GatewayRow<'static>>,
}

fn gateway_row(
    movement: Movement,
    no: &str,
    refund_no: Option<String>,
    fen: i64,
    second: u32,
) -> GatewayRow<'static> {
    GatewayRow {
        movement,
        out_trade_no: no.to_owned().into(),
        gateway_trade_no: format!("G{no}").into(),
        refund_no: refund_no.map(Into::into),
        amount_fen: fen,
        fee: rust_decimal::Decimal::new(fen % 7, 5),
        trade_time: time_of(second),
        line_no: 0,
    }
}

fn build(case: &Case) -> Built {
    let mut payments = Vec::new();
    let mut statement = Vec::new();
    for (index, &(account, amount, second, fate)) in case.payments.iter().enumerate() {
        let no = format!("P{index:03}");
        let fen = AMOUNTS_FEN[amount];
        payments.push(LedgerPayment {
            out_trade_no: no.clone(),
            gateway_trade_no: Some(format!("G{no}")),
            account_no: format!("A{account}"),
            amount_fen: fen,
            status: PaymentStatus::Succeeded,
            refunded_fen: 0,
            paid_at: time_of(second),
        });
        match fate {
            Fate::Match => statement.push(gateway_row(Movement::Payment, &no, None, fen, second)),
            Fate::Drop => {}
            Fate::Mismatch(delta) => {
                statement.push(gateway_row(
                    Movement::Payment,
                    &no,
                    None,
                    fen + delta,
                    second,
                ));
            }
            Fate::Twice => {
                statement.push(gateway_row(Movement::Payment, &no, None, fen, second));
                statement.push(gateway_row(Movement::Payment, &no, None, fen, second));
            }
        }
    }
    let mut refunds = Vec::new();
    for (index, &(fen, second, fate)) in case.refunds.iter().enumerate() {
        let no = format!("OLD{index:03}");
        let refund_no = format!("RF{index:03}");
        let ledger = LedgerRefund {
            out_trade_no: no.clone(),
            refund_no: refund_no.clone(),
            account_no: "A9".to_owned(),
            amount_fen: fen,
            refunded_at: time_of(second),
        };
        let (in_ledger, row) = match fate {
            RefundFate::Both => (true, Some((Some(refund_no), fen))),
            RefundFate::NoNumber => (true, Some((None, fen))),
            RefundFate::LedgerOnly => (true, None),
            RefundFate::GatewayOnly => (false, Some((Some(refund_no), fen))),
            RefundFate::Mismatch(delta) => (true, Some((Some(refund_no), fen + delta))),
        };
        if in_ledger {
            refunds.push(ledger);
        }
        if let Some((number, amount)) = row {
            statement.push(gateway_row(Movement::Refund, &no, number, amount, second));
        }
    }
    for (index, &fen) in case.unknown_rows.iter().enumerate() {
        statement.push(gateway_row(
            Movement::Payment,
            &format!("X{index:03}"),
            None,
            fen,
            43_200,
        ));
    }
    shuffle(&mut statement, case.shuffle_seed);
    for (index, row) in statement.iter_mut().enumerate() {
        row.line_no = index + 2;
    }
    Built {
        payments,
        refunds,
        statement,
    }
}

impl Built {
    fn input(&self) -> ReconcileInput<'_> {
        ReconcileInput {
            payments: &self.payments,
            refunds: &self.refunds,
            statement: &self.statement,
            neighbours: Neighbours::default(),
        }
    }
}

/// Fisher–Yates with a small LCG: the order of statement rows must not matter.
fn shuffle(rows: &mut [GatewayRow<'_>], mut seed: u64) {
    for i in (1..rows.len()).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = usize::try_from((seed >> 33) % (i as u64 + 1)).unwrap();
        rows.swap(i, j);
    }
}

fn near_midnight(at: chrono::NaiveDateTime) -> bool {
    let start = day().and_time(chrono::NaiveTime::MIN);
    let window = chrono::TimeDelta::minutes(i64::from(NEAR_MIDNIGHT_MINUTES_DEFAULT));
    at - start <= window || start + chrono::TimeDelta::days(1) - at <= window
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_input_lands_in_exactly_one_class_and_the_totals_tie_out(case in case()) {
        let built = build(&case);
        let input = built.input();
        let result = reconcile(&input, &MatchOptions::new(day()));

        // Coverage: each row and each ledger entry exactly once.
        let mut row_seen = vec![0u32; built.statement.len()];
        let mut ledger_seen: HashMap<LedgerRef, (u32, Class)> = HashMap::new();
        for pair in &result.matched {
            row_seen[pair.row] += 1;
            ledger_seen.entry(pair.ledger).or_insert((0, Class::Matched)).0 += 1;
        }
        for item in &result.discrepancies {
            if let Some(row) = item.row { row_seen[row] += 1; }
            if let Some(ledger) = item.ledger {
                ledger_seen.entry(ledger).or_insert((0, item.class)).0 += 1;
            }
            prop_assert!(item.row.is_some() || item.ledger.is_some());
        }
        prop_assert!(row_seen.iter().all(|&n| n == 1), "rows {:?}", row_seen);
        prop_assert_eq!(ledger_seen.len(), built.payments.len() + built.refunds.len());
        prop_assert!(ledger_seen.values().all(|&(n, _)| n == 1));

        // Totals: ours + Σ differences = gateway; class sums rebuild both sides.
        let totals = &result.totals;
        let differences: i64 = result.discrepancies.iter().map(|d| d.difference_fen).sum();
        prop_assert_eq!(totals.ledger_fen + differences, totals.gateway_fen);
        let classes = [
            totals.gateway_only, totals.ledger_only, totals.amount_mismatch,
            totals.status_mismatch, totals.duplicate,
        ];
        prop_assert_eq!(
            totals.matched_fen + classes.iter().map(|c| c.ledger_fen).sum::<i64>(),
            totals.ledger_fen
        );
        prop_assert_eq!(
            totals.matched_fen + classes.iter().map(|c| c.gateway_fen).sum::<i64>(),
            totals.gateway_fen
        );
        prop_assert_eq!(
            totals.matched_count + classes.iter().map(|c| c.count).sum::<usize>(),
            result.matched.len() + result.discrepancies.len()
        );
        prop_assert_eq!(
            totals.ledger_fen - totals.ledger_only.ledger_fen + totals.gateway_only.gateway_fen
                + totals.amount_mismatch.difference_fen + totals.status_mismatch.difference_fen,
            totals.gateway_fen
        );

        // Injected exceptions come out in their class.
        for (index, &(_, _, _, fate)) in case.payments.iter().enumerate() {
            let class = ledger_seen[&LedgerRef::Payment(index)].1;
            match fate {
                Fate::Match | Fate::Twice => prop_assert!(matches!(class, Class::Matched | Class::Duplicate)),
                Fate::Drop => prop_assert_eq!(class, Class::LedgerOnly),
                Fate::Mismatch(_) => prop_assert_eq!(class, Class::AmountMismatch),
            }
        }
        let twice = case.payments.iter().filter(|p| p.3 == Fate::Twice).count();
        prop_assert_eq!(totals.gateway_only.count, twice + case.unknown_rows.len());
        let refund_class = |fate: RefundFate| match fate {
            RefundFate::Both | RefundFate::NoNumber => Class::Matched,
            RefundFate::LedgerOnly | RefundFate::GatewayOnly => Class::StatusMismatch,
            RefundFate::Mismatch(_) => Class::AmountMismatch,
        };
        let mut refund_index = 0;
        for &(_, _, fate) in &case.refunds {
            if fate == RefundFate::GatewayOnly { continue; }
            prop_assert_eq!(ledger_seen[&LedgerRef::Refund(refund_index)].1, refund_class(fate));
            refund_index += 1;
        }

        // States: HELD exactly for ledger-side-only items near midnight; nothing resolves
        // without neighbours.
        for item in &result.discrepancies {
            let ledger_side_only = item.row.is_none();
            let held = ledger_side_only && item.ledger_time.is_some_and(near_midnight);
            let expected = if held { State::Held } else { State::Open };
            prop_assert_eq!(item.state, expected);
        }

        // DUPLICATE: the original is a MATCHED earlier payment of the same account and amount.
        let by_no: HashMap<&str, &LedgerPayment> =
            built.payments.iter().map(|p| (p.out_trade_no.as_str(), p)).collect();
        for item in result.discrepancies.iter().filter(|d| d.class == Class::Duplicate) {
            let this = by_no[item.out_trade_no.as_str()];
            let first = by_no[item.duplicate_of.as_deref().unwrap()];
            prop_assert_eq!((&this.account_no, this.amount_fen), (&first.account_no, first.amount_fen));
            prop_assert!((first.paid_at, &first.out_trade_no) < (this.paid_at, &this.out_trade_no));
            let original_matched = result.matched.iter().any(|m| {
                matches!(m.ledger, LedgerRef::Payment(i) if built.payments[i].out_trade_no == first.out_trade_no)
            });
            prop_assert!(original_matched);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The split of the order-number join changes the speed, never the result.
    #[test]
    fn the_result_does_not_depend_on_the_number_of_parts(case in case(), parts in 2usize..6) {
        let built = build(&case);
        let input = built.input();
        let one = MatchOptions { threads: 1, ..MatchOptions::new(day()) };
        let many = MatchOptions { threads: parts, ..one };
        prop_assert_eq!(reconcile(&input, &many), reconcile(&input, &one));
    }
}
