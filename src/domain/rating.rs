//! Rating: turning one bill's volume into priced lines (domain.md section 2).
//!
//! The reading period is cut at every 1 January (the tier year is the calendar year) and at
//! every `effective_from` of a SPLIT_BY_DAYS version; the volume is shared between the pieces by
//! days, rounded half-up to whole m³. Each piece's water volume takes the next slice of its
//! year's annual ladder, continuing from what the account was already billed that year. Sewage
//! and resource tax are flat per m³. Lines with the same kind and price are merged before
//! rounding, so one bill never shows two rounded halves of the same line.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use thiserror::Error;

use super::calendar::days_between;
use super::money::{Money, UnitPrice, line_amount};
use super::tariff::{PriceChange, TIER_COUNT_MAX, TariffError, TariffVersion, version_in_force};

/// What a bill line charges for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LineKind {
    /// Water supply on tier N (1-based) of the annual ladder.
    WaterTier(u8),
    Sewage,
    ResourceTax,
    LateFee,
    Adjustment,
}

/// Why a line kind name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "line kind {input:?} is unknown; expected WATER_TIER_1 to WATER_TIER_12, SEWAGE, \
     RESOURCE_TAX, LATE_FEE or ADJUSTMENT"
)]
pub struct UnknownLineKind {
    pub input: String,
}

/// Stored names of the water tiers a tariff may have (see [`TIER_COUNT_MAX`]).
const WATER_TIER_NAMES: [&str; TIER_COUNT_MAX] = [
    "WATER_TIER_1",
    "WATER_TIER_2",
    "WATER_TIER_3",
    "WATER_TIER_4",
    "WATER_TIER_5",
    "WATER_TIER_6",
    "WATER_TIER_7",
    "WATER_TIER_8",
    "WATER_TIER_9",
    "WATER_TIER_10",
    "WATER_TIER_11",
    "WATER_TIER_12",
];

impl LineKind {
    /// The stored name, e.g. "WATER_TIER_1" or "SEWAGE". Validated tariffs have at most
    /// [`TIER_COUNT_MAX`] tiers; a tier number outside 1..=12 (never produced by rating) reads
    /// "WATER_TIER_OUT_OF_RANGE" and does not parse back.
    pub fn as_str(&self) -> &'static str {
        match self {
            LineKind::WaterTier(tier) => usize::from(*tier)
                .checked_sub(1)
                .and_then(|index| WATER_TIER_NAMES.get(index))
                .copied()
                .unwrap_or("WATER_TIER_OUT_OF_RANGE"),
            LineKind::Sewage => "SEWAGE",
            LineKind::ResourceTax => "RESOURCE_TAX",
            LineKind::LateFee => "LATE_FEE",
            LineKind::Adjustment => "ADJUSTMENT",
        }
    }

    pub fn parse(input: &str) -> Result<LineKind, UnknownLineKind> {
        let fixed = [
            LineKind::Sewage,
            LineKind::ResourceTax,
            LineKind::LateFee,
            LineKind::Adjustment,
        ];
        let tiers =
            (1..=TIER_COUNT_MAX).filter_map(|n| u8::try_from(n).ok().map(LineKind::WaterTier));
        fixed
            .into_iter()
            .chain(tiers)
            .find(|kind| kind.as_str() == input)
            .ok_or_else(|| UnknownLineKind {
                input: input.to_string(),
            })
    }
}

impl std::fmt::Display for LineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One priced line of a bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillLine {
    pub kind: LineKind,
    pub volume_m3: u64,
    pub unit_price: UnitPrice,
    pub amount: Money,
}

/// Everything needed to price one bill's volume.
#[derive(Debug, Clone, Copy)]
pub struct RatingInput<'a> {
    pub versions: &'a [TariffVersion],
    pub household_size: u32,
    /// Date of the previous billed reading.
    pub from: NaiveDate,
    /// Date of this reading (or of the estimate).
    pub to: NaiveDate,
    pub volume_m3: u64,
    /// Volume already billed to the account per calendar year, before this bill.
    pub billed_by_year: &'a BTreeMap<i32, u64>,
}

