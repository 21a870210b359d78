//! The discrepancy aggregate: what finance is asked to look at (a reconciliation item, or a
//! payment that arrived for an order finance had already reversed), the state it is in, and
//! the one transition function every change of state goes through.
//!
//! The values are closed sets with one stored (and wire) name each; an unknown stored name
//! is [`Corrupt`], never read as a default. Resolving is claim-first: a resolution first moves
//! the item out of OPEN/HELD (so of two concurrent resolutions exactly one proceeds), and only
//! then does anything to money. A REFUND through the gateway stays RESOLVING until the gateway
//! is sure (then RESOLVED), or goes back to OPEN if the gateway refused before any money moved;
//! everything else (POST, REVERSE, a recorded decision) claims and acts in one transaction, so
//! it goes from OPEN or HELD straight to RESOLVED. Pure: no I/O, no clock.

use std::fmt;

use super::reconcile::{self, Movement};

/// A stored name that is none of the values of its set: the row is corrupt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not a known value")]
pub struct Corrupt {
    pub what: &'static str,
    pub value: String,
}

fn corrupt(what: &'static str, value: &str) -> Corrupt {
    Corrupt {
        what,
        value: value.to_owned(),
    }
}

/// What kind of difference the item records. The first five come from matching a statement;
/// `PaidAfterReversal` is opened by settlement, outside any run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    GatewayOnly,
    LedgerOnly,
    AmountMismatch,
    StatusMismatch,
    Duplicate,
    /// The gateway says an order was paid after finance reversed it: the money is in suspense.
    PaidAfterReversal,
}

impl Class {
    pub const ALL: [Class; 6] = [
        Class::GatewayOnly,
        Class::LedgerOnly,
        Class::AmountMismatch,
        Class::StatusMismatch,
        Class::Duplicate,
        Class::PaidAfterReversal,
    ];

    /// The class of a matcher's item; a matched pair is not a discrepancy.
    pub fn of_match(class: reconcile::Class) -> Option<Class> {
        match class {
            reconcile::Class::Matched => None,
            reconcile::Class::GatewayOnly => Some(Class::GatewayOnly),
            reconcile::Class::LedgerOnly => Some(Class::LedgerOnly),
            reconcile::Class::AmountMismatch => Some(Class::AmountMismatch),
            reconcile::Class::StatusMismatch => Some(Class::StatusMismatch),
            reconcile::Class::Duplicate => Some(Class::Duplicate),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::GatewayOnly => "GATEWAY_ONLY",
            Class::LedgerOnly => "LEDGER_ONLY",
            Class::AmountMismatch => "AMOUNT_MISMATCH",
            Class::StatusMismatch => "STATUS_MISMATCH",
            Class::Duplicate => "DUPLICATE",
            Class::PaidAfterReversal => "PAID_AFTER_REVERSAL",
        }
    }

    pub fn parse(text: &str) -> Result<Class, Corrupt> {
        Class::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| corrupt("discrepancy class", text))
    }
}

/// Where an item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Open,
    /// Near midnight: waiting for the adjacent day's statement.
    Held,
    /// Claimed by a REFUND resolution whose gateway refund is not yet confirmed.
    Resolving,
    /// Finance resolved it.
    Resolved,
    /// The service resolved it (a posted repair, the adjacent day's statement).
    AutoResolved,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Open,
        State::Held,
        State::Resolving,
        State::Resolved,
        State::AutoResolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "OPEN",
            State::Held => "HELD",
            State::Resolving => "RESOLVING",
            State::Resolved => "RESOLVED",
            State::AutoResolved => "AUTO_RESOLVED",
        }
    }

    pub fn parse(text: &str) -> Result<State, Corrupt> {
        State::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| corrupt("discrepancy state", text))
    }

    /// Whether finance still has to act: OPEN and HELD wait for a decision, RESOLVING for its
    /// refund to finish.
    pub fn needs_finance(self) -> bool {
        matches!(self, State::Open | State::Held | State::Resolving)
    }
}

impl From<reconcile::State> for State {
    fn from(state: reconcile::State) -> State {
        match state {
            reconcile::State::Open => State::Open,
            reconcile::State::Held => State::Held,
            reconcile::State::AutoResolved => State::AutoResolved,
        }
    }
}

impl Movement {
    pub fn as_str(self) -> &'static str {
        match self {
            Movement::Payment => "PAYMENT",
            Movement::Refund => "REFUND",
        }
    }

    pub fn parse(text: &str) -> Result<Movement, Corrupt> {
        match text {
            "PAYMENT" => Ok(Movement::Payment),
            "REFUND" => Ok(Movement::Refund),
            other => Err(corrupt("movement", other)),
        }
    }
}

