//! The payment aggregate: the states an order (online or counter) moves through, the events
//! that move it, and the one transition function that decides. Every writer asks
//! [`PaymentStatus::on`] before it changes a payment's status and stores what it answers; the
//! database's conditional update (`WHERE status IN (...)`) then guards the race between two
//! writers that asked at the same time, with [`PaymentStatus::accepting`] naming the states
//! an event may start from.
//!
//! The text values are what the database stores and the API shows; an unknown stored value is a
//! corruption ([`UnknownStatus`]), never a default.

use std::fmt;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Created; the gateway has not confirmed payment.
    Pending,
    /// Paid and posted to the account.
    Succeeded,
    /// Closed unpaid (expired or closed at the gateway). A payment that still arrives is posted.
    Closed,
    /// Paid; part of it refunded, as the gateway confirmed.
    PartiallyRefunded,
    /// Paid; all of it refunded, as the gateway confirmed.
    Refunded,
    /// Posted by mistake (the gateway never took the money) and taken back by finance.
    Reversed,
}

/// What happens to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentEvent {
    /// Verified evidence (notification, our query, reconciliation, a counter) that it was paid.
    Paid,
    /// The order expired or the gateway closed it unpaid.
    Close,
    /// The gateway confirmed a refund; `refunded_fen` is the payment's confirmed refunds in
    /// total, this one included, and `amount_fen` what it was paid.
    RefundConfirmed { refunded_fen: i64, amount_fen: i64 },
    /// Finance reverses a payment the gateway says it never took.
    Reverse,
}

/// Why an event does not apply; each says what the caller does instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentRefusal {
    /// Paid before: the evidence is a duplicate and changes nothing.
    #[error("the payment was posted before")]
    AlreadyPosted,
    /// The order was reversed: money arriving for it now goes to suspense for finance.
    #[error("the order was reversed; a payment for it goes to suspense")]
    Reversed,
    /// Closing an order that is no longer pending.
    #[error("a {0} order cannot be closed")]
    NotClosable(PaymentStatus),
    /// A refund of an order that was not paid (or was reversed).
    #[error("a {status} payment cannot be refunded")]
    NotRefundable { status: PaymentStatus },
    /// Confirmed refunds beyond what was paid: a programming or data error.
    #[error("refunds of {refunded_fen} fen exceed the payment of {amount_fen} fen")]
    RefundsExceedPayment { refunded_fen: i64, amount_fen: i64 },
    /// A reversal of anything but a succeeded, unrefunded payment.
    #[error("a {0} payment cannot be reversed")]
    NotReversible(PaymentStatus),
}

