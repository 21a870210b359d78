//! Tariffs: customer classes, versioned price lists and the annual tier ladder (阶梯水价).
//!
//! A tariff version is plain data loaded from the utility's price notice; this module owns its
//! validity rules (increasing thresholds, one unbounded last tier), the compact text form the
//! database stores the tiers in, the household-size adjustment of thresholds, and which version
//! is in force on a date. Pricing a volume with these versions is `rating`'s job.

use chrono::NaiveDate;
use thiserror::Error;

use super::money::{MoneyError, UnitPrice};

/// Longest tariff code accepted.
pub const TARIFF_CODE_LEN_MAX: usize = 32;
/// Most tiers a version may have (the national guideline asks for at least three; real notices
/// have three to five). Bounding it gives every tier a fixed line-kind name.
pub const TIER_COUNT_MAX: usize = 12;

/// Why a tariff, its tiers or one of its enumerations was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TariffError {
    #[error(
        "customer class {input:?} is unknown; expected RESIDENTIAL, NON_RESIDENTIAL or SPECIAL"
    )]
    UnknownCustomerClass { input: String },
    #[error("price change method {input:?} is unknown; expected READING_DATE or SPLIT_BY_DAYS")]
    UnknownPriceChange { input: String },
    #[error("tariff code {code:?} must be 1 to 32 characters of A-Z, a-z, 0-9, '_' or '-'")]
    InvalidCode { code: String },
    #[error("tariff {code} has no tiers; a non-tiered tariff has one unbounded tier")]
    NoTiers { code: String },
    #[error("tariff {code} has {count} tiers; at most 12 are allowed")]
    TooManyTiers { code: String, count: usize },
    #[error("tariff {code}: tier {tier} has threshold 0 m³; thresholds must be above 0")]
    ZeroThreshold { code: String, tier: usize },
    #[error(
        "tariff {code}: tier {tier} ends at {threshold} m³, not above the previous tier's \
         {previous} m³; thresholds must strictly increase"
    )]
    ThresholdsNotIncreasing {
        code: String,
        tier: usize,
        threshold: u64,
        previous: u64,
    },
    #[error(
        "tariff {code}: tier {tier} is unbounded but is not the last tier; only the last tier may be unbounded"
    )]
    UnboundedTierNotLast { code: String, tier: usize },
    #[error(
        "tariff {code}: the last tier ends at {threshold} m³; it must be unbounded (empty threshold)"
    )]
    LastTierBounded { code: String, threshold: u64 },
    #[error("tariff {code}: base household size must be at least 1")]
    ZeroBaseHouseholdSize { code: String },
    #[error(
        "tier list {input:?} is malformed ({reason}); expected e.g. \"216:2.40;300:3.60;:7.20\""
    )]
    MalformedTiers { input: String, reason: String },
    #[error("tier list {input:?}: {source}")]
    TierPrice {
        input: String,
        #[source]
        source: MoneyError,
    },
}

/// Which price list an account is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CustomerClass {
    Residential,
    NonResidential,
    Special,
}

