//! Money (yuan, to the fen) and published unit prices.
//!
//! Every customer amount in the service is a [`Money`]: a `Decimal` always held at scale 2, so
//! that "192.15" in the API, NUMERIC in the database and the value in memory are the same number.
//! Unit prices keep the (up to 4) decimals they were published with. The only place where a
//! price meets a volume is [`line_amount`], which names its rounding rule (half-up, 四舍五入):
//! banker's rounding is never used for customer amounts. Parsing is strict because these strings
//! arrive from API callers and gateways, and a lenient parser would silently accept "1e3" or
//! " 12.3".

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use rust_decimal::{Decimal, RoundingStrategy};
use thiserror::Error;

/// Decimal places of a money amount (fen).
pub const MONEY_SCALE: u32 = 2;
/// Decimal places a published unit price may carry.
pub const UNIT_PRICE_SCALE_MAX: u32 = 4;
/// Integer digits accepted in a money string (up to 999 trillion yuan).
pub const MONEY_INTEGER_DIGITS_MAX: usize = 15;
/// Integer digits accepted in a unit price. Bounding prices keeps `u64` volume × price inside
/// `Decimal`'s 28 significant digits, so [`line_amount`] cannot overflow.
pub const UNIT_PRICE_INTEGER_DIGITS_MAX: usize = 6;

/// Why a money amount or unit price was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("{what} is empty; expected a decimal string such as \"192.15\"")]
    Empty { what: &'static str },
    #[error(
        "{what} {input:?} is not a plain decimal string: expected an optional '-', digits and \
         an optional '.' followed by 1 to {max_decimals} digits (e.g. \"192.15\"); no spaces, \
         '+', exponents or words"
    )]
    Malformed {
        what: &'static str,
        input: String,
        max_decimals: u32,
    },
    #[error("{what} {input:?} has {decimals} decimal places; at most {max_decimals} are allowed")]
    TooManyDecimals {
        what: &'static str,
        input: String,
        decimals: u32,
        max_decimals: u32,
    },
    #[error("{what} {input:?} has more than {max_digits} integer digits")]
    TooLarge {
        what: &'static str,
        input: String,
        max_digits: usize,
    },
    #[error("{what} {input} must not be negative")]
    Negative { what: &'static str, input: String },
}

/// An amount in yuan, always at scale 2 (fen). Negative values exist (refunds, adjustments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

impl Default for Money {
    fn default() -> Money {
        Money::ZERO
    }
}

impl Money {
    pub const ZERO: Money = Money(Decimal::from_parts(0, 0, 0, false, MONEY_SCALE));

    /// Parses a strict decimal string such as "192.15", "-3.5" or "0".
    pub fn parse(input: &str) -> Result<Money, MoneyError> {
        let value = parse_strict_decimal(input, "amount", MONEY_SCALE, MONEY_INTEGER_DIGITS_MAX)?;
        Ok(Money::at_fen_scale(value))
    }

    /// Like [`Money::parse`], but refuses amounts below zero (payment amounts, prepayments).
    pub fn parse_non_negative(input: &str) -> Result<Money, MoneyError> {
        let money = Money::parse(input)?;
        if money.is_negative() {
            return Err(MoneyError::Negative {
                what: "amount",
                input: input.to_string(),
            });
        }
        Ok(money)
    }

    /// Accepts a decimal that is already exact to the fen (e.g. a NUMERIC(_, 2) column).
    pub fn from_decimal_exact(value: Decimal) -> Result<Money, MoneyError> {
        let normalized = value.normalize();
        if normalized.scale() > MONEY_SCALE {
            return Err(MoneyError::TooManyDecimals {
                what: "amount",
                input: value.to_string(),
                decimals: normalized.scale(),
                max_decimals: MONEY_SCALE,
            });
        }
        if normalized.abs() >= integer_digits_limit(MONEY_INTEGER_DIGITS_MAX) {
            return Err(MoneyError::TooLarge {
                what: "amount",
                input: value.to_string(),
                max_digits: MONEY_INTEGER_DIGITS_MAX,
            });
        }
        Ok(Money::at_fen_scale(normalized))
    }

    /// Rounds an exact intermediate value (a price × volume, a late fee) to the fen with the
    /// given strategy; callers name the strategy so every rounding point is visible.
    pub fn round_from(value: Decimal, strategy: RoundingStrategy) -> Money {
        Money::at_fen_scale(value.round_dp_with_strategy(MONEY_SCALE, strategy))
    }

    /// Integer fen, as WeChat Pay sends amounts.
    pub fn from_fen(fen: i64) -> Money {
        Money::at_fen_scale(Decimal::new(fen, MONEY_SCALE))
    }