/// The priced volume: lines in display order, their total, and the volume per tier year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatedVolume {
    pub lines: Vec<BillLine>,
    pub total: Money,
    /// How much of this bill's volume lands in each year, ascending (for the caller to persist).
    pub usage_by_year: Vec<(i32, u64)>,
}

/// Why a volume could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RatingError {
    #[error("reading date {to} is before the previous billed reading on {from}")]
    ToBeforeFrom { from: NaiveDate, to: NaiveDate },
    #[error(
        "no tariff version is in force on {on}; load a version effective on or before that date"
    )]
    NoVersionInForce { on: NaiveDate },
    #[error("tariff version effective {effective_from} cannot price a bill: {source}")]
    InvalidTariff {
        effective_from: NaiveDate,
        #[source]
        source: TariffError,
    },
}

/// A stretch of the reading period priced with one version in one tier year.
#[derive(Debug, Clone, Copy)]
struct Piece<'a> {
    year: i32,
    volume_m3: u64,
    version: &'a TariffVersion,
}

/// Prices one bill's volume. See the module docs for the rules.
pub fn rate(input: &RatingInput) -> Result<RatedVolume, RatingError> {
    if input.to < input.from {
        return Err(RatingError::ToBeforeFrom {
            from: input.from,
            to: input.to,
        });
    }
    if input.volume_m3 == 0 {
        return Ok(RatedVolume {
            lines: Vec::new(),
            total: Money::ZERO,
            usage_by_year: Vec::new(),
        });
    }
    let pieces = split_into_pieces(input)?;
    let mut volumes = LineVolumes::default();
    let mut running_by_year = input.billed_by_year.clone();
    let mut usage_by_year: BTreeMap<i32, u64> = BTreeMap::new();
    for piece in &pieces {
        let already = running_by_year.entry(piece.year).or_insert(0);
        add_piece_lines(&mut volumes, piece, *already, input.household_size);
        *already = already.saturating_add(piece.volume_m3);
        *usage_by_year.entry(piece.year).or_insert(0) += piece.volume_m3;
    }
    let lines = volumes.into_lines();
    let total = lines.iter().map(|line| line.amount).sum();
    Ok(RatedVolume {
        lines,
        total,
        usage_by_year: usage_by_year.into_iter().collect(),
    })
}

/// Cuts (from, to] at year starts and SPLIT_BY_DAYS changes, shares the volume by days, and
/// picks each non-empty piece's version.
fn split_into_pieces<'a>(input: &RatingInput<'a>) -> Result<Vec<Piece<'a>>, RatingError> {
    let split_cuts = split_by_days_cuts(input.versions, input.from, input.to);
    let mut boundaries = vec![input.from];
    boundaries.extend(year_starts(input.from, input.to).filter(|cut| *cut < input.to));
    boundaries.extend(split_cuts.iter().copied().filter(|cut| *cut < input.to));
    boundaries.sort_unstable();
    boundaries.dedup();
    boundaries.push(input.to);

    let spans: Vec<(NaiveDate, u64)> = boundaries
        .windows(2)
        .map(|pair| (pair[0], day_span(pair[0], pair[1])))
        .collect();
    let days: Vec<u64> = spans.iter().map(|(_, days)| *days).collect();
    let volumes = share_by_days(input.volume_m3, &days);

    let mut pieces = Vec::new();
    for ((start, _), volume_m3) in spans.into_iter().zip(volumes) {
        if volume_m3 == 0 {
            continue;
        }
        let priced_on = split_cuts
            .iter()
            .find(|cut| **cut > start)
            .map_or(input.to, |cut| cut.pred_opt().unwrap_or(*cut));
        let version = version_in_force(input.versions, priced_on)
            .ok_or(RatingError::NoVersionInForce { on: priced_on })?;
        version
            .validate()
            .map_err(|source| RatingError::InvalidTariff {
                effective_from: version.effective_from,
                source,
            })?;
        pieces.push(Piece {
            year: start.year(),
            volume_m3,
            version,
        });
    }
    Ok(pieces)
}

