//! Conversion between integer fen (our unit everywhere) and the yuan decimal strings Alipay's
//! API and both gateways' bill files use (`"35.80"`, `"-0.04"`).
//!
//! Pure integer arithmetic: a yuan string is split at the point and each part parsed as an
//! integer, so no amount ever passes through a float and nothing is rounded. More than two
//! decimals is an error rather than a rounding point, because the gateways never send them
//! and a silent rounding would hide a unit mix-up.

/// Fen per yuan.
const FEN_PER_YUAN: i64 = 100;
/// Bound on the text of one amount; `i64` fen fits in 20 characters with sign and point.
const AMOUNT_TEXT_LEN_MAX: usize = 24;

/// Why a yuan string is not an exact amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount `{0}` is not a decimal number like 35.80")]
    NotDecimal(String),
    #[error("amount `{0}` has more than two decimals")]
    TooManyDecimals(String),
    #[error("amount `{0}` is out of range")]
    OutOfRange(String),
}

/// `3580` → `"35.80"`, `-4` → `"-0.04"`.
pub fn fen_to_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let per_yuan = FEN_PER_YUAN.unsigned_abs();
    format!("{sign}{}.{:02}", abs / per_yuan, abs % per_yuan)
}

/// `"35.80"`, `"35.8"`, `"35"` → `3580`; `"-0.04"` → `-4`. Rejects `+`, spaces, exponents,
/// a bare point, and more than two decimals.
pub fn yuan_to_fen(text: &str) -> Result<i64, AmountError> {
    let not_decimal = || AmountError::NotDecimal(text.to_owned());
    if text.len() > AMOUNT_TEXT_LEN_MAX {
        return Err(AmountError::OutOfRange(text.to_owned()));
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
        Some(_) => return Err(not_decimal()),
        None => (unsigned, ""),
    };
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(not_decimal());
    }
    if fraction.len() > 2 {
        return Err(AmountError::TooManyDecimals(text.to_owned()));
    }
    let out_of_range = || AmountError::OutOfRange(text.to_owned());
    let whole: i64 = whole.parse().map_err(|_| out_of_range())?;
    let fraction_fen: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().map_err(|_| not_decimal())? * 10,
        _ => fraction.parse().map_err(|_| not_decimal())?,
    };
    let fen = whole
        .checked_mul(FEN_PER_YUAN)
        .and_then(|fen| fen.checked_add(fraction_fen))
        .ok_or_else(out_of_range)?;
    Ok(if negative { -fen } else { fen })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fen_format_as_yuan_with_two_decimals_including_negatives() {
        let cases = [
            (3580, "35.80"),
            (1, "0.01"),
            (0, "0.00"),
            (-4, "-0.04"),
            (-1234, "-12.34"),
            (i64::MIN, "-92233720368547758.08"),
        ];
        for (fen, yuan) in cases {
            assert_eq!(fen_to_yuan(fen), yuan, "{fen}");
        }
    }

    #[test]
    fn yuan_strings_parse_back_to_exact_fen() {
        let cases = [
            ("35.80", 3580),
            ("35.8", 3580),
            ("35", 3500),
            ("0.01", 1),
            ("-0.04", -4),
            ("100000000.00", 10_000_000_000),
        ];
        for (yuan, fen) in cases {
            assert_eq!(yuan_to_fen(yuan).unwrap(), fen, "{yuan}");
        }
    }

    #[test]
    fn yuan_strings_with_three_decimals_or_junk_are_rejected() {
        assert!(matches!(
            yuan_to_fen("35.801"),
            Err(AmountError::TooManyDecimals(_))
        ));
        for bad in [
            "", ".5", "5.", "+1.00", " 1.00", "1e2", "1,00", "--1", "-", "1.-1",
        ] {
            assert!(
                matches!(yuan_to_fen(bad), Err(AmountError::NotDecimal(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            yuan_to_fen("99999999999999999999"),
            Err(AmountError::OutOfRange(_))
        ));
    }

    #[test]
    fn formatting_then_parsing_round_trips() {
        for fen in [-100_001, -1, 0, 7, 99, 100, 123_456_789] {
            assert_eq!(yuan_to_fen(&fen_to_yuan(fen)).unwrap(), fen);
        }
    }
}
