//! Rating tests: the worked examples 7.1–7.6 of domain.md and the invariants of `rate`.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::domain::calendar::parse_date;
use crate::domain::tariff::{CustomerClass, decode_tiers};
use proptest::prelude::*;

fn date(text: &str) -> NaiveDate {
    parse_date(text).unwrap()
}

fn price(text: &str) -> UnitPrice {
    UnitPrice::parse(text).unwrap()
}

/// The illustrative residential tariff of domain.md section 7.
pub(crate) fn residential_tariff() -> TariffVersion {
    TariffVersion {
        code: "RES".to_string(),
        customer_class: CustomerClass::Residential,
        effective_from: date("2020-01-01"),
        tiers: decode_tiers("216:2.40;300:3.60;:7.20").unwrap(),
        sewage_price: price("0.95"),
        resource_price: price("0.20"),
        base_household_size: 4,
        extra_m3_per_person: 54,
        price_change: PriceChange::ReadingDate,
    }
}

fn non_residential(effective_from: &str, supply: &str, change: PriceChange) -> TariffVersion {
    TariffVersion {
        code: "NONRES".to_string(),
        customer_class: CustomerClass::NonResidential,
        effective_from: date(effective_from),
        tiers: decode_tiers(&format!(":{supply}")).unwrap(),
        sewage_price: price("1.40"),
        resource_price: price("0.20"),
        base_household_size: 4,
        extra_m3_per_person: 0,
        price_change: change,
    }
}

struct Case<'a> {
    versions: &'a [TariffVersion],
    household_size: u32,
    from: &'a str,
    to: &'a str,
    volume_m3: u64,
    billed_by_year: &'a [(i32, u64)],
}

fn rate_case(case: &Case) -> RatedVolume {
    let billed: BTreeMap<i32, u64> = case.billed_by_year.iter().copied().collect();
    rate(&RatingInput {
        versions: case.versions,
        household_size: case.household_size,
        from: date(case.from),
        to: date(case.to),
        volume_m3: case.volume_m3,
        billed_by_year: &billed,
    })
    .unwrap()
}

/// Lines as (kind, volume, price, amount) strings, easy to compare with the rule book.
fn shown(rated: &RatedVolume) -> Vec<(String, u64, String, String)> {
    rated
        .lines
        .iter()
        .map(|l| {
            (
                l.kind.to_string(),
                l.volume_m3,
                l.unit_price.to_string(),
                l.amount.to_string(),
            )
        })
        .collect()
}

fn line(kind: &str, volume: u64, price: &str, amount: &str) -> (String, u64, String, String) {
    (
        kind.to_string(),
        volume,
        price.to_string(),
        amount.to_string(),
    )
}

#[test]
fn example_7_1_a_bill_crossing_from_tier_one_to_tier_two() {
    let versions = [residential_tariff()];
    let rated = rate_case(&Case {
        versions: &versions,
        household_size: 4,
        from: "2024-05-01",
        to: "2024-07-01",
        volume_m3: 45,
        billed_by_year: &[(2024, 198)],
    });
    assert_eq!(
        shown(&rated),
        vec![
            line("WATER_TIER_1", 18, "2.40", "43.20"),
            line("WATER_TIER_2", 27, "3.60", "97.20"),
            line("SEWAGE", 45, "0.95", "42.75"),
            line("RESOURCE_TAX", 45, "0.20", "9.00"),
        ]
    );
    assert_eq!(rated.total.to_string(), "192.15");
    assert_eq!(rated.usage_by_year, vec![(2024, 45)]);
}

#[test]
fn example_7_2_a_six_person_household_stays_in_tier_one() {
    let versions = [residential_tariff()];
    let rated = rate_case(&Case {
        versions: &versions,
        household_size: 6,
        from: "2024-05-01",
        to: "2024-07-01",
        volume_m3: 45,
        billed_by_year: &[(2024, 198)],
    });
    assert_eq!(
        rated.lines[0],
        BillLine {
            kind: LineKind::WaterTier(1),
            volume_m3: 45,
            unit_price: price("2.40"),
            amount: Money::parse("108.00").unwrap(),
        }
    );
    assert_eq!(rated.lines.len(), 3);
    assert_eq!(rated.total.to_string(), "159.75");
}

#[test]
fn example_7_3_a_bill_crossing_from_tier_two_to_tier_three() {
    let versions = [residential_tariff()];
    let rated = rate_case(&Case {
        versions: &versions,
        household_size: 4,
        from: "2024-09-01",
        to: "2024-11-01",
        volume_m3: 45,
        billed_by_year: &[(2024, 288), (2023, 5)],
    });
    assert_eq!(
        shown(&rated)[..2],
        [
            line("WATER_TIER_2", 12, "3.60", "43.20"),
            line("WATER_TIER_3", 33, "7.20", "237.60"),
        ]
    );
    assert_eq!(rated.total.to_string(), "332.55");
}