/// The `effective_from` dates of SPLIT_BY_DAYS versions inside (from, to], ascending.
fn split_by_days_cuts(
    versions: &[TariffVersion],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<NaiveDate> {
    let mut cuts: Vec<NaiveDate> = versions
        .iter()
        .filter(|v| v.price_change == PriceChange::SplitByDays)
        .map(|v| v.effective_from)
        .filter(|date| from < *date && *date <= to)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// Every 1 January inside (from, to].
fn year_starts(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    (from.year() + 1..=to.year()).filter_map(|year| NaiveDate::from_ymd_opt(year, 1, 1))
}

fn day_span(start: NaiveDate, end: NaiveDate) -> u64 {
    u64::try_from(days_between(start, end)).unwrap_or(0)
}

/// Shares `volume_m3` between consecutive spans of days: each span in turn takes
/// round_half_up(remaining volume × its days / remaining days), the last takes the rest. With
/// no days at all (a reading on the same day) the single span takes everything.
pub fn share_by_days(volume_m3: u64, days: &[u64]) -> Vec<u64> {
    let mut remaining_volume = u128::from(volume_m3);
    let mut remaining_days: u128 = days.iter().map(|d| u128::from(*d)).sum();
    let mut shares = Vec::with_capacity(days.len());
    for (index, span_days) in days.iter().enumerate() {
        let span_days = u128::from(*span_days);
        let share = if index + 1 == days.len() || remaining_days == 0 {
            remaining_volume
        } else {
            (2 * remaining_volume * span_days + remaining_days) / (2 * remaining_days)
        };
        shares.push(u64::try_from(share).unwrap_or(u64::MAX));
        remaining_volume -= share;
        remaining_days -= span_days;
    }
    shares
}

/// Places a piece's water on its year's ladder and adds its flat sewage and resource lines.
fn add_piece_lines(volumes: &mut LineVolumes, piece: &Piece, already_m3: u64, household: u32) {
    let version = piece.version;
    let thresholds = version.thresholds_for(household);
    let ladder = place_on_ladder(already_m3, piece.volume_m3, &thresholds);
    for (index, tier_volume) in ladder.into_iter().enumerate() {
        let tier_no = u8::try_from(index + 1).unwrap_or(u8::MAX);
        let price = version.tiers[index].water_price;
        volumes.add(LineKind::WaterTier(tier_no), price, tier_volume);
    }
    volumes.add(LineKind::Sewage, version.sewage_price, piece.volume_m3);
    volumes.add(
        LineKind::ResourceTax,
        version.resource_price,
        piece.volume_m3,
    );
}

/// The volume falling on each tier when `volume_m3` is added to a year that already has
/// `already_m3`. With an unbounded last tier the parts sum to `volume_m3`.
fn place_on_ladder(already_m3: u64, volume_m3: u64, thresholds: &[Option<u64>]) -> Vec<u64> {
    let start = already_m3;
    let end = already_m3.saturating_add(volume_m3);
    let mut lower = 0_u64;
    thresholds
        .iter()
        .map(|threshold| {
            let upper = threshold.unwrap_or(u64::MAX);
            let part = end.min(upper).saturating_sub(start.max(lower));
            lower = upper;
            part
        })
        .collect()
}

/// Volumes per (kind, price), in the order first seen, merged before any rounding.
#[derive(Debug, Default)]
struct LineVolumes {
    entries: Vec<(LineKind, UnitPrice, u64)>,
}

impl LineVolumes {
    fn add(&mut self, kind: LineKind, price: UnitPrice, volume_m3: u64) {
        if volume_m3 == 0 {
            return;
        }
        match self
            .entries
            .iter_mut()
            .find(|(k, p, _)| *k == kind && *p == price)
        {
            Some(entry) => entry.2 = entry.2.saturating_add(volume_m3),
            None => self.entries.push((kind, price, volume_m3)),
        }
    }

    /// Rounded lines: water tiers ascending, then sewage, then resource tax (stable within a
    /// kind, so an earlier price comes first).
    fn into_lines(mut self) -> Vec<BillLine> {
        self.entries.sort_by_key(|(kind, _, _)| *kind);
        self.entries
            .into_iter()
            .map(|(kind, unit_price, volume_m3)| BillLine {
                kind,
                volume_m3,
                unit_price,
                amount: line_amount(volume_m3, unit_price),
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "rating_tests.rs"]
mod tests;
