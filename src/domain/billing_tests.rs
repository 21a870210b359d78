//! Bill drafting tests: example 7.8 end to end, meter replacement, prepayment and skips.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::domain::calendar::parse_date;
use crate::domain::money::UnitPrice;
use crate::domain::reading::DEFAULT_ROLLOVER_MAX_M3;
use crate::domain::tariff::{CustomerClass, PriceChange, decode_tiers};

fn date(text: &str) -> NaiveDate {
    parse_date(text).unwrap()
}

/// One tier at 2.40 plus 0.95 sewage and 0.20 resource tax: 3.55 all-in, as in example 7.8.
fn all_in_3_55() -> Vec<TariffVersion> {
    vec![TariffVersion {
        code: "FLAT".to_string(),
        customer_class: CustomerClass::Residential,
        effective_from: date("2020-01-01"),
        tiers: decode_tiers(":2.40").unwrap(),
        sewage_price: UnitPrice::parse("0.95").unwrap(),
        resource_price: UnitPrice::parse("0.20").unwrap(),
        base_household_size: 4,
        extra_m3_per_person: 0,
        price_change: PriceChange::ReadingDate,
    }]
}

fn meter(
    no: &str,
    state: MeterState,
    last_billed_on: &str,
    reading: Option<(u64, &str)>,
) -> MeterSnapshot {
    MeterSnapshot {
        meter_no: no.to_string(),
        register_digits: 5,
        state,
        last_billed_on: date(last_billed_on),
        new_reading: reading.map(|(index, on)| (index, date(on))),
        active: true,
    }
}

fn account<'a>(versions: &'a [TariffVersion], meters: Vec<MeterSnapshot>) -> AccountSnapshot<'a> {
    AccountSnapshot {
        account_no: "A001",
        household_size: 3,
        versions,
        meters,
        recent_actual_volumes: vec![38, 41, 36],
        billed_by_year: BTreeMap::new(),
        prepayment_balance: Money::ZERO,
    }
}

fn request(period: &str, issued_on: &str) -> BillRequest {
    BillRequest {
        period: Period::parse(period).unwrap(),
        issued_on: date(issued_on),
        due_days: DEFAULT_DUE_DAYS,
        rollover_max_m3: DEFAULT_ROLLOVER_MAX_M3,
    }
}

fn issued(outcome: BillOutcome) -> DraftBill {
    match outcome {
        BillOutcome::Issue(bill) => bill,
        BillOutcome::Skip(reason) => panic!("expected a bill, skipped: {reason}"),
    }
}

/// The March estimate of example 7.8, and the meter as it stands afterwards.
fn march_estimate(versions: &[TariffVersion]) -> (DraftBill, MeterSnapshot) {
    let before = meter("M1", MeterState::at(2046), "2024-02-29", None);
    let bill = issued(
        draft_bill(
            &account(versions, vec![before.clone()]),
            &request("2024-03", "2024-04-02"),
        )
        .unwrap(),
    );
    let after = MeterSnapshot {
        state: bill.segments[0].new_state,
        last_billed_on: bill.to,
        ..before
    };
    (bill, after)
}

#[test]
fn example_7_8_a_period_without_a_reading_is_estimated_from_the_last_three_actuals() {
    let versions = all_in_3_55();
    let (bill, meter) = march_estimate(&versions);
    assert!(bill.estimated);
    assert_eq!(bill.volume_m3, 38);
    assert_eq!(bill.total.to_string(), "134.90");
    assert_eq!(bill.segments[0].previous_index, 2046);
    assert_eq!(bill.segments[0].current_index, 2084);
    assert_eq!(bill.segments[0].actual_index, None);
    assert_eq!(bill.to, date("2024-03-31"));
    assert_eq!(bill.due_on, date("2024-04-17"));
    assert_eq!(
        meter.state,
        MeterState {
            last_actual_index: 2046,
            system_index: 2084
        }
    );
}

