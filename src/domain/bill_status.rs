//! A bill's payment state and its one transition function.
//!
//! A bill is UNPAID when issued with nothing applied, PARTIALLY_PAID once something (principal
//! or late fee) is paid but not the whole principal, PAID once its principal is paid in full,
//! and VOID when cancelled. The state is never set by hand: [`transition`] moves a bill's paid
//! amounts by a payment's share (or takes a share back, for a reversal) and derives the state
//! from the amounts, refusing with a typed [`BillRefusal`] anything that would overpay the
//! principal, take back more than was paid, or touch a void bill. The stored text values are
//! the names below; an unknown stored value is a corruption, never a default.

use thiserror::Error;

use super::money::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillStatus {
    Unpaid,
    PartiallyPaid,
    Paid,
    Void,
}

/// A stored or requested status that is none of the four.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{input:?} is not UNPAID, PARTIALLY_PAID, PAID or VOID")]
pub struct UnknownBillStatus {
    pub input: String,
}

impl BillStatus {
    pub const ALL: [BillStatus; 4] = [
        BillStatus::Unpaid,
        BillStatus::PartiallyPaid,
        BillStatus::Paid,
        BillStatus::Void,
    ];
    /// The states in which a bill still takes money.
    pub const OPEN: [BillStatus; 2] = [BillStatus::Unpaid, BillStatus::PartiallyPaid];

    pub fn as_str(self) -> &'static str {
        match self {
            BillStatus::Unpaid => "UNPAID",
            BillStatus::PartiallyPaid => "PARTIALLY_PAID",
            BillStatus::Paid => "PAID",
            BillStatus::Void => "VOID",
        }
    }

    pub fn parse(input: &str) -> Result<BillStatus, UnknownBillStatus> {
        BillStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == input)
            .ok_or_else(|| UnknownBillStatus {
                input: input.to_owned(),
            })
    }

    pub fn is_open(self) -> bool {
        BillStatus::OPEN.contains(&self)
    }

    /// The state a (not void) bill's paid amounts put it in.
    pub fn of(total: Money, principal_paid: Money, late_fee_paid: Money) -> BillStatus {
        if principal_paid >= total {
            BillStatus::Paid
        } else if principal_paid.is_positive() || late_fee_paid.is_positive() {
            BillStatus::PartiallyPaid
        } else {
            BillStatus::Unpaid
        }
    }
}

/// What a bill owes and has been paid: the values its transition moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillBalance {
    pub total: Money,
    pub principal_paid: Money,
    pub late_fee_paid: Money,
    pub status: BillStatus,
}

impl BillBalance {
    /// A bill just issued with `applied` of prepayment paid towards its principal.
    pub fn issued(total: Money, applied: Money) -> Result<BillBalance, BillRefusal> {
        let unpaid = BillBalance {
            total,
            principal_paid: Money::ZERO,
            late_fee_paid: Money::ZERO,
            status: BillStatus::of(total, Money::ZERO, Money::ZERO),
        };
        if applied.is_zero() {
            return Ok(unpaid);
        }
        // A zero bill is PAID at issue; nothing can be applied to it.
        let open = BillBalance {
            status: BillStatus::Unpaid,
            ..unpaid
        };
        transition(
            &open,
            BillEvent::Pay {
                principal: applied,
                late_fee: Money::ZERO,
            },
        )
    }

    pub fn principal_due(&self) -> Money {
        self.total - self.principal_paid
    }
}

/// What happens to a bill's money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillEvent {
    /// A share of money arriving: towards the late fee and the principal.
    Pay { principal: Money, late_fee: Money },
    /// A share taken back (the payment that brought it is reversed).
    Unpay { principal: Money, late_fee: Money },
}

/// Why a bill refused an event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BillRefusal {
    #[error("the bill is void")]
    Void,
    #[error("the bill is already paid")]
    AlreadyPaid,
    #[error("a share of {principal} principal and {late_fee} late fee is negative")]
    NegativeShare { principal: Money, late_fee: Money },
    #[error("paying {paying} of principal exceeds the {due} still due")]
    Overpaid { paying: Money, due: Money },
    #[error(
        "taking back {principal} principal and {late_fee} late fee exceeds what was paid ({principal_paid} and {late_fee_paid})"
    )]
    UnpaidMoreThanPaid {
        principal: Money,
        late_fee: Money,
        principal_paid: Money,
        late_fee_paid: Money,
    },
}