/// A stored status text that is none of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment status {0:?}")]
pub struct UnknownStatus(pub String);

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        Self::Pending,
        Self::Succeeded,
        Self::Closed,
        Self::PartiallyRefunded,
        Self::Refunded,
        Self::Reversed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Succeeded => "SUCCEEDED",
            Self::Closed => "CLOSED",
            Self::PartiallyRefunded => "PARTIALLY_REFUNDED",
            Self::Refunded => "REFUNDED",
            Self::Reversed => "REVERSED",
        }
    }

    pub fn parse(text: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownStatus(text.to_owned()))
    }

    /// Money arrived and stayed (whatever was refunded of it since).
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::PartiallyRefunded | Self::Refunded
        )
    }

    /// The one transition function of the payment aggregate.
    pub fn on(self, event: PaymentEvent) -> Result<PaymentStatus, PaymentRefusal> {
        use PaymentStatus as S;
        match (self, event) {
            (S::Pending | S::Closed, PaymentEvent::Paid) => Ok(S::Succeeded),
            (S::Reversed, PaymentEvent::Paid) => Err(PaymentRefusal::Reversed),
            (_, PaymentEvent::Paid) => Err(PaymentRefusal::AlreadyPosted),
            (S::Pending, PaymentEvent::Close) => Ok(S::Closed),
            (other, PaymentEvent::Close) => Err(PaymentRefusal::NotClosable(other)),
            (
                S::Succeeded | S::PartiallyRefunded,
                PaymentEvent::RefundConfirmed {
                    refunded_fen,
                    amount_fen,
                },
            ) => match refunded_fen {
                r if r > amount_fen || r <= 0 => Err(PaymentRefusal::RefundsExceedPayment {
                    refunded_fen,
                    amount_fen,
                }),
                r if r == amount_fen => Ok(S::Refunded),
                _ => Ok(S::PartiallyRefunded),
            },
            (status, PaymentEvent::RefundConfirmed { .. }) => {
                Err(PaymentRefusal::NotRefundable { status })
            }
            (S::Succeeded, PaymentEvent::Reverse) => Ok(S::Reversed),
            (other, PaymentEvent::Reverse) => Err(PaymentRefusal::NotReversible(other)),
        }
    }

    /// The states `event` may start from, for the conditional update that guards a race.
    pub fn accepting(event: PaymentEvent) -> Vec<PaymentStatus> {
        Self::ALL
            .into_iter()
            .filter(|status| status.on(event).is_ok())
            .collect()
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::PaymentEvent as E;
    use super::PaymentRefusal as R;
    use super::PaymentStatus as S;
    use super::*;

    const REFUND_PART: E = E::RefundConfirmed {
        refunded_fen: 100,
        amount_fen: 300,
    };
    const REFUND_ALL: E = E::RefundConfirmed {
        refunded_fen: 300,
        amount_fen: 300,
    };

    /// The whole table: every state against every event.
    #[test]
    fn every_state_answers_every_event_as_the_table_says() {
        let table: [(S, [Result<S, R>; 5]); 6] = [
            (
                S::Pending,
                [
                    Ok(S::Succeeded),
                    Ok(S::Closed),
                    Err(R::NotRefundable { status: S::Pending }),
                    Err(R::NotRefundable { status: S::Pending }),
                    Err(R::NotReversible(S::Pending)),
                ],
            ),
            (
                S::Succeeded,
                [
                    Err(R::AlreadyPosted),
                    Err(R::NotClosable(S::Succeeded)),
                    Ok(S::PartiallyRefunded),
                    Ok(S::Refunded),
                    Ok(S::Reversed),
                ],
            ),
            (
                S::Closed,
                [
                    Ok(S::Succeeded),
                    Err(R::NotClosable(S::Closed)),
                    Err(R::NotRefundable { status: S::Closed }),
                    Err(R::NotRefundable { status: S::Closed }),
                    Err(R::NotReversible(S::Closed)),
                ],
            ),
            (
                S::PartiallyRefunded,
                [
                    Err(R::AlreadyPosted),
                    Err(R::NotClosable(S::PartiallyRefunded)),
                    Ok(S::PartiallyRefunded),
                    Ok(S::Refunded),
                    Err(R::NotReversible(S::PartiallyRefunded)),
                ],
            ),
            (
                S::Refunded,
                [
                    Err(R::AlreadyPosted),
                    Err(R::NotClosable(S::Refunded)),
                    Err(R::NotRefundable {
                        status: S::Refunded,
                    }),
                    Err(R::NotRefundable {
                        status: S::Refunded,
                    }),
                    Err(R::NotReversible(S::Refunded)),
                ],
            ),
            (
                S::Reversed,
                [
                    Err(R::Reversed),
                    Err(R::NotClosable(S::Reversed)),
                    Err(R::NotRefundable {
                        status: S::Reversed,
                    }),
                    Err(R::NotRefundable {
                        status: S::Reversed,
                    }),
                    Err(R::NotReversible(S::Reversed)),
                ],
            ),
        ];
        let events = [E::Paid, E::Close, REFUND_PART, REFUND_ALL, E::Reverse];
        for (from, answers) in table {
            for (event, expected) in events.iter().zip(answers) {
                assert_eq!(from.on(*event), expected, "{from} on {event:?}");
            }
        }
    }

    #[test]
    fn confirmed_refunds_beyond_the_payment_are_refused() {
        let over = E::RefundConfirmed {
            refunded_fen: 301,
            amount_fen: 300,
        };
        assert!(matches!(
            S::Succeeded.on(over),
            Err(R::RefundsExceedPayment { .. })
        ));
    }

    #[test]
    fn a_payment_is_posted_only_from_pending_or_closed() {
        assert_eq!(
            S::accepting(E::Paid),
            vec![S::Pending, S::Closed],
            "the conditional update of a posting"
        );
    }

    #[test]
    fn stored_text_round_trips_and_unknown_text_is_corruption() {
        for status in S::ALL {
            assert_eq!(S::parse(status.as_str()).unwrap(), status);
        }
        assert_eq!(
            S::parse("succeeded"),
            Err(UnknownStatus("succeeded".into()))
        );
    }
}