#[test]
fn example_7_8_the_next_actual_reading_bills_only_beyond_the_estimate() {
    let versions = all_in_3_55();
    let (_, after_estimate) = march_estimate(&versions);
    let april = MeterSnapshot {
        new_reading: Some((2131, date("2024-04-28"))),
        ..after_estimate
    };
    let bill = issued(
        draft_bill(
            &account(&versions, vec![april]),
            &request("2024-04", "2024-05-02"),
        )
        .unwrap(),
    );
    assert!(!bill.estimated);
    assert_eq!(bill.volume_m3, 47);
    assert_eq!(bill.total.to_string(), "166.85");
    assert_eq!(bill.segments[0].previous_index, 2084);
    assert_eq!(bill.segments[0].current_index, 2131);
    assert_eq!(bill.from, date("2024-03-31"));
}

#[test]
fn example_7_8_a_reading_below_the_estimate_bills_zero_and_waits_for_the_needle() {
    let versions = all_in_3_55();
    let (_, after_estimate) = march_estimate(&versions);
    let april = MeterSnapshot {
        new_reading: Some((2071, date("2024-04-28"))),
        ..after_estimate
    };
    let bill = issued(
        draft_bill(
            &account(&versions, vec![april.clone()]),
            &request("2024-04", "2024-05-02"),
        )
        .unwrap(),
    );
    assert_eq!(bill.volume_m3, 0);
    assert!(bill.lines.is_empty());
    assert_eq!(bill.total.to_string(), "0.00");
    let waiting = bill.segments[0].new_state;
    assert_eq!(
        waiting,
        MeterState {
            last_actual_index: 2071,
            system_index: 2084
        }
    );
    assert_eq!(bill.segments[0].current_index, 2084);

    let may = MeterSnapshot {
        state: waiting,
        last_billed_on: date("2024-04-28"),
        new_reading: Some((2110, date("2024-05-28"))),
        ..april
    };
    let bill = issued(
        draft_bill(
            &account(&versions, vec![may]),
            &request("2024-05", "2024-06-02"),
        )
        .unwrap(),
    );
    assert_eq!(bill.volume_m3, 26);
    assert_eq!(bill.total.to_string(), "92.30");
}

#[test]
fn a_replaced_meter_and_its_successor_add_up_in_one_bill() {
    let versions = all_in_3_55();
    let old = MeterSnapshot {
        active: false,
        ..meter(
            "OLD",
            MeterState::at(5000),
            "2024-03-01",
            Some((5012, "2024-04-10")),
        )
    };
    let new = meter(
        "NEW",
        MeterState::at(3),
        "2024-04-10",
        Some((23, "2024-04-30")),
    );
    let bill = issued(
        draft_bill(
            &account(&versions, vec![old, new]),
            &request("2024-04", "2024-05-02"),
        )
        .unwrap(),
    );
    let volumes: Vec<(&str, u64)> = bill
        .segments
        .iter()
        .map(|s| (s.meter_no.as_str(), s.volume_m3))
        .collect();
    assert_eq!(volumes, vec![("OLD", 12), ("NEW", 20)]);
    assert_eq!(bill.volume_m3, 32);
    assert_eq!(
        (bill.from, bill.to),
        (date("2024-03-01"), date("2024-04-30"))
    );
    assert_eq!(bill.total.to_string(), "113.60");
}

#[test]
fn prepayment_is_applied_up_to_the_bill_total() {
    let versions = all_in_3_55();
    let cases = [
        ("50.00", "50.00"),
        ("200.00", "134.90"),
        ("0.00", "0.00"),
        ("-5.00", "0.00"),
    ];
    for (balance, applied) in cases {
        let mut snapshot = account(
            &versions,
            vec![meter("M1", MeterState::at(2046), "2024-02-29", None)],
        );
        snapshot.prepayment_balance = Money::parse(balance).unwrap();
        let bill = issued(draft_bill(&snapshot, &request("2024-03", "2024-04-02")).unwrap());
        assert_eq!(
            bill.prepayment_applied.to_string(),
            applied,
            "balance {balance}"
        );
    }
}

