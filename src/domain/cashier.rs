//! A cashier's day close: what the counted cash says against what the counter payments and
//! counter refunds of that day expect. The outcome is a closed set finance reads (长款 over,
//! 短款 short, 平 balanced), derived from the difference alone so it can never disagree
//! with the amounts beside it. The module is pure: no I/O, no clock.

use std::fmt;

use super::money::Money;

/// How a cashier's counted cash compares with what the day's counter movements expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseOutcome {
    /// 长款: more cash counted than expected.
    Over,
    /// 短款: less cash counted than expected.
    Short,
    /// 平: counted what was expected.
    Balanced,
}

impl CloseOutcome {
    pub const ALL: [Self; 3] = [Self::Over, Self::Short, Self::Balanced];

    /// The outcome of a close whose counted cash minus expected cash is `difference`.
    pub fn of(difference: Money) -> Self {
        if difference.is_positive() {
            Self::Over
        } else if difference.is_negative() {
            Self::Short
        } else {
            Self::Balanced
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Over => "OVER",
            Self::Short => "SHORT",
            Self::Balanced => "BALANCED",
        }
    }
}

impl fmt::Display for CloseOutcome {
    /// Pads like a `str`, so report columns (`{:<8}`) line up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_follows_the_sign_of_the_difference() {
        for (fen, outcome) in [
            (1, CloseOutcome::Over),
            (10_000, CloseOutcome::Over),
            (0, CloseOutcome::Balanced),
            (-1, CloseOutcome::Short),
            (-10_000, CloseOutcome::Short),
        ] {
            assert_eq!(CloseOutcome::of(Money::from_fen(fen)), outcome, "{fen} fen");
        }
    }

    #[test]
    fn an_outcome_pads_in_a_report_column() {
        assert_eq!(format!("[{:<8}]", CloseOutcome::Over), "[OVER    ]");
    }
}