    /// The amount in integer fen. Amounts beyond `i64` fen (about 92 trillion yuan) saturate.
    pub fn to_fen(self) -> i64 {
        let mantissa = self.0.mantissa();
        i64::try_from(mantissa).unwrap_or(if mantissa < 0 { i64::MIN } else { i64::MAX })
    }

    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub fn is_positive(self) -> bool {
        self.0 > Decimal::ZERO
    }

    pub fn is_negative(self) -> bool {
        self.0 < Decimal::ZERO
    }

    /// Holds the scale-2 invariant and folds "-0.00" into "0.00" so Display is canonical.
    fn at_fen_scale(mut value: Decimal) -> Money {
        if value.is_zero() {
            return Money::ZERO;
        }
        value.rescale(MONEY_SCALE);
        Money(value)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money::at_fen_scale(self.0 + rhs.0)
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money::at_fen_scale(self.0 - rhs.0)
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money::at_fen_scale(-self.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        *self = *self - rhs;
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.copied().sum()
    }
}

/// A published price per m³ in yuan: never negative, at most 4 decimals, kept at the scale it
/// was published with (minimum 2, so "2.4" reads back as "2.40" and "3.1500" as "3.1500").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitPrice(Decimal);

impl UnitPrice {
    pub fn parse(input: &str) -> Result<UnitPrice, MoneyError> {
        let value = parse_strict_decimal(
            input,
            "unit price",
            UNIT_PRICE_SCALE_MAX,
            UNIT_PRICE_INTEGER_DIGITS_MAX,
        )?;
        UnitPrice::from_decimal(value)
    }

    /// Accepts a decimal from storage, with the same limits as [`UnitPrice::parse`].
    pub fn from_decimal(value: Decimal) -> Result<UnitPrice, MoneyError> {
        let what = "unit price";
        if value < Decimal::ZERO {
            return Err(MoneyError::Negative {
                what,
                input: value.to_string(),
            });
        }
        if value.normalize().scale() > UNIT_PRICE_SCALE_MAX {
            return Err(MoneyError::TooManyDecimals {
                what,
                input: value.to_string(),
                decimals: value.normalize().scale(),
                max_decimals: UNIT_PRICE_SCALE_MAX,
            });
        }
        if value >= integer_digits_limit(UNIT_PRICE_INTEGER_DIGITS_MAX) {
            return Err(MoneyError::TooLarge {
                what,
                input: value.to_string(),
                max_digits: UNIT_PRICE_INTEGER_DIGITS_MAX,
            });
        }
        let mut stored = value.abs();
        let scale = stored.scale().clamp(MONEY_SCALE, UNIT_PRICE_SCALE_MAX);
        stored.rescale(scale);
        Ok(UnitPrice(stored))
    }