#[test]
fn an_estimate_is_dated_the_issue_day_when_issued_inside_the_period() {
    let versions = all_in_3_55();
    let snapshot = account(
        &versions,
        vec![meter("M1", MeterState::at(2046), "2024-02-29", None)],
    );
    let bill = issued(draft_bill(&snapshot, &request("2024-03", "2024-03-20")).unwrap());
    assert_eq!(bill.to, date("2024-03-20"));
}

#[test]
fn accounts_that_cannot_be_estimated_are_skipped_with_a_reason() {
    let versions = all_in_3_55();
    let mut no_history = account(
        &versions,
        vec![meter("M1", MeterState::at(2046), "2024-02-29", None)],
    );
    no_history.recent_actual_volumes.clear();
    let outcome = draft_bill(&no_history, &request("2024-03", "2024-04-02")).unwrap();
    let BillOutcome::Skip(reason) = outcome else {
        panic!("expected a skip")
    };
    assert_eq!(
        reason.to_string(),
        "no reading in 2024-03 and no billed actual history to estimate from"
    );

    let inactive = MeterSnapshot {
        active: false,
        ..meter("M1", MeterState::at(2046), "2024-02-29", None)
    };
    let outcome = draft_bill(
        &account(&versions, vec![inactive]),
        &request("2024-03", "2024-04-02"),
    )
    .unwrap();
    assert_eq!(
        outcome,
        BillOutcome::Skip(SkipReason::NoActiveMeter {
            period: Period::parse("2024-03").unwrap()
        })
    );
}

#[test]
fn bad_readings_are_errors_naming_the_meter() {
    let versions = all_in_3_55();
    let later = meter(
        "M1",
        MeterState::at(2046),
        "2024-02-29",
        Some((2100, "2024-04-01")),
    );
    let err = draft_bill(
        &account(&versions, vec![later]),
        &request("2024-03", "2024-04-02"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "meter M1: reading on 2024-04-01 is after the billing period 2024-03; it belongs to a later period's bill"
    );

    let backwards = meter(
        "M1",
        MeterState::at(2046),
        "2024-02-29",
        Some((1500, "2024-03-30")),
    );
    let err = draft_bill(
        &account(&versions, vec![backwards]),
        &request("2024-03", "2024-04-02"),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        BillingError::Reading {
            source: ReadingError::ImplausibleRollover { .. },
            ..
        }
    ));
    assert!(
        err.to_string()
            .starts_with("meter M1: index 1500 is below the previous index 2046")
    );
}

#[test]
fn an_unbilled_reading_from_a_skipped_earlier_period_is_billed_now() {
    let versions = all_in_3_55();
    let backlog = meter(
        "M1",
        MeterState::at(2046),
        "2024-01-31",
        Some((2076, "2024-02-27")),
    );
    let bill = issued(
        draft_bill(
            &account(&versions, vec![backlog]),
            &request("2024-03", "2024-04-02"),
        )
        .unwrap(),
    );
    assert_eq!((bill.volume_m3, bill.to), (30, date("2024-02-27")));
}

#[test]
fn a_late_recorded_reading_dated_before_the_estimate_trues_up_as_of_the_estimate_date() {
    let versions = all_in_3_55();
    let (_, after_estimate) = march_estimate(&versions);
    let late = MeterSnapshot {
        new_reading: Some((2131, date("2024-03-25"))),
        ..after_estimate
    };
    let bill = issued(
        draft_bill(
            &account(&versions, vec![late]),
            &request("2024-04", "2024-05-02"),
        )
        .unwrap(),
    );
    assert_eq!(bill.volume_m3, 47);
    assert_eq!(
        (bill.from, bill.to),
        (date("2024-03-31"), date("2024-03-31"))
    );
    assert_eq!(bill.segments[0].read_on, date("2024-03-25"));
    assert_eq!(bill.total.to_string(), "166.85");
}
