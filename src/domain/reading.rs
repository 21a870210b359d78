//! Meter readings: register arithmetic, rollover, estimates (估抄) and catch-up (等针).
//!
//! A register with d digits counts modulo 10^d, so a lower index can mean the register wrapped;
//! that is only believed when the implied volume is plausible. After an estimate, the meter's
//! *system index* (where billing has got to) runs ahead of its last actual index; the next
//! actual reading bills only what exceeds the system index, and nothing is ever refunded. This
//! module owns that arithmetic and the closed sets a stored reading carries (its
//! [`ReadingSource`] and [`ReadingStatus`]); storing readings and choosing which one bills is
//! the caller's.

use thiserror::Error;

/// Default largest volume a register wrap may imply before the reading is held for review.
pub const DEFAULT_ROLLOVER_MAX_M3: u64 = 1000;
/// Register sizes supported (10^9 still fits comfortably in `u64` arithmetic).
pub const REGISTER_DIGITS_MIN: u8 = 1;
pub const REGISTER_DIGITS_MAX: u8 = 9;
/// How many recent actual volumes an estimate averages.
pub const ESTIMATE_HISTORY_LEN: usize = 3;

/// Who read the meter. Stored as the text of [`ReadingSource::as_str`]; an unknown stored
/// text is a corrupt row, never a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadingSource {
    /// A meter reader (or the customer) read the register.
    Actual,
    /// The meter reported its register itself.
    SmartMeter,
    /// Recorded as an estimate by the caller.
    Estimated,
}

impl ReadingSource {
    pub const ALL: [Self; 3] = [Self::Actual, Self::SmartMeter, Self::Estimated];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Actual => "ACTUAL",
            Self::SmartMeter => "SMART_METER",
            Self::Estimated => "ESTIMATED",
        }
    }

    pub fn parse(text: &str) -> Result<Self, UnknownReadingValue> {
        Self::ALL
            .into_iter()
            .find(|source| source.as_str() == text)
            .ok_or_else(|| UnknownReadingValue {
                what: "reading source",
                input: text.to_owned(),
            })
    }
}

/// Whether a stored reading counts: ACCEPTED readings bill; a REJECTED one (an implausible
/// rollover, say) is kept for review and never billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadingStatus {
    Accepted,
    Rejected,
}

impl ReadingStatus {
    pub const ALL: [Self; 2] = [Self::Accepted, Self::Rejected];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "ACCEPTED",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(text: &str) -> Result<Self, UnknownReadingValue> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownReadingValue {
                what: "reading status",
                input: text.to_owned(),
            })
    }
}

/// A stored reading source or status that is none of the enum's values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{input:?} is not a known {what}")]
pub struct UnknownReadingValue {
    pub what: &'static str,
    pub input: String,
}

/// Why a reading or register setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadingError {
    #[error("a register must have 1 to 9 digits, not {digits}")]
    InvalidRegisterDigits { digits: u8 },
    #[error("index {index} does not fit a {digits}-digit register (must be below {modulus})")]
    IndexOutOfRange {
        index: u64,
        digits: u8,
        modulus: u64,
    },
    #[error(
        "index {current} is below the previous index {previous} on a {digits}-digit register; \
         a rollover would mean {implied_m3} m³, more than the plausible {rollover_max_m3} m³ \
         (check the index or the meter)"
    )]
    ImplausibleRollover {
        previous: u64,
        current: u64,
        digits: u8,
        implied_m3: u64,
        rollover_max_m3: u64,
    },
}

/// 10^digits: the count at which a register of `digits` digits wraps to zero.
pub fn register_modulus(digits: u8) -> Result<u64, ReadingError> {
    if !(REGISTER_DIGITS_MIN..=REGISTER_DIGITS_MAX).contains(&digits) {
        return Err(ReadingError::InvalidRegisterDigits { digits });
    }
    Ok(10_u64.pow(u32::from(digits)))
}

/// Refuses an index the register cannot show.
pub fn check_index(index: u64, digits: u8) -> Result<(), ReadingError> {
    let modulus = register_modulus(digits)?;
    if index >= modulus {
        return Err(ReadingError::IndexOutOfRange {
            index,
            digits,
            modulus,
        });
    }
    Ok(())
}