/// What finance can do about an item. POST posts a GATEWAY_ONLY payment the gateway
/// confirms; REVERSE undoes a LEDGER_ONLY payment the gateway says it never took; REFUND
/// gives a DUPLICATE payment back through its gateway (other money at the gateway: recorded
/// for a refund by hand); WRITE_OFF and EXPLAIN record the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Post,
    Reverse,
    Refund,
    WriteOff,
    Explain,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Post,
        Action::Reverse,
        Action::Refund,
        Action::WriteOff,
        Action::Explain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Post => "POST",
            Action::Reverse => "REVERSE",
            Action::Refund => "REFUND",
            Action::WriteOff => "WRITE_OFF",
            Action::Explain => "EXPLAIN",
        }
    }

    /// A stored action; an unknown one is corrupt (a caller's text is parsed by the app,
    /// which answers INVALID_ARGUMENT).
    pub fn parse(text: &str) -> Result<Action, Corrupt> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == text)
            .ok_or_else(|| corrupt("discrepancy action", text))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an action does to money, once claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Settle the payment the gateway confirms (in the claiming transaction).
    Post,
    /// Reverse the payment the gateway says it never took (in the claiming transaction).
    Reverse,
    /// Refund through the gateway, after the claim is committed.
    GatewayRefund,
    /// Nothing moves here: the decision is recorded (a WRITE_OFF, an EXPLAIN, or a refund
    /// finance makes by hand in the gateway's merchant portal).
    Record,
}

/// What an action needs of the item, by class and movement.
pub fn effect_of(action: Action, class: Class, movement: Movement) -> Result<Effect, Refusal> {
    let not_applicable = Refusal::ActionNotApplicable {
        action,
        class,
        movement,
    };
    match (action, class, movement) {
        (Action::Post, Class::GatewayOnly, Movement::Payment) => Ok(Effect::Post),
        (Action::Reverse, Class::LedgerOnly, Movement::Payment) => Ok(Effect::Reverse),
        (Action::Post | Action::Reverse, _, _) => Err(not_applicable),
        (Action::Refund, Class::Duplicate, Movement::Payment) => Ok(Effect::GatewayRefund),
        // No money at the gateway to give back.
        (Action::Refund, Class::LedgerOnly, _) => Err(not_applicable),
        (Action::Refund, _, _) | (Action::WriteOff | Action::Explain, _, _) => Ok(Effect::Record),
    }
}

/// The item as the transition function reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub state: State,
    pub class: Class,
    pub movement: Movement,
    /// The action recorded on the item (the one in progress while RESOLVING).
    pub action: Option<Action>,
}

/// Everything that changes an item's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Finance asks for `action`.
    Claim(Action),
    /// The claimed REFUND's gateway refund succeeded.
    RefundConfirmed,
    /// The claimed REFUND was refused before any money moved: the item is open again.
    RefundRefused,
    /// The service repaired the item while recording its run: it posted the payment the
    /// gateway confirmed, or the payment went to suspense under an item of its own.
    Repaired,
    /// The adjacent day's statement has the HELD item's counterpart.
    HeldFound,
    /// The adjacent day's statement does not have it either.
    HeldMissing,
}

/// Why an event does not apply to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the discrepancy is already {}", .state.as_str())]
    AlreadyResolved { state: State },
    #[error("a {action} resolution of the discrepancy is in progress; retry it with {action}")]
    InProgress { action: Action },
    #[error("{action} does not apply to a {} {}", .class.as_str(), .movement.as_str())]
    ActionNotApplicable {
        action: Action,
        class: Class,
        movement: Movement,
    },
    #[error("the discrepancy is {}, not {}", .state.as_str(), .expected.as_str())]
    NotInState { state: State, expected: State },
}

/// What a claim leads to: the state after it and what it does to money. `continues` says the
/// claim resumes a REFUND already in progress (nothing new is requested: the same refund is
/// asked after again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub state: State,
    pub effect: Option<Effect>,
    pub continues: bool,
}

/// The discrepancy's one transition function.
pub fn transition(item: Item, event: Event) -> Result<Step, Refusal> {
    let to = |state| Step {
        state,
        effect: None,
        continues: false,
    };
    let expect = |expected: State, then: State| {
        if item.state == expected {
            Ok(to(then))
        } else {
            Err(Refusal::NotInState {
                state: item.state,
                expected,
            })
        }
    };
    match event {
        Event::Claim(action) => claim(item, action),
        Event::RefundConfirmed => expect(State::Resolving, State::Resolved),
        Event::RefundRefused => expect(State::Resolving, State::Open),
        Event::Repaired => expect(State::Open, State::AutoResolved),
        Event::HeldFound => expect(State::Held, State::AutoResolved),
        Event::HeldMissing => expect(State::Held, State::Open),
    }
}

fn claim(item: Item, action: Action) -> Result<Step, Refusal> {
    match item.state {
        State::Resolved | State::AutoResolved => {
            return Err(Refusal::AlreadyResolved { state: item.state });
        }
        State::Resolving => {
            let in_progress = item.action.unwrap_or(Action::Refund);
            if in_progress != action {
                return Err(Refusal::InProgress {
                    action: in_progress,
                });
            }
            return Ok(Step {
                state: State::Resolving,
                effect: Some(Effect::GatewayRefund),
                continues: true,
            });
        }
        State::Open | State::Held => {}
    }
    let effect = effect_of(action, item.class, item.movement)?;
    let state = match effect {
        Effect::GatewayRefund => State::Resolving,
        Effect::Post | Effect::Reverse | Effect::Record => State::Resolved,
    };
    Ok(Step {
        state,
        effect: Some(effect),
        continues: false,
    })
}

#[cfg(test)]
#[path = "discrepancy_tests.rs"]
mod tests;