    pub fn as_decimal(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for UnitPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The amount of one bill line: volume × price, rounded half-up (四舍五入) to the fen.
pub fn line_amount(volume_m3: u64, price: UnitPrice) -> Money {
    // u64::MAX × (a price below 10^6) has at most 26 significant digits: no overflow.
    let exact = Decimal::from(volume_m3) * price.0;
    Money::round_from(exact, RoundingStrategy::MidpointAwayFromZero)
}

/// 10^digits as a Decimal, the first value with more than `digits` integer digits.
fn integer_digits_limit(digits: usize) -> Decimal {
    let exponent = u32::try_from(digits).unwrap_or(u32::MAX).min(27);
    Decimal::from_i128_with_scale(10_i128.pow(exponent), 0)
}

/// The grammar shared by money and prices: `-?[0-9]+(\.[0-9]{1,max_decimals})?`.
fn parse_strict_decimal(
    input: &str,
    what: &'static str,
    max_decimals: u32,
    max_integer_digits: usize,
) -> Result<Decimal, MoneyError> {
    let malformed = || MoneyError::Malformed {
        what,
        input: input.to_string(),
        max_decimals,
    };
    if input.is_empty() {
        return Err(MoneyError::Empty { what });
    }
    let unsigned = input.strip_prefix('-').unwrap_or(input);
    let (integer, fraction) = match unsigned.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (unsigned, None),
    };
    if !is_digits(integer) || fraction.is_some_and(|f| !is_digits(f)) {
        return Err(malformed());
    }
    let decimals = fraction.map_or(0, str::len);
    if decimals > max_decimals as usize {
        return Err(MoneyError::TooManyDecimals {
            what,
            input: input.to_string(),
            decimals: u32::try_from(decimals).unwrap_or(u32::MAX),
            max_decimals,
        });
    }
    if integer.len() > max_integer_digits {
        return Err(MoneyError::TooLarge {
            what,
            input: input.to_string(),
            max_digits: max_integer_digits,
        });
    }
    Decimal::from_str_exact(input).map_err(|_| malformed())
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn valid_amount_strings_parse_and_print_at_fen_scale() {
        let cases = [
            ("192.15", "192.15"),
            ("0", "0.00"),
            ("-0", "0.00"),
            ("-3.5", "-3.50"),
            ("007.1", "7.10"),
            ("999999999999999.99", "999999999999999.99"),
        ];
        for (input, shown) in cases {
            assert_eq!(Money::parse(input).unwrap().to_string(), shown, "{input}");
        }
    }

    #[test]
    fn loose_or_ambiguous_amount_strings_are_rejected() {
        let cases = [
            "",
            " 1",
            "1 ",
            "+1",
            "1e3",
            "NaN",
            "inf",
            "1.234",
            ".5",
            "1.",
            "-",
            "1,00",
            "1.2.3",
            "--1",
            "1234567890123456",
            "１",
        ];
        for input in cases {
            assert!(Money::parse(input).is_err(), "{input:?} should be rejected");
        }
    }

    #[test]
    fn rejection_messages_say_what_is_wrong() {
        let err = Money::parse("1.234").unwrap_err().to_string();
        assert_eq!(
            err,
            "amount \"1.234\" has 3 decimal places; at most 2 are allowed"
        );
        let err = Money::parse_non_negative("-1").unwrap_err().to_string();
        assert_eq!(err, "amount -1 must not be negative");
    }

    #[test]
    fn exact_decimals_are_accepted_only_when_they_fit_the_fen() {
        assert_eq!(
            Money::from_decimal_exact(dec!(1.230)).unwrap().to_string(),
            "1.23"
        );
        assert!(Money::from_decimal_exact(dec!(1.234)).is_err());
    }

    #[test]
    fn fen_conversion_is_exact_both_ways() {
        assert_eq!(Money::from_fen(19215).to_string(), "192.15");
        assert_eq!(Money::from_fen(-5).to_string(), "-0.05");
        assert_eq!(Money::parse("192.15").unwrap().to_fen(), 19215);
        assert_eq!(Money::parse("7").unwrap().to_fen(), 700);
    }

    #[test]
    fn arithmetic_keeps_the_fen_scale() {
        let a = Money::parse("0.10").unwrap();
        let b = Money::parse("0.2").unwrap();
        assert_eq!((a + b).to_string(), "0.30");
        assert_eq!((a - b).to_string(), "-0.10");
        assert_eq!((-(a - a)).to_string(), "0.00");
        assert_eq!([a, b, b].iter().sum::<Money>().to_string(), "0.50");
        assert_eq!(a.min(b), a);
    }

    #[test]
    fn unit_prices_keep_their_published_scale_with_at_least_two_decimals() {
        let cases = [
            ("2.4", "2.40"),
            ("3", "3.00"),
            ("3.1500", "3.1500"),
            ("0.955", "0.955"),
        ];
        for (input, shown) in cases {
            assert_eq!(
                UnitPrice::parse(input).unwrap().to_string(),
                shown,
                "{input}"
            );
        }
        for input in ["-1", "1.23456", "1e2", "", "1234567"] {
            assert!(
                UnitPrice::parse(input).is_err(),
                "{input:?} should be rejected"
            );
        }
    }

    #[test]
    fn line_amounts_round_half_up_never_to_even() {
        let cases = [
            (45, "0.95", "42.75"),
            (1, "0.005", "0.01"),
            (1, "0.0250", "0.03"),
            (3, "0.0050", "0.02"),
            (137, "3.15", "431.55"),
        ];
        for (volume, price, amount) in cases {
            let price = UnitPrice::parse(price).unwrap();
            assert_eq!(line_amount(volume, price).to_string(), amount);
        }
    }

    proptest! {
        #[test]
        fn every_fen_amount_round_trips_through_its_string(fen in -1_000_000_000_000_i64..1_000_000_000_000) {
            let money = Money::from_fen(fen);
            prop_assert_eq!(Money::parse(&money.to_string()).unwrap(), money);
            prop_assert_eq!(money.to_fen(), fen);
        }

        #[test]
        fn adding_then_subtracting_restores_the_amount(a in -1_000_000_000_i64..1_000_000_000, b in -1_000_000_000_i64..1_000_000_000) {
            let (a, b) = (Money::from_fen(a), Money::from_fen(b));
            prop_assert_eq!(a + b - b, a);
        }

        #[test]
        fn line_amount_never_differs_from_the_exact_product_by_more_than_half_a_fen(
            volume in 0_u64..1_000_000, price_ten_thousandths in 0_i64..1_000_000
        ) {
            let price = UnitPrice::from_decimal(Decimal::new(price_ten_thousandths, 4)).unwrap();
            let exact = Decimal::from(volume) * price.as_decimal();
            let diff = (line_amount(volume, price).as_decimal() - exact).abs();
            prop_assert!(diff <= dec!(0.005));
        }
    }
}
