//! The refund lifecycle: the states a refund can be in and the one transition function that
//! says what an event from the gateway (or a verified notification) does to it.
//!
//! A refund is booked PENDING before the gateway is asked (the prepayment is reserved), so a
//! crash or a lost answer leaves a row that the sweeper can settle later. Only two things move
//! it on: the gateway saying it paid (SUCCEEDED), or a definitive, signed refusal that says
//! nothing was paid (FAILED, and the reservation is put back). Everything else (a timeout, a
//! 5xx, an answer we cannot read, a WeChat CLOSED/ABNORMAL that needs a person, an Alipay
//! `fund_change=N`) leaves it PENDING to be asked again with the same refund number; a gateway
//! that has no record of it is sent the same refund again. A verified success for a refund we
//! marked FAILED means the money left twice: that is its own outcome, never ignored.
//! The module is pure: no I/O, no clock.

use std::fmt;

/// Where a refund stands. Stored as the text of [`RefundState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundState {
    /// Reserved in our books; the gateway has not (yet) confirmed it paid.
    Pending,
    /// The gateway confirmed the money went back to the payer.
    Succeeded,
    /// The gateway refused definitively; the reservation was put back.
    Failed,
}

impl RefundState {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Succeeded, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
        }
    }

    /// The stored text back to a state; anything else is a corrupt row, never a default.
    pub fn parse(text: &str) -> Result<Self, UnknownRefundState> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| UnknownRefundState(text.to_owned()))
    }
}