/// The one transition of a bill: its amounts after `event`, and the state they put it in.
pub fn transition(bill: &BillBalance, event: BillEvent) -> Result<BillBalance, BillRefusal> {
    if bill.status == BillStatus::Void {
        return Err(BillRefusal::Void);
    }
    let (principal, late_fee) = match event {
        BillEvent::Pay {
            principal,
            late_fee,
        }
        | BillEvent::Unpay {
            principal,
            late_fee,
        } => (principal, late_fee),
    };
    if principal.is_negative() || late_fee.is_negative() {
        return Err(BillRefusal::NegativeShare {
            principal,
            late_fee,
        });
    }
    let (principal_paid, late_fee_paid) = match event {
        BillEvent::Pay { .. } => {
            if bill.status == BillStatus::Paid {
                return Err(BillRefusal::AlreadyPaid);
            }
            if principal > bill.principal_due() {
                return Err(BillRefusal::Overpaid {
                    paying: principal,
                    due: bill.principal_due(),
                });
            }
            (
                bill.principal_paid + principal,
                bill.late_fee_paid + late_fee,
            )
        }
        BillEvent::Unpay { .. } => {
            if principal > bill.principal_paid || late_fee > bill.late_fee_paid {
                return Err(BillRefusal::UnpaidMoreThanPaid {
                    principal,
                    late_fee,
                    principal_paid: bill.principal_paid,
                    late_fee_paid: bill.late_fee_paid,
                });
            }
            (
                bill.principal_paid - principal,
                bill.late_fee_paid - late_fee,
            )
        }
    };
    Ok(BillBalance {
        total: bill.total,
        principal_paid,
        late_fee_paid,
        status: BillStatus::of(bill.total, principal_paid, late_fee_paid),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    fn bill(total: &str, principal: &str, fee: &str) -> BillBalance {
        let (total, principal_paid, late_fee_paid) = (m(total), m(principal), m(fee));
        BillBalance {
            total,
            principal_paid,
            late_fee_paid,
            status: BillStatus::of(total, principal_paid, late_fee_paid),
        }
    }

    fn pay(principal: &str, fee: &str) -> BillEvent {
        BillEvent::Pay {
            principal: m(principal),
            late_fee: m(fee),
        }
    }

    fn unpay(principal: &str, fee: &str) -> BillEvent {
        BillEvent::Unpay {
            principal: m(principal),
            late_fee: m(fee),
        }
    }

    #[test]
    fn the_transition_table() {
        use BillStatus::*;
        let cases: Vec<(BillBalance, BillEvent, Result<BillStatus, &str>)> = vec![
            (
                bill("35.50", "0", "0"),
                pay("10.00", "0"),
                Ok(PartiallyPaid),
            ),
            (bill("35.50", "0", "0"), pay("0", "1.00"), Ok(PartiallyPaid)),
            (bill("35.50", "0", "0"), pay("35.50", "0.30"), Ok(Paid)),
            (bill("35.50", "10.00", "0"), pay("25.50", "0"), Ok(Paid)),
            (
                bill("35.50", "10.00", "0"),
                pay("25.51", "0"),
                Err("Overpaid"),
            ),
            (
                bill("35.50", "35.50", "0"),
                pay("0", "1.00"),
                Err("AlreadyPaid"),
            ),
            (
                bill("35.50", "0", "0"),
                pay("-1.00", "0"),
                Err("NegativeShare"),
            ),
            (
                bill("35.50", "35.50", "1.00"),
                unpay("35.50", "1.00"),
                Ok(Unpaid),
            ),
            (
                bill("35.50", "35.50", "1.00"),
                unpay("20.00", "0"),
                Ok(PartiallyPaid),
            ),
            (
                bill("35.50", "35.50", "1.00"),
                unpay("35.50", "0"),
                Ok(PartiallyPaid),
            ),
            (bill("35.50", "35.50", "0"), unpay("0", "0"), Ok(Paid)),
            (
                bill("35.50", "10.00", "0"),
                unpay("10.01", "0"),
                Err("UnpaidMoreThanPaid"),
            ),
            (
                bill("35.50", "10.00", "0"),
                unpay("0", "0.01"),
                Err("UnpaidMoreThanPaid"),
            ),
        ];
        for (before, event, expected) in cases {
            let got = transition(&before, event)
                .map(|after| after.status)
                .map_err(|e| {
                    format!("{e:?}")
                        .split([' ', '{'])
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                });
            assert_eq!(got, expected.map_err(str::to_owned), "{before:?} {event:?}");
        }
    }

    #[test]
    fn a_void_bill_refuses_everything() {
        let void = BillBalance {
            status: BillStatus::Void,
            ..bill("35.50", "0", "0")
        };
        assert_eq!(transition(&void, pay("1.00", "0")), Err(BillRefusal::Void));
        assert_eq!(transition(&void, unpay("0", "0")), Err(BillRefusal::Void));
    }

    #[test]
    fn a_bill_is_issued_paid_as_far_as_prepayment_reaches() {
        let issued = |total: &str, applied: &str| {
            BillBalance::issued(m(total), m(applied)).map(|b| b.status)
        };
        assert_eq!(issued("35.50", "0"), Ok(BillStatus::Unpaid));
        assert_eq!(issued("35.50", "10.00"), Ok(BillStatus::PartiallyPaid));
        assert_eq!(issued("35.50", "35.50"), Ok(BillStatus::Paid));
        assert_eq!(issued("0", "0"), Ok(BillStatus::Paid));
        assert!(issued("35.50", "40.00").is_err());
    }

    #[test]
    fn stored_names_parse_back_and_unknown_ones_are_refused() {
        for status in BillStatus::ALL {
            assert_eq!(BillStatus::parse(status.as_str()), Ok(status));
        }
        assert!(BillStatus::parse("paid").is_err());
        assert!(BillStatus::parse("").is_err());
    }
}
