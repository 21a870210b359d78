//! The discrepancy transition table, row by row, and the stored names round trip.

use super::*;

fn item(state: State, class: Class) -> Item {
    Item {
        state,
        class,
        movement: Movement::Payment,
        action: None,
    }
}

fn step(state: State, effect: Effect) -> Result<Step, Refusal> {
    Ok(Step {
        state,
        effect: Some(effect),
        continues: false,
    })
}

#[test]
fn every_stored_name_reads_back_as_itself_and_an_unknown_one_is_corrupt() {
    for class in Class::ALL {
        assert_eq!(Class::parse(class.as_str()), Ok(class));
    }
    for state in State::ALL {
        assert_eq!(State::parse(state.as_str()), Ok(state));
    }
    for action in Action::ALL {
        assert_eq!(Action::parse(action.as_str()), Ok(action));
    }
    for movement in [Movement::Payment, Movement::Refund] {
        assert_eq!(Movement::parse(movement.as_str()), Ok(movement));
    }
    assert!(State::parse("open").is_err());
    assert!(State::parse("").is_err());
    assert!(Class::parse("MATCHED").is_err());
    assert!(Action::parse("REOPEN").is_err());
    assert!(Movement::parse("CHARGEBACK").is_err());
}

#[test]
fn the_claim_table_gives_each_action_its_effect_and_state() {
    use Action::*;
    use Class::*;
    use Effect::{GatewayRefund, Record};
    let resolved = State::Resolved;
    let table: &[(Action, Class, Result<Step, Refusal>)] = &[
        (Post, GatewayOnly, step(resolved, Effect::Post)),
        (Reverse, LedgerOnly, step(resolved, Effect::Reverse)),
        (Refund, Duplicate, step(State::Resolving, GatewayRefund)),
        (Refund, GatewayOnly, step(resolved, Record)),
        (Refund, AmountMismatch, step(resolved, Record)),
        (Refund, StatusMismatch, step(resolved, Record)),
        (Refund, PaidAfterReversal, step(resolved, Record)),
        (WriteOff, LedgerOnly, step(resolved, Record)),
        (Explain, PaidAfterReversal, step(resolved, Record)),
    ];
    for &(action, class, expected) in table {
        for state in [State::Open, State::Held] {
            assert_eq!(
                transition(item(state, class), Event::Claim(action)),
                expected,
                "{action} on {state:?} {class:?}"
            );
        }
    }
}

#[test]
fn an_action_that_does_not_fit_the_class_is_refused_naming_both() {
    let refusals = [
        (Action::Post, Class::LedgerOnly),
        (Action::Post, Class::Duplicate),
        (Action::Post, Class::PaidAfterReversal),
        (Action::Reverse, Class::GatewayOnly),
        (Action::Reverse, Class::Duplicate),
        (Action::Reverse, Class::PaidAfterReversal),
        (Action::Refund, Class::LedgerOnly),
    ];
    for (action, class) in refusals {
        assert_eq!(
            transition(item(State::Open, class), Event::Claim(action)),
            Err(Refusal::ActionNotApplicable {
                action,
                class,
                movement: Movement::Payment,
            })
        );
    }
    let refund_row = Item {
        movement: Movement::Refund,
        ..item(State::Open, Class::Duplicate)
    };
    assert_eq!(
        transition(refund_row, Event::Claim(Action::Post)),
        Err(Refusal::ActionNotApplicable {
            action: Action::Post,
            class: Class::Duplicate,
            movement: Movement::Refund,
        })
    );
    // A duplicated refund row is not a payment to give back: the decision is recorded.
    assert_eq!(
        transition(refund_row, Event::Claim(Action::Refund)),
        step(State::Resolved, Effect::Record)
    );
}

#[test]
fn a_resolved_item_refuses_every_claim() {
    for state in [State::Resolved, State::AutoResolved] {
        for action in Action::ALL {
            assert_eq!(
                transition(item(state, Class::Duplicate), Event::Claim(action)),
                Err(Refusal::AlreadyResolved { state })
            );
        }
    }
}

#[test]
fn a_refund_in_progress_is_continued_by_a_refund_and_blocks_anything_else() {
    let resolving = Item {
        action: Some(Action::Refund),
        ..item(State::Resolving, Class::Duplicate)
    };
    assert_eq!(
        transition(resolving, Event::Claim(Action::Refund)),
        Ok(Step {
            state: State::Resolving,
            effect: Some(Effect::GatewayRefund),
            continues: true,
        })
    );
    for action in [
        Action::Post,
        Action::Reverse,
        Action::WriteOff,
        Action::Explain,
    ] {
        assert_eq!(
            transition(resolving, Event::Claim(action)),
            Err(Refusal::InProgress {
                action: Action::Refund
            })
        );
    }
}

#[test]
fn the_service_events_move_only_from_their_own_state() {
    let table = [
        (Event::RefundConfirmed, State::Resolving, State::Resolved),
        (Event::RefundRefused, State::Resolving, State::Open),
        (Event::Repaired, State::Open, State::AutoResolved),
        (Event::HeldFound, State::Held, State::AutoResolved),
        (Event::HeldMissing, State::Held, State::Open),
    ];
    for (event, from, to) in table {
        for state in State::ALL {
            let got = transition(item(state, Class::Duplicate), event).map(|s| s.state);
            if state == from {
                assert_eq!(got, Ok(to), "{event:?} from {state:?}");
            } else {
                assert_eq!(
                    got,
                    Err(Refusal::NotInState {
                        state,
                        expected: from
                    }),
                    "{event:?} from {state:?}"
                );
            }
        }
    }
}

#[test]
fn only_items_still_waiting_need_finance() {
    let waiting: Vec<State> = State::ALL
        .into_iter()
        .filter(|s| s.needs_finance())
        .collect();
    assert_eq!(waiting, [State::Open, State::Held, State::Resolving]);
}