#[test]
fn example_7_4_a_bill_across_the_year_end_is_split_by_days_onto_two_ladders() {
    let versions = [residential_tariff()];
    let rated = rate_case(&Case {
        versions: &versions,
        household_size: 4,
        from: "2024-12-01",
        to: "2025-02-01",
        volume_m3: 40,
        billed_by_year: &[(2024, 290)],
    });
    assert_eq!(
        shown(&rated),
        vec![
            line("WATER_TIER_1", 20, "2.40", "48.00"),
            line("WATER_TIER_2", 10, "3.60", "36.00"),
            line("WATER_TIER_3", 10, "7.20", "72.00"),
            line("SEWAGE", 40, "0.95", "38.00"),
            line("RESOURCE_TAX", 40, "0.20", "8.00"),
        ]
    );
    assert_eq!(rated.total.to_string(), "202.00");
    assert_eq!(rated.usage_by_year, vec![(2024, 20), (2025, 20)]);
}

#[test]
fn example_7_5_non_residential_is_one_flat_tier() {
    let versions = [non_residential(
        "2020-01-01",
        "3.15",
        PriceChange::ReadingDate,
    )];
    let rated = rate_case(&Case {
        versions: &versions,
        household_size: 1,
        from: "2024-01-10",
        to: "2024-02-10",
        volume_m3: 137,
        billed_by_year: &[],
    });
    assert_eq!(
        shown(&rated),
        vec![
            line("WATER_TIER_1", 137, "3.15", "431.55"),
            line("SEWAGE", 137, "1.40", "191.80"),
            line("RESOURCE_TAX", 137, "0.20", "27.40"),
        ]
    );
    assert_eq!(rated.total.to_string(), "650.75");
}

#[test]
fn example_7_6_a_price_change_is_priced_per_the_new_versions_method() {
    let cases = [
        (
            PriceChange::ReadingDate,
            vec![line("WATER_TIER_1", 31, "3.45", "106.95")],
            "106.95",
        ),
        (
            PriceChange::SplitByDays,
            vec![
                line("WATER_TIER_1", 11, "3.15", "34.65"),
                line("WATER_TIER_1", 20, "3.45", "69.00"),
            ],
            "103.65",
        ),
    ];
    for (change, water_lines, supply) in cases {
        let versions = [
            non_residential("2024-04-01", "3.45", change),
            non_residential("2020-01-01", "3.15", change),
        ];
        let rated = rate_case(&Case {
            versions: &versions,
            household_size: 1,
            from: "2024-03-10",
            to: "2024-05-09",
            volume_m3: 31,
            billed_by_year: &[],
        });
        let water: Vec<_> = shown(&rated)
            .into_iter()
            .filter(|l| l.0.starts_with("WATER"))
            .collect();
        assert_eq!(water, water_lines, "{change:?}");
        let supply_total: Money = rated
            .lines
            .iter()
            .filter(|l| matches!(l.kind, LineKind::WaterTier(_)))
            .map(|l| l.amount)
            .sum();
        assert_eq!(supply_total.to_string(), supply, "{change:?}");
        assert_eq!(
            shown(&rated)[water_lines.len()..],
            [
                line("SEWAGE", 31, "1.40", "43.40"),
                line("RESOURCE_TAX", 31, "0.20", "6.20"),
            ]
        );
    }
}

#[test]
fn a_split_by_days_change_on_the_reading_date_prices_the_period_at_the_old_version() {
    let versions = [
        non_residential("2020-01-01", "3.15", PriceChange::SplitByDays),
        non_residential("2024-05-09", "3.45", PriceChange::SplitByDays),
    ];
    let rated = rate_case(&Case {
        versions: &versions,
        household_size: 1,
        from: "2024-03-10",
        to: "2024-05-09",
        volume_m3: 31,
        billed_by_year: &[],
    });
    assert_eq!(shown(&rated)[0], line("WATER_TIER_1", 31, "3.15", "97.65"));
}

#[test]
fn a_zero_volume_bill_has_no_lines_and_a_zero_total() {
    let versions = [residential_tariff()];
    let rated = rate_case(&Case {
        versions: &versions,
        household_size: 4,
        from: "2024-03-01",
        to: "2024-04-01",
        volume_m3: 0,
        billed_by_year: &[],
    });
    assert!(rated.lines.is_empty());
    assert_eq!(rated.total.to_string(), "0.00");
    assert!(rated.usage_by_year.is_empty());
}

