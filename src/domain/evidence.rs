//! Money the gateways tell us about, as closed sets: who vouched that an order was paid
//! ([`EvidenceSource`], stored as the payment's `settled_by`), why verified money was held in
//! suspense instead of being applied ([`SuspenseReason`]), and what became of a received
//! notification ([`NotificationOutcome`], stored with the raw notification).
//!
//! These values are written to rows and read back by finance and by reconciliation, so each
//! is an enum with one stored text per value; a stored text none of them is a corrupt row,
//! never a default. The module is pure: no I/O, no clock.

use std::fmt;

/// A stored text that is none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a known {what}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub input: String,
}

/// Finds the value of `all` whose stored text is `input`.
fn parse_text<T: Copy>(
    what: &'static str,
    all: &[T],
    as_str: fn(T) -> &'static str,
    input: &str,
) -> Result<T, UnknownValue> {
    all.iter()
        .copied()
        .find(|value| as_str(*value) == input)
        .ok_or_else(|| UnknownValue {
            what,
            input: input.to_owned(),
        })
}

/// Who vouched that an order was paid: the confirmation that moved it out of PENDING.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceSource {
    /// A verified gateway notification (webhook).
    Notify,
    /// Our own query of a stale PENDING order.
    Query,
    /// A gateway statement, confirmed by a query, during reconciliation or a resolution.
    Reconciliation,
    /// A cashier took the money at the counter.
    Counter,
}

impl EvidenceSource {
    pub const ALL: [Self; 4] = [
        Self::Notify,
        Self::Query,
        Self::Reconciliation,
        Self::Counter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notify => "NOTIFY",
            Self::Query => "QUERY",
            Self::Reconciliation => "RECONCILIATION",
            Self::Counter => "COUNTER",
        }
    }

    pub fn parse(input: &str) -> Result<Self, UnknownValue> {
        parse_text("evidence source", &Self::ALL, Self::as_str, input)
    }
}

impl fmt::Display for EvidenceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why verified money was held in suspense (and the journal) instead of being applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SuspenseReason {
    /// No order of ours on that channel has the gateway's number.
    UnknownOrder,
    /// The gateway took a different amount than the order asked for.
    AmountMismatch,
    /// Finance had reversed the order (the gateway had said it was not paid).
    ReversedOrder,
    /// The gateway paid out a refund we had marked FAILED: the money left twice.
    RefundPaidAfterFailure,
}

impl SuspenseReason {
    pub const ALL: [Self; 4] = [
        Self::UnknownOrder,
        Self::AmountMismatch,
        Self::ReversedOrder,
        Self::RefundPaidAfterFailure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownOrder => "UNKNOWN_ORDER",
            Self::AmountMismatch => "AMOUNT_MISMATCH",
            Self::ReversedOrder => "REVERSED_ORDER",
            Self::RefundPaidAfterFailure => "REFUND_PAID_AFTER_FAILURE",
        }
    }

    pub fn parse(input: &str) -> Result<Self, UnknownValue> {
        parse_text("suspense reason", &Self::ALL, Self::as_str, input)
    }
}

impl fmt::Display for SuspenseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of a received notification, stored with it as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationOutcome {
    /// The payment was applied to its account.
    Posted,
    /// The order had already been posted (by an earlier notification, a query, ...).
    Duplicate,
    /// Verified money for an order we do not know: held in suspense.
    SuspenseUnknownOrder,
    /// Verified money of a different amount than the order: held in suspense.
    SuspenseAmountMismatch,
    /// Verified money for an order finance reversed: held in suspense, a discrepancy opened.
    SuspenseReversedOrder,
    /// The order was closed by the gateway.
    Closed,
    /// A state we do not act on (e.g. a payment not yet successful).
    Ignored,
    /// Verified, but for another merchant or app.
    NotOurs,
    /// A paid notification whose amount does not parse; nothing applied.
    MalformedAmount,
    /// A verified refund success settled a PENDING refund.
    RefundConfirmed,
    /// A verified refund success for a refund we had marked FAILED: raised for finance.
    RefundPaidAfterFailure,
    /// A refund the gateway reports CLOSED / ABNORMAL: it stays PENDING for a person.
    RefundNotFinal,
    /// A refund notification that changed nothing (already settled, or no such refund).
    RefundSeen,
    /// Not verified (signature, timestamp, decryption): refused.
    Rejected,
    /// The channel is not configured: refused.
    ChannelDisabled,
}