/// Volume from `previous` to `current`, allowing one plausible register wrap.
pub fn forward_volume(
    previous: u64,
    current: u64,
    digits: u8,
    rollover_max_m3: u64,
) -> Result<u64, ReadingError> {
    check_index(previous, digits)?;
    check_index(current, digits)?;
    if current >= previous {
        return Ok(current - previous);
    }
    let implied_m3 = current + register_modulus(digits)? - previous;
    if implied_m3 > rollover_max_m3 {
        return Err(ReadingError::ImplausibleRollover {
            previous,
            current,
            digits,
            implied_m3,
            rollover_max_m3,
        });
    }
    Ok(implied_m3)
}

/// Where a meter stands: its last actual index and where billing has got to (ahead of the
/// actual index by the estimates billed since).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MeterState {
    pub last_actual_index: u64,
    pub system_index: u64,
}

impl MeterState {
    /// A meter whose billing stands at its actual index (a new meter at its install index).
    pub fn at(index: u64) -> MeterState {
        MeterState {
            last_actual_index: index,
            system_index: index,
        }
    }
}

/// Bills an actual reading against the system index: returns the billed m³ and the new state.
/// If the reading has not yet caught up with the estimates, it bills 0 and the system index
/// stays where it is (the meter waits for the needle).
pub fn bill_actual_reading(
    state: MeterState,
    new_index: u64,
    digits: u8,
    rollover_max_m3: u64,
) -> Result<(u64, MeterState), ReadingError> {
    let modulus = register_modulus(digits)?;
    check_index(state.system_index, digits)?;
    let actual_m3 = forward_volume(state.last_actual_index, new_index, digits, rollover_max_m3)?;
    let estimated_ahead_m3 = (state.system_index + modulus - state.last_actual_index) % modulus;
    let billed_m3 = actual_m3.saturating_sub(estimated_ahead_m3);
    let system_index = if actual_m3 >= estimated_ahead_m3 {
        new_index
    } else {
        state.system_index
    };
    let new_state = MeterState {
        last_actual_index: new_index,
        system_index,
    };
    Ok((billed_m3, new_state))
}

/// The estimate for a period without a reading: the half-up rounded mean of the last (up to)
/// three billed actual volumes, given oldest first. `None` without history.
pub fn estimate_volume(recent_actual_volumes: &[u64]) -> Option<u64> {
    let recent = &recent_actual_volumes[recent_actual_volumes
        .len()
        .saturating_sub(ESTIMATE_HISTORY_LEN)..];
    if recent.is_empty() {
        return None;
    }
    let count = recent.len() as u128;
    let sum: u128 = recent.iter().map(|v| u128::from(*v)).sum();
    let mean = (2 * sum + count) / (2 * count);
    Some(u64::try_from(mean).unwrap_or(u64::MAX))
}