#[test]
fn a_reading_on_the_same_day_as_the_previous_one_is_still_priced() {
    let versions = [residential_tariff()];
    let rated = rate_case(&Case {
        versions: &versions,
        household_size: 4,
        from: "2024-03-01",
        to: "2024-03-01",
        volume_m3: 3,
        billed_by_year: &[],
    });
    assert_eq!(rated.total.to_string(), "10.65");
}

#[test]
fn rating_refuses_a_reading_before_the_previous_one_or_a_period_with_no_version() {
    let versions = [residential_tariff()];
    let billed = BTreeMap::new();
    let mut input = RatingInput {
        versions: &versions,
        household_size: 4,
        from: date("2024-03-01"),
        to: date("2024-02-01"),
        volume_m3: 5,
        billed_by_year: &billed,
    };
    assert!(matches!(
        rate(&input),
        Err(RatingError::ToBeforeFrom { .. })
    ));
    input.from = date("2019-01-01");
    input.to = date("2019-03-01");
    assert_eq!(
        rate(&input).unwrap_err().to_string(),
        "no tariff version is in force on 2019-03-01; load a version effective on or before that date"
    );
}

#[test]
fn line_kinds_round_trip_through_their_names() {
    for kind in [
        LineKind::WaterTier(1),
        LineKind::WaterTier(12),
        LineKind::Sewage,
        LineKind::ResourceTax,
        LineKind::LateFee,
        LineKind::Adjustment,
    ] {
        assert_eq!(LineKind::parse(kind.as_str()).unwrap(), kind);
    }
    for bad in [
        "WATER_TIER_0",
        "WATER_TIER_01",
        "WATER_TIER_",
        "WATER_TIER_13",
        "sewage",
        "WATER_TIER_+1",
    ] {
        assert!(LineKind::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn volume_is_shared_by_days_with_the_rounded_part_to_the_earlier_piece() {
    assert_eq!(share_by_days(40, &[31, 31]), vec![20, 20]);
    assert_eq!(share_by_days(31, &[22, 38]), vec![11, 20]);
    assert_eq!(share_by_days(1, &[1, 1]), vec![1, 0]);
    assert_eq!(share_by_days(10, &[1, 1, 1]), vec![3, 4, 3]);
    assert_eq!(share_by_days(7, &[0]), vec![7]);
}

fn arbitrary_input() -> impl Strategy<Value = (u32, NaiveDate, u32, u64, u64, u64, bool)> {
    (
        1_u32..10,
        (0_i64..3650).prop_map(|d| date("2020-01-01") + chrono::TimeDelta::days(d)),
        0_u32..800,
        0_u64..5_000,
        0_u64..500,
        0_u64..500,
        any::<bool>(),
    )
}

proptest! {
    #[test]
    fn rated_volumes_account_for_every_cubic_metre_and_every_fen(
        (household, from, days, volume, billed_from_year, billed_to_year, split) in arbitrary_input()
    ) {
        let change = if split { PriceChange::SplitByDays } else { PriceChange::ReadingDate };
        let mut later = residential_tariff();
        later.effective_from = date("2024-07-01");
        later.tiers = decode_tiers("180:2.8000;260:4.15;:8.40").unwrap();
        later.sewage_price = price("1.05");
        later.price_change = change;
        let versions = [residential_tariff(), later];
        let to = from + chrono::TimeDelta::days(i64::from(days));
        let billed: BTreeMap<i32, u64> = [(from.year(), billed_from_year), (to.year(), billed_to_year)].into_iter().collect();
        let rated = rate(&RatingInput { versions: &versions, household_size: household, from, to, volume_m3: volume, billed_by_year: &billed }).unwrap();

        let sum_lines: Money = rated.lines.iter().map(|l| l.amount).sum();
        prop_assert_eq!(rated.total, sum_lines);
        let volume_of = |f: fn(&LineKind) -> bool| rated.lines.iter().filter(|l| f(&l.kind)).map(|l| l.volume_m3).sum::<u64>();
        prop_assert_eq!(volume_of(|k| matches!(k, LineKind::WaterTier(_))), volume);
        prop_assert_eq!(volume_of(|k| *k == LineKind::Sewage), volume);
        prop_assert_eq!(volume_of(|k| *k == LineKind::ResourceTax), volume);
        prop_assert_eq!(rated.usage_by_year.iter().map(|(_, v)| v).sum::<u64>(), volume);
        prop_assert!(rated.lines.iter().all(|l| l.volume_m3 > 0));
        prop_assert!(rated.lines.windows(2).all(|w| w[0].kind <= w[1].kind));
    }
}