impl NotificationOutcome {
    pub const ALL: [Self; 15] = [
        Self::Posted,
        Self::Duplicate,
        Self::SuspenseUnknownOrder,
        Self::SuspenseAmountMismatch,
        Self::SuspenseReversedOrder,
        Self::Closed,
        Self::Ignored,
        Self::NotOurs,
        Self::MalformedAmount,
        Self::RefundConfirmed,
        Self::RefundPaidAfterFailure,
        Self::RefundNotFinal,
        Self::RefundSeen,
        Self::Rejected,
        Self::ChannelDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Posted => "POSTED",
            Self::Duplicate => "DUPLICATE",
            Self::SuspenseUnknownOrder => "SUSPENSE_UNKNOWN_ORDER",
            Self::SuspenseAmountMismatch => "SUSPENSE_AMOUNT_MISMATCH",
            Self::SuspenseReversedOrder => "SUSPENSE_REVERSED_ORDER",
            Self::Closed => "CLOSED",
            Self::Ignored => "IGNORED",
            Self::NotOurs => "NOT_OURS",
            Self::MalformedAmount => "MALFORMED_AMOUNT",
            Self::RefundConfirmed => "REFUND_CONFIRMED",
            Self::RefundPaidAfterFailure => "REFUND_PAID_AFTER_FAILURE",
            Self::RefundNotFinal => "REFUND_NOT_FINAL",
            Self::RefundSeen => "REFUND_SEEN",
            Self::Rejected => "REJECTED",
            Self::ChannelDisabled => "CHANNEL_DISABLED",
        }
    }

    pub fn parse(input: &str) -> Result<Self, UnknownValue> {
        parse_text("notification outcome", &Self::ALL, Self::as_str, input)
    }
}

impl fmt::Display for NotificationOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Every value's text is distinct and reads back as that value; texts are never defaulted.
    fn round_trips<T: Copy + Eq + std::hash::Hash + fmt::Debug>(
        all: &[T],
        as_str: fn(T) -> &'static str,
        parse: fn(&str) -> Result<T, UnknownValue>,
    ) {
        let texts: HashSet<_> = all.iter().map(|v| as_str(*v)).collect();
        assert_eq!(texts.len(), all.len(), "two values share a stored text");
        for value in all {
            assert_eq!(parse(as_str(*value)).unwrap(), *value);
        }
        for bad in ["", "posted", "NOTIFY ", "SOMETHING_ELSE"] {
            if !texts.contains(bad) {
                assert!(parse(bad).is_err(), "{bad:?} must not parse");
            }
        }
    }

    #[test]
    fn every_stored_text_reads_back_as_its_value_and_nothing_else_does() {
        round_trips(
            &EvidenceSource::ALL,
            EvidenceSource::as_str,
            EvidenceSource::parse,
        );
        round_trips(
            &SuspenseReason::ALL,
            SuspenseReason::as_str,
            SuspenseReason::parse,
        );
        round_trips(
            &NotificationOutcome::ALL,
            NotificationOutcome::as_str,
            NotificationOutcome::parse,
        );
    }

    #[test]
    fn the_stored_texts_are_the_ones_existing_rows_hold() {
        // Rows written before these enums existed must still read back.
        let sources: Vec<_> = EvidenceSource::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(sources, ["NOTIFY", "QUERY", "RECONCILIATION", "COUNTER"]);
        let reasons: Vec<_> = SuspenseReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "UNKNOWN_ORDER",
                "AMOUNT_MISMATCH",
                "REVERSED_ORDER",
                "REFUND_PAID_AFTER_FAILURE"
            ]
        );
    }

    #[test]
    fn an_unknown_text_says_what_it_is_not() {
        let err = NotificationOutcome::parse("PAID").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"PAID\" is not a known notification outcome"
        );
    }
}