/// Moves the system index forward by a billed estimate, wrapping like the register.
/// `digits` must be a valid register size (as checked by [`register_modulus`]); with an invalid
/// one the index simply moves forward without wrapping.
pub fn apply_estimate(state: MeterState, estimate_m3: u64, digits: u8) -> MeterState {
    let advanced = state.system_index.saturating_add(estimate_m3);
    let system_index = match register_modulus(digits) {
        Ok(modulus) => advanced % modulus,
        Err(_) => advanced,
    };
    MeterState {
        last_actual_index: state.last_actual_index,
        system_index,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stored_sources_and_statuses_read_back_and_nothing_else_does() {
        for source in ReadingSource::ALL {
            assert_eq!(ReadingSource::parse(source.as_str()), Ok(source));
        }
        for status in ReadingStatus::ALL {
            assert_eq!(ReadingStatus::parse(status.as_str()), Ok(status));
        }
        for bad in ["", "actual", "SMART", "PENDING"] {
            assert!(ReadingSource::parse(bad).is_err(), "{bad:?}");
            assert!(ReadingStatus::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            ReadingStatus::parse("OK").unwrap_err().to_string(),
            "\"OK\" is not a known reading status"
        );
    }
    use proptest::prelude::*;

    #[test]
    fn register_moduli_are_powers_of_ten_never_the_largest_index() {
        assert_eq!(register_modulus(5).unwrap(), 100_000);
        assert_eq!(register_modulus(1).unwrap(), 10);
        assert_eq!(register_modulus(9).unwrap(), 1_000_000_000);
        assert!(register_modulus(0).is_err());
        assert!(register_modulus(10).is_err());
    }

    #[test]
    fn an_index_the_register_cannot_show_is_rejected_with_both_numbers() {
        assert!(check_index(99_999, 5).is_ok());
        assert_eq!(
            check_index(100_000, 5).unwrap_err().to_string(),
            "index 100000 does not fit a 5-digit register (must be below 100000)"
        );
    }

    #[test]
    fn example_7_9_rollovers_are_believed_only_when_plausible() {
        let cases = [
            (99_962, 17, 5, Some(55)),
            (9_987, 12, 4, Some(25)),
            (1_234, 1_279, 5, Some(45)),
            (500, 500, 5, Some(0)),
            (500, 400, 5, None),
        ];
        for (previous, current, digits, expected) in cases {
            let result = forward_volume(previous, current, digits, DEFAULT_ROLLOVER_MAX_M3);
            assert_eq!(result.clone().ok(), expected, "{previous} -> {current}");
        }
        let err = forward_volume(500, 400, 5, DEFAULT_ROLLOVER_MAX_M3).unwrap_err();
        assert!(matches!(
            err,
            ReadingError::ImplausibleRollover {
                implied_m3: 99_900,
                ..
            }
        ));
        assert!(
            err.to_string()
                .contains("99900 m³, more than the plausible 1000 m³")
        );
    }

    #[test]
    fn example_7_8_an_estimate_is_the_rounded_mean_of_the_last_three_actuals() {
        let cases: [(&[u64], Option<u64>); 5] = [
            (&[38, 41, 36], Some(38)),
            (&[100, 38, 41, 36], Some(38)),
            (&[10, 11], Some(11)),
            (&[7], Some(7)),
            (&[], None),
        ];
        for (history, expected) in cases {
            assert_eq!(estimate_volume(history), expected, "{history:?}");
        }
    }

    #[test]
    fn example_7_8_an_actual_reading_after_an_estimate_bills_only_the_excess() {
        let estimated = apply_estimate(MeterState::at(2046), 38, 5);
        assert_eq!(
            estimated,
            MeterState {
                last_actual_index: 2046,
                system_index: 2084
            }
        );

        let (billed, state) =
            bill_actual_reading(estimated, 2131, 5, DEFAULT_ROLLOVER_MAX_M3).unwrap();
        assert_eq!((billed, state), (47, MeterState::at(2131)));

        let (billed, waiting) =
            bill_actual_reading(estimated, 2071, 5, DEFAULT_ROLLOVER_MAX_M3).unwrap();
        assert_eq!(
            (billed, waiting),
            (
                0,
                MeterState {
                    last_actual_index: 2071,
                    system_index: 2084
                }
            )
        );
        let (billed, state) =
            bill_actual_reading(waiting, 2110, 5, DEFAULT_ROLLOVER_MAX_M3).unwrap();
        assert_eq!((billed, state), (26, MeterState::at(2110)));
    }

    #[test]
    fn estimates_and_catch_up_work_across_a_register_wrap() {
        let estimated = apply_estimate(MeterState::at(99_990), 30, 5);
        assert_eq!(estimated.system_index, 20);
        let (billed, state) =
            bill_actual_reading(estimated, 35, 5, DEFAULT_ROLLOVER_MAX_M3).unwrap();
        assert_eq!((billed, state), (15, MeterState::at(35)));
    }

    proptest! {
        #[test]
        fn billing_never_loses_or_invents_water_across_estimates(
            start in 0_u64..100_000, estimate in 0_u64..200, actual in 0_u64..900
        ) {
            let estimated = apply_estimate(MeterState::at(start), estimate, 5);
            let reading = (start + actual) % 100_000;
            let (billed, state) = bill_actual_reading(estimated, reading, 5, DEFAULT_ROLLOVER_MAX_M3).unwrap();
            // Estimate plus what this reading bills covers the actual use, unless the meter is
            // still behind the estimate, in which case nothing more is billed yet.
            prop_assert_eq!(estimate + billed, actual.max(estimate));
            prop_assert_eq!(state.last_actual_index, reading);
        }
    }

    #[test]
    fn reading_statuses_round_trip_and_an_unknown_one_is_refused() {
        for status in ReadingStatus::ALL {
            assert_eq!(ReadingStatus::parse(status.as_str()), Ok(status));
        }
        assert!(ReadingStatus::parse("accepted").is_err());
        assert!(ReadingStatus::parse("").is_err());
    }
}