impl fmt::Display for RefundState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored refund status that is not one of [`RefundState::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown refund status `{0}`")]
pub struct UnknownRefundState(pub String);

/// What we learned about a refund, from a refund request, a refund query or a verified
/// notification. The gateway clients classify their answers into these (see
/// `gateway::refund::RefundAnswer`); nothing here guesses from error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundEvent {
    /// The gateway answered (signed) that the money was paid back.
    Paid,
    /// A verified refund-success notification.
    VerifiedSuccess,
    /// The gateway accepted it and is still working on it (WeChat PROCESSING, Alipay
    /// `fund_change=N` or `REFUND_PROCESSING`).
    Processing,
    /// A signed business error that says nothing was paid.
    Refused,
    /// We do not know: timeout, transport error, 5xx, an answer we cannot read or verify.
    Inconclusive,
    /// The gateway says the refund is in a state a person must look at (WeChat CLOSED or
    /// ABNORMAL, an amount that is not ours).
    NeedsAttention,
    /// The refund query found no refund with our number.
    NotFound,
}

/// What the caller must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStep {
    /// Move PENDING to SUCCEEDED: the payment now shows the refund.
    Succeed,
    /// Move PENDING to FAILED: put the reserved prepayment back.
    Fail,
    /// Stay PENDING; ask the gateway again later with the same refund number.
    AskAgain,
    /// Stay PENDING and raise it: the gateway reports a state that needs a person.
    Attention,
    /// Stay PENDING and send the same refund (same number, same amount) again now.
    Resend,
    /// Nothing to do: the event repeats what the refund already says.
    Unchanged,
    /// The refund is FAILED (its reservation put back) but the gateway says it paid: the
    /// money left twice. Record it for finance; the state stays FAILED.
    MoneyLeftTwice,
}

/// An event that contradicts a settled refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    /// The refund is already settled; the gateway's late word does not move it.
    #[error("refund is already {state}; {event:?} does not change it")]
    AlreadySettled {
        state: RefundState,
        event: RefundEvent,
    },
}

/// The one transition function of the refund aggregate.
pub fn transition(state: RefundState, event: RefundEvent) -> Result<RefundStep, RefundRefusal> {
    use RefundEvent as E;
    use RefundState as S;
    match (state, event) {
        (S::Pending, E::Paid | E::VerifiedSuccess) => Ok(RefundStep::Succeed),
        (S::Pending, E::Refused) => Ok(RefundStep::Fail),
        (S::Pending, E::Processing | E::Inconclusive) => Ok(RefundStep::AskAgain),
        (S::Pending, E::NeedsAttention) => Ok(RefundStep::Attention),
        (S::Pending, E::NotFound) => Ok(RefundStep::Resend),
        (S::Succeeded, E::Paid | E::VerifiedSuccess) => Ok(RefundStep::Unchanged),
        (S::Failed, E::Refused) => Ok(RefundStep::Unchanged),
        (S::Failed, E::Paid | E::VerifiedSuccess) => Ok(RefundStep::MoneyLeftTwice),
        (
            S::Succeeded,
            E::Refused | E::Processing | E::Inconclusive | E::NeedsAttention | E::NotFound,
        )
        | (S::Failed, E::Processing | E::Inconclusive | E::NeedsAttention | E::NotFound) => {
            Err(RefundRefusal::AlreadySettled { state, event })
        }
    }
}

impl RefundStep {
    /// The state the refund is in after this step (from `state`).
    pub fn next_state(self, state: RefundState) -> RefundState {
        match self {
            Self::Succeed => RefundState::Succeeded,
            Self::Fail => RefundState::Failed,
            Self::AskAgain | Self::Attention | Self::Resend | Self::Unchanged => state,
            Self::MoneyLeftTwice => RefundState::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RefundEvent as E;
    use super::RefundState as S;
    use super::*;

    const EVENTS: [RefundEvent; 7] = [
        E::Paid,
        E::VerifiedSuccess,
        E::Processing,
        E::Refused,
        E::Inconclusive,
        E::NeedsAttention,
        E::NotFound,
    ];

    /// The whole table: every state against every event.
    #[test]
    fn the_transition_table_is_exactly_this() {
        use RefundStep as T;
        let settled = |state, event| Err(RefundRefusal::AlreadySettled { state, event });
        let table: [(RefundState, RefundEvent, Result<RefundStep, RefundRefusal>); 21] = [
            (S::Pending, E::Paid, Ok(T::Succeed)),
            (S::Pending, E::VerifiedSuccess, Ok(T::Succeed)),
            (S::Pending, E::Processing, Ok(T::AskAgain)),
            (S::Pending, E::Refused, Ok(T::Fail)),
            (S::Pending, E::Inconclusive, Ok(T::AskAgain)),
            (S::Pending, E::NeedsAttention, Ok(T::Attention)),
            (S::Pending, E::NotFound, Ok(T::Resend)),
            (S::Succeeded, E::Paid, Ok(T::Unchanged)),
            (S::Succeeded, E::VerifiedSuccess, Ok(T::Unchanged)),
            (
                S::Succeeded,
                E::Processing,
                settled(S::Succeeded, E::Processing),
            ),
            (S::Succeeded, E::Refused, settled(S::Succeeded, E::Refused)),
            (
                S::Succeeded,
                E::Inconclusive,
                settled(S::Succeeded, E::Inconclusive),
            ),
            (
                S::Succeeded,
                E::NeedsAttention,
                settled(S::Succeeded, E::NeedsAttention),
            ),
            (
                S::Succeeded,
                E::NotFound,
                settled(S::Succeeded, E::NotFound),
            ),
            (S::Failed, E::Paid, Ok(T::MoneyLeftTwice)),
            (S::Failed, E::VerifiedSuccess, Ok(T::MoneyLeftTwice)),
            (S::Failed, E::Processing, settled(S::Failed, E::Processing)),
            (S::Failed, E::Refused, Ok(T::Unchanged)),
            (
                S::Failed,
                E::Inconclusive,
                settled(S::Failed, E::Inconclusive),
            ),
            (
                S::Failed,
                E::NeedsAttention,
                settled(S::Failed, E::NeedsAttention),
            ),
            (S::Failed, E::NotFound, settled(S::Failed, E::NotFound)),
        ];
        for (state, event, expected) in table {
            assert_eq!(transition(state, event), expected, "{state} x {event:?}");
        }
        assert_eq!(table.len(), S::ALL.len() * EVENTS.len());
    }

    #[test]
    fn only_a_definitive_refusal_fails_a_pending_refund() {
        for event in EVENTS {
            let next = transition(S::Pending, event).map(|step| step.next_state(S::Pending));
            assert_eq!(
                next == Ok(S::Failed),
                event == E::Refused,
                "PENDING x {event:?} -> {next:?}"
            );
        }
    }

    #[test]
    fn a_settled_refund_never_goes_back_to_pending_or_flips() {
        for state in [S::Succeeded, S::Failed] {
            for event in EVENTS {
                if let Ok(step) = transition(state, event) {
                    assert_eq!(step.next_state(state), state, "{state} x {event:?}");
                }
            }
        }
    }

    #[test]
    fn stored_states_round_trip_and_unknown_text_is_corrupt() {
        for state in S::ALL {
            assert_eq!(RefundState::parse(state.as_str()), Ok(state));
        }
        assert_eq!(
            RefundState::parse("pending"),
            Err(UnknownRefundState("pending".into()))
        );
        assert!(RefundState::parse("").is_err());
    }
}