impl CustomerClass {
    pub fn parse(input: &str) -> Result<CustomerClass, TariffError> {
        match input {
            "RESIDENTIAL" => Ok(CustomerClass::Residential),
            "NON_RESIDENTIAL" => Ok(CustomerClass::NonResidential),
            "SPECIAL" => Ok(CustomerClass::Special),
            _ => Err(TariffError::UnknownCustomerClass {
                input: input.to_string(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CustomerClass::Residential => "RESIDENTIAL",
            CustomerClass::NonResidential => "NON_RESIDENTIAL",
            CustomerClass::Special => "SPECIAL",
        }
    }
}

/// How a bill whose reading period spans a version's `effective_from` is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum PriceChange {
    /// The whole period at the version in force on the reading date (the default).
    #[default]
    ReadingDate,
    /// The volume is split by days before and after the change.
    SplitByDays,
}

impl PriceChange {
    pub fn parse(input: &str) -> Result<PriceChange, TariffError> {
        match input {
            "READING_DATE" => Ok(PriceChange::ReadingDate),
            "SPLIT_BY_DAYS" => Ok(PriceChange::SplitByDays),
            _ => Err(TariffError::UnknownPriceChange {
                input: input.to_string(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PriceChange::ReadingDate => "READING_DATE",
            PriceChange::SplitByDays => "SPLIT_BY_DAYS",
        }
    }
}

/// One step of the annual ladder: volume up to `up_to_m3` (cumulative for the year; `None` =
/// unbounded) is priced at `water_price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tier {
    pub up_to_m3: Option<u64>,
    pub water_price: UnitPrice,
}

/// One dated version of a tariff's prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffVersion {
    pub code: String,
    pub customer_class: CustomerClass,
    pub effective_from: NaiveDate,
    pub tiers: Vec<Tier>,
    pub sewage_price: UnitPrice,
    pub resource_price: UnitPrice,
    pub base_household_size: u32,
    pub extra_m3_per_person: u64,
    pub price_change: PriceChange,
}

impl TariffVersion {
    /// Checks the rules a version must meet before it can price anything.
    pub fn validate(&self) -> Result<(), TariffError> {
        let code = &self.code;
        let code_ok = (1..=TARIFF_CODE_LEN_MAX).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !code_ok {
            return Err(TariffError::InvalidCode { code: code.clone() });
        }
        if self.base_household_size == 0 {
            return Err(TariffError::ZeroBaseHouseholdSize { code: code.clone() });
        }
        validate_tiers(code, &self.tiers)
    }

    /// The tier thresholds for a household: each bounded threshold rises by
    /// `extra_m3_per_person` for every person above `base_household_size`.
    pub fn thresholds_for(&self, household_size: u32) -> Vec<Option<u64>> {
        let extra_persons = u64::from(household_size.saturating_sub(self.base_household_size));
        let extra_m3 = self.extra_m3_per_person.saturating_mul(extra_persons);
        self.tiers
            .iter()
            .map(|tier| tier.up_to_m3.map(|up_to| up_to.saturating_add(extra_m3)))
            .collect()
    }
}

fn validate_tiers(code: &str, tiers: &[Tier]) -> Result<(), TariffError> {
    let code = code.to_string();
    let Some(last) = tiers.last() else {
        return Err(TariffError::NoTiers { code });
    };
    if tiers.len() > TIER_COUNT_MAX {
        return Err(TariffError::TooManyTiers {
            code,
            count: tiers.len(),
        });
    }
    if let Some(threshold) = last.up_to_m3 {
        return Err(TariffError::LastTierBounded { code, threshold });
    }
    let mut previous = 0;
    for (index, tier) in tiers[..tiers.len() - 1].iter().enumerate() {
        let tier_no = index + 1;
        match tier.up_to_m3 {
            None => {
                return Err(TariffError::UnboundedTierNotLast {
                    code,
                    tier: tier_no,
                });
            }
            Some(0) => {
                return Err(TariffError::ZeroThreshold {
                    code,
                    tier: tier_no,
                });
            }
            Some(threshold) if threshold <= previous => {
                return Err(TariffError::ThresholdsNotIncreasing {
                    code,
                    tier: tier_no,
                    threshold,
                    previous,
                });
            }
            Some(threshold) => previous = threshold,
        }
    }
    Ok(())
}

/// The compact text form stored in the database: `up_to:price` per tier, `;`-separated, with an
/// empty `up_to` for the unbounded tier, e.g. "216:2.40;300:3.60;:7.20".
pub fn encode_tiers(tiers: &[Tier]) -> String {
    tiers
        .iter()
        .map(|tier| match tier.up_to_m3 {
            Some(up_to) => format!("{up_to}:{}", tier.water_price),
            None => format!(":{}", tier.water_price),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Reads the form written by [`encode_tiers`]. Only the text form is checked here; the ladder
/// rules are [`TariffVersion::validate`]'s.
pub fn decode_tiers(input: &str) -> Result<Vec<Tier>, TariffError> {
    let malformed = |reason: &str| TariffError::MalformedTiers {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    if input.is_empty() {
        return Err(malformed("it is empty"));
    }
    input
        .split(';')
        .map(|part| {
            let (up_to, price) = part
                .split_once(':')
                .ok_or_else(|| malformed("a tier has no ':' between threshold and price"))?;
            let up_to_m3 = match up_to {
                "" => None,
                digits if digits.bytes().all(|b| b.is_ascii_digit()) => Some(
                    digits
                        .parse::<u64>()
                        .map_err(|_| malformed("a threshold is too large"))?,
                ),
                _ => return Err(malformed("a threshold is not a whole number of m³")),
            };
            let water_price = UnitPrice::parse(price).map_err(|source| TariffError::TierPrice {
                input: input.to_string(),
                source,
            })?;
            Ok(Tier {
                up_to_m3,
                water_price,
            })
        })
        .collect()
}

/// The version in force on `on`: the latest `effective_from` not after `on`. Versions may come
/// in any order; of two with the same date, the later in the slice wins.
pub fn version_in_force(versions: &[TariffVersion], on: NaiveDate) -> Option<&TariffVersion> {
    versions
        .iter()
        .filter(|version| version.effective_from <= on)
        .max_by_key(|version| version.effective_from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::calendar::parse_date;
    use proptest::prelude::*;

    fn tier(up_to: Option<u64>, price: &str) -> Tier {
        Tier {
            up_to_m3: up_to,
            water_price: UnitPrice::parse(price).unwrap(),
        }
    }

    fn residential(effective_from: &str) -> TariffVersion {
        TariffVersion {
            code: "RES-2024".to_string(),
            customer_class: CustomerClass::Residential,
            effective_from: parse_date(effective_from).unwrap(),
            tiers: decode_tiers("216:2.40;300:3.60;:7.20").unwrap(),
            sewage_price: UnitPrice::parse("0.95").unwrap(),
            resource_price: UnitPrice::parse("0.20").unwrap(),
            base_household_size: 4,
            extra_m3_per_person: 54,
            price_change: PriceChange::ReadingDate,
        }
    }

    #[test]
    fn enumerations_round_trip_through_their_names() {
        for class in [
            CustomerClass::Residential,
            CustomerClass::NonResidential,
            CustomerClass::Special,
        ] {
            assert_eq!(CustomerClass::parse(class.as_str()).unwrap(), class);
        }
        for change in [PriceChange::ReadingDate, PriceChange::SplitByDays] {
            assert_eq!(PriceChange::parse(change.as_str()).unwrap(), change);
        }
        assert!(CustomerClass::parse("residential").is_err());
        assert!(PriceChange::parse("").is_err());
    }

    #[test]
    fn the_section_seven_residential_tariff_is_valid() {
        residential("2024-01-01").validate().unwrap();
    }

    type Breakage = fn(&mut TariffVersion);

    #[test]
    fn invalid_versions_are_refused_with_the_broken_rule() {
        let cases: [(&str, Breakage); 9] = [
            ("thirteen tiers", |v| {
                v.tiers = (1..=13)
                    .map(|n| tier(if n < 13 { Some(n * 10) } else { None }, "1"))
                    .collect()
            }),
            ("empty code", |v| v.code.clear()),
            ("code with a space", |v| v.code = "RES 2024".to_string()),
            ("code too long", |v| v.code = "X".repeat(33)),
            ("no tiers", |v| v.tiers.clear()),
            ("bounded last tier", |v| v.tiers[2].up_to_m3 = Some(400)),
            ("unbounded middle tier", |v| v.tiers[1].up_to_m3 = None),
            ("decreasing thresholds", |v| v.tiers[1].up_to_m3 = Some(216)),
            ("zero base household", |v| v.base_household_size = 0),
        ];
        for (name, break_it) in cases {
            let mut version = residential("2024-01-01");
            break_it(&mut version);
            assert!(version.validate().is_err(), "{name} should be refused");
        }
        let mut zero = residential("2024-01-01");
        zero.tiers[0].up_to_m3 = Some(0);
        assert_eq!(
            zero.validate().unwrap_err().to_string(),
            "tariff RES-2024: tier 1 has threshold 0 m³; thresholds must be above 0"
        );
    }

    #[test]
    fn larger_households_get_higher_thresholds() {
        let version = residential("2024-01-01");
        let cases = [
            (1, vec![Some(216), Some(300), None]),
            (4, vec![Some(216), Some(300), None]),
            (6, vec![Some(324), Some(408), None]),
        ];
        for (household, thresholds) in cases {
            assert_eq!(
                version.thresholds_for(household),
                thresholds,
                "{household} persons"
            );
        }
    }

    #[test]
    fn tiers_encode_to_the_compact_column_form() {
        let tiers = vec![
            tier(Some(216), "2.4"),
            tier(Some(300), "3.60"),
            tier(None, "7.2000"),
        ];
        assert_eq!(encode_tiers(&tiers), "216:2.40;300:3.60;:7.2000");
    }

    #[test]
    fn malformed_tier_text_is_refused() {
        for bad in [
            "",
            "216-2.40",
            "216:2.40;",
            "x:2.40",
            "+5:2.40",
            "216:abc",
            "216:2.40;;:7.20",
            "216:-1",
        ] {
            assert!(decode_tiers(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn the_version_in_force_is_the_latest_that_has_started() {
        let versions = [
            residential("2024-04-01"),
            residential("2023-01-01"),
            residential("2025-01-01"),
        ];
        let on = |d: &str| {
            version_in_force(&versions, parse_date(d).unwrap())
                .map(|v| v.effective_from.to_string())
        };
        assert_eq!(on("2022-12-31"), None);
        assert_eq!(on("2024-03-31").as_deref(), Some("2023-01-01"));
        assert_eq!(on("2024-04-01").as_deref(), Some("2024-04-01"));
        assert_eq!(on("2030-01-01").as_deref(), Some("2025-01-01"));
    }

    fn arbitrary_tier() -> impl Strategy<Value = Tier> {
        (
            proptest::option::of(0_u64..u64::MAX),
            0_i64..100_000_000,
            0_u32..=4,
        )
            .prop_map(|(up_to_m3, mantissa, scale)| {
                let price = rust_decimal::Decimal::new(mantissa % 10_i64.pow(6 + scale), scale);
                Tier {
                    up_to_m3,
                    water_price: UnitPrice::from_decimal(price).unwrap(),
                }
            })
    }

    proptest! {
        #[test]
        fn tiers_round_trip_through_their_text_form(tiers in proptest::collection::vec(arbitrary_tier(), 1..6)) {
            let text = encode_tiers(&tiers);
            let decoded = decode_tiers(&text).unwrap();
            prop_assert_eq!(&decoded, &tiers);
            prop_assert_eq!(encode_tiers(&decoded), text);
        }
    }
}
