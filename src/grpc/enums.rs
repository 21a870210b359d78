//! The proto enums of the closed sets (channels, classes, statuses, kinds) and their one mapping
//! each to the domain enum, or to the text the use cases still take and the rows still store
//! where the domain has no enum yet. Each mapping is a small exhaustive function, so a value
//! added on either side fails to compile until it is mapped here.
//!
//! Requests: `..._UNSPECIFIED` and a number this build does not know are INVALID_ARGUMENT naming
//! the field ([`required`]); a field whose proto comment gives UNSPECIFIED a meaning (no filter,
//! a default) reads it as `None` ([`optional`]). Responses: a stored text none of ours is a
//! corrupt row, an internal error, never a default.

use super::pb;
use crate::app::{AppError, AppResult};
use crate::domain::bill_status::BillStatus;
use crate::domain::cashier::CloseOutcome;
use crate::domain::channel::PaymentChannel;
use crate::domain::discrepancy::{Action, Class, State};
use crate::domain::payment::PaymentStatus;
use crate::domain::rating::LineKind;
use crate::domain::reading::ReadingSource;
use crate::domain::reconcile::Movement;
use crate::domain::refund::RefundState;
use crate::domain::tariff::{CustomerClass, PriceChange};

/// A request's enum field read as `None` for UNSPECIFIED; an unknown number is INVALID_ARGUMENT.
pub fn optional<E, T>(field: &str, raw: i32, map: fn(E) -> Option<T>) -> AppResult<Option<T>>
where
    E: TryFrom<i32>,
{
    let value = E::try_from(raw)
        .map_err(|_| AppError::invalid(field, format!("{raw} is not a known value")))?;
    Ok(map(value))
}

/// A request's enum field that must be set: UNSPECIFIED and unknown numbers are
/// INVALID_ARGUMENT naming the field.
pub fn required<E, T>(field: &str, raw: i32, map: fn(E) -> Option<T>) -> AppResult<T>
where
    E: TryFrom<i32>,
{
    optional(field, raw, map)?
        .ok_or_else(|| AppError::invalid(field, "is required (UNSPECIFIED is not a value)"))
}

/// A stored or computed text that is none of the enum's values.
fn corrupt(what: &str, text: &str) -> AppError {
    crate::db::corrupt(what, format!("unknown value {text:?}")).into()
}

// ------------------------------------------------------------------ channel

pub fn channel_from_proto(value: pb::Channel) -> Option<PaymentChannel> {
    match value {
        pb::Channel::Unspecified => None,
        pb::Channel::Alipay => Some(PaymentChannel::Alipay),
        pb::Channel::Wechat => Some(PaymentChannel::Wechat),
        pb::Channel::Counter => Some(PaymentChannel::Counter),
    }
}

pub fn channel_to_proto(channel: PaymentChannel) -> pb::Channel {
    match channel {
        PaymentChannel::Alipay => pb::Channel::Alipay,
        PaymentChannel::Wechat => pb::Channel::Wechat,
        PaymentChannel::Counter => pb::Channel::Counter,
    }
}

/// A stored channel text.
pub fn channel_stored(text: &str) -> AppResult<i32> {
    let channel = PaymentChannel::parse(text).map_err(|_| corrupt("channel", text))?;
    Ok(channel_to_proto(channel).into())
}

// ------------------------------------------------------------------ customer class

pub fn customer_class_from_proto(value: pb::CustomerClass) -> Option<CustomerClass> {
    match value {
        pb::CustomerClass::Unspecified => None,
        pb::CustomerClass::Residential => Some(CustomerClass::Residential),
        pb::CustomerClass::NonResidential => Some(CustomerClass::NonResidential),
        pb::CustomerClass::Special => Some(CustomerClass::Special),
    }
}

pub fn customer_class_to_proto(class: CustomerClass) -> pb::CustomerClass {
    match class {
        CustomerClass::Residential => pb::CustomerClass::Residential,
        CustomerClass::NonResidential => pb::CustomerClass::NonResidential,
        CustomerClass::Special => pb::CustomerClass::Special,
    }
}

/// A stored customer class text.
pub fn customer_class_stored(text: &str) -> AppResult<i32> {
    let class = CustomerClass::parse(text).map_err(|_| corrupt("customer class", text))?;
    Ok(customer_class_to_proto(class).into())
}

// ------------------------------------------------------------------ account status

/// A stored account status text (the app's `ACTIVE` is the only one today).
pub fn account_status_stored(text: &str) -> AppResult<i32> {
    match text {
        crate::app::accounts::ACTIVE => Ok(pb::AccountStatus::Active.into()),
        other => Err(corrupt("account status", other)),
    }
}

// ------------------------------------------------------------------ price change

pub fn price_change_from_proto(value: pb::PriceChange) -> Option<PriceChange> {
    match value {
        pb::PriceChange::Unspecified => None,
        pb::PriceChange::ReadingDate => Some(PriceChange::ReadingDate),
        pb::PriceChange::SplitByDays => Some(PriceChange::SplitByDays),
    }
}

pub fn price_change_to_proto(change: PriceChange) -> pb::PriceChange {
    match change {
        PriceChange::ReadingDate => pb::PriceChange::ReadingDate,
        PriceChange::SplitByDays => pb::PriceChange::SplitByDays,
    }
}

// ------------------------------------------------------------------ reading source

pub fn reading_source_from_proto(value: pb::ReadingSource) -> Option<ReadingSource> {
    match value {
        pb::ReadingSource::Unspecified => None,
        pb::ReadingSource::Actual => Some(ReadingSource::Actual),
        pb::ReadingSource::SmartMeter => Some(ReadingSource::SmartMeter),
        pb::ReadingSource::Estimated => Some(ReadingSource::Estimated),
    }
}

pub fn reading_source_to_proto(source: ReadingSource) -> pb::ReadingSource {
    match source {
        ReadingSource::Actual => pb::ReadingSource::Actual,
        ReadingSource::SmartMeter => pb::ReadingSource::SmartMeter,
        ReadingSource::Estimated => pb::ReadingSource::Estimated,
    }
}

/// A stored reading source text.
pub fn reading_source_stored(text: &str) -> AppResult<i32> {
    let source = ReadingSource::parse(text).map_err(|_| corrupt("reading source", text))?;
    Ok(reading_source_to_proto(source).into())
}

// ------------------------------------------------------------------ bill status

/// The text `list_bills` filters on and the bills table stores.
pub fn bill_status_from_proto(value: pb::BillStatus) -> Option<&'static str> {
    let status = match value {
        pb::BillStatus::Unspecified => return None,
        pb::BillStatus::Unpaid => BillStatus::Unpaid,
        pb::BillStatus::PartiallyPaid => BillStatus::PartiallyPaid,
        pb::BillStatus::Paid => BillStatus::Paid,
        pb::BillStatus::Void => BillStatus::Void,
    };
    Some(status.as_str())
}

pub fn bill_status_stored(text: &str) -> AppResult<i32> {
    let status = match BillStatus::parse(text).map_err(|_| corrupt("bill status", text))? {
        BillStatus::Unpaid => pb::BillStatus::Unpaid,
        BillStatus::PartiallyPaid => pb::BillStatus::PartiallyPaid,
        BillStatus::Paid => pb::BillStatus::Paid,
        BillStatus::Void => pb::BillStatus::Void,
    };
    Ok(status.into())
}

// ------------------------------------------------------------------ bill line kind

/// The kind and the tier number (0 unless a water tier) of a line kind.
pub fn line_kind_to_proto(kind: LineKind) -> (pb::BillLineKind, u32) {
    match kind {
        LineKind::WaterTier(tier) => (pb::BillLineKind::Water, u32::from(tier)),
        LineKind::Sewage => (pb::BillLineKind::Sewage, 0),
        LineKind::ResourceTax => (pb::BillLineKind::ResourceTax, 0),
        LineKind::LateFee => (pb::BillLineKind::LateFee, 0),
        LineKind::Adjustment => (pb::BillLineKind::Adjustment, 0),
    }
}

/// A stored line kind text, as (kind, tier).
pub fn line_kind_stored(text: &str) -> AppResult<(i32, u32)> {
    let kind = LineKind::parse(text).map_err(|_| corrupt("bill line kind", text))?;
    let (kind, tier) = line_kind_to_proto(kind);
    Ok((kind.into(), tier))
}

// ------------------------------------------------------------------ payment and refund status

pub fn payment_status_to_proto(status: PaymentStatus) -> pb::PaymentStatus {
    match status {
        PaymentStatus::Pending => pb::PaymentStatus::Pending,
        PaymentStatus::Succeeded => pb::PaymentStatus::Succeeded,
        PaymentStatus::Closed => pb::PaymentStatus::Closed,
        PaymentStatus::PartiallyRefunded => pb::PaymentStatus::PartiallyRefunded,
        PaymentStatus::Refunded => pb::PaymentStatus::Refunded,
        PaymentStatus::Reversed => pb::PaymentStatus::Reversed,
    }
}

pub fn payment_status_stored(text: &str) -> AppResult<i32> {
    let status = PaymentStatus::parse(text).map_err(|_| corrupt("payment status", text))?;
    Ok(payment_status_to_proto(status).into())
}

pub fn refund_status_to_proto(state: RefundState) -> pb::RefundStatus {
    match state {
        RefundState::Pending => pb::RefundStatus::Pending,
        RefundState::Succeeded => pb::RefundStatus::Succeeded,
        RefundState::Failed => pb::RefundStatus::Failed,
    }
}

pub fn refund_status_stored(text: &str) -> AppResult<i32> {
    let state = RefundState::parse(text).map_err(|_| corrupt("refund status", text))?;
    Ok(refund_status_to_proto(state).into())
}

// ------------------------------------------------------------------ discrepancies

/// The class text the discrepancies table stores (`domain::discrepancy::Class`).
pub fn discrepancy_class_from_proto(value: pb::DiscrepancyClass) -> Option<&'static str> {
    let class = match value {
        pb::DiscrepancyClass::Unspecified => return None,
        pb::DiscrepancyClass::GatewayOnly => Class::GatewayOnly,
        pb::DiscrepancyClass::LedgerOnly => Class::LedgerOnly,
        pb::DiscrepancyClass::AmountMismatch => Class::AmountMismatch,
        pb::DiscrepancyClass::StatusMismatch => Class::StatusMismatch,
        pb::DiscrepancyClass::Duplicate => Class::Duplicate,
        pb::DiscrepancyClass::PaidAfterReversal => Class::PaidAfterReversal,
    };
    Some(class.as_str())
}

pub fn discrepancy_class_stored(text: &str) -> AppResult<i32> {
    let class = match Class::parse(text).map_err(|_| corrupt("discrepancy class", text))? {
        Class::GatewayOnly => pb::DiscrepancyClass::GatewayOnly,
        Class::LedgerOnly => pb::DiscrepancyClass::LedgerOnly,
        Class::AmountMismatch => pb::DiscrepancyClass::AmountMismatch,
        Class::StatusMismatch => pb::DiscrepancyClass::StatusMismatch,
        Class::Duplicate => pb::DiscrepancyClass::Duplicate,
        Class::PaidAfterReversal => pb::DiscrepancyClass::PaidAfterReversal,
    };
    Ok(class.into())
}

/// The state text the discrepancies table stores (`domain::discrepancy::State`).
pub fn discrepancy_state_from_proto(value: pb::DiscrepancyState) -> Option<&'static str> {
    let state = match value {
        pb::DiscrepancyState::Unspecified => return None,
        pb::DiscrepancyState::Open => State::Open,
        pb::DiscrepancyState::Held => State::Held,
        pb::DiscrepancyState::AutoResolved => State::AutoResolved,
        pb::DiscrepancyState::Resolved => State::Resolved,
        pb::DiscrepancyState::Resolving => State::Resolving,
    };
    Some(state.as_str())
}

pub fn discrepancy_state_stored(text: &str) -> AppResult<i32> {
    let state = match State::parse(text).map_err(|_| corrupt("discrepancy state", text))? {
        State::Open => pb::DiscrepancyState::Open,
        State::Held => pb::DiscrepancyState::Held,
        State::AutoResolved => pb::DiscrepancyState::AutoResolved,
        State::Resolved => pb::DiscrepancyState::Resolved,
        State::Resolving => pb::DiscrepancyState::Resolving,
    };
    Ok(state.into())
}

pub fn movement_stored(text: &str) -> AppResult<i32> {
    let movement = match Movement::parse(text).map_err(|_| corrupt("discrepancy movement", text))? {
        Movement::Payment => pb::Movement::Payment,
        Movement::Refund => pb::Movement::Refund,
    };
    Ok(movement.into())
}

pub fn action_from_proto(value: pb::DiscrepancyAction) -> Option<Action> {
    match value {
        pb::DiscrepancyAction::Unspecified => None,
        pb::DiscrepancyAction::Post => Some(Action::Post),
        pb::DiscrepancyAction::Reverse => Some(Action::Reverse),
        pb::DiscrepancyAction::Refund => Some(Action::Refund),
        pb::DiscrepancyAction::WriteOff => Some(Action::WriteOff),
        pb::DiscrepancyAction::Explain => Some(Action::Explain),
    }
}

pub fn action_to_proto(action: Action) -> pb::DiscrepancyAction {
    match action {
        Action::Post => pb::DiscrepancyAction::Post,
        Action::Reverse => pb::DiscrepancyAction::Reverse,
        Action::Refund => pb::DiscrepancyAction::Refund,
        Action::WriteOff => pb::DiscrepancyAction::WriteOff,
        Action::Explain => pb::DiscrepancyAction::Explain,
    }
}

/// A stored resolution action; none (OPEN or HELD) is UNSPECIFIED.
pub fn action_stored(text: Option<&str>) -> AppResult<i32> {
    let Some(text) = text else {
        return Ok(pb::DiscrepancyAction::Unspecified.into());
    };
    let action = Action::parse(text).map_err(|_| corrupt("discrepancy action", text))?;
    Ok(action_to_proto(action).into())
}

// ------------------------------------------------------------------ runs and closes

pub fn run_status(open_count: u64) -> pb::ReconciliationRunStatus {
    if open_count == 0 {
        pb::ReconciliationRunStatus::Balanced
    } else {
        pb::ReconciliationRunStatus::OpenExceptions
    }
}

pub fn close_outcome(outcome: CloseOutcome) -> pb::CashierCloseOutcome {
    match outcome {
        CloseOutcome::Over => pb::CashierCloseOutcome::Over,
        CloseOutcome::Short => pb::CashierCloseOutcome::Short,
        CloseOutcome::Balanced => pb::CashierCloseOutcome::Balanced,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_and_unknown_numbers_are_refused_naming_the_field() {
        let unspecified = required("channel", 0, channel_from_proto).unwrap_err();
        assert!(
            unspecified.to_string().starts_with("channel: "),
            "{unspecified}"
        );
        let unknown = required("channel", 999, channel_from_proto).unwrap_err();
        assert!(unknown.to_string().contains("999"), "{unknown}");
        assert!(matches!(
            optional("status", 999, bill_status_from_proto),
            Err(AppError::InvalidArgument(_))
        ));
        assert_eq!(optional("status", 0, bill_status_from_proto).unwrap(), None);
    }

    #[test]
    fn every_stored_text_maps_back_to_the_value_it_came_from() {
        for status in PaymentStatus::ALL {
            let wire = payment_status_stored(status.as_str()).unwrap();
            assert_eq!(wire, i32::from(payment_status_to_proto(status)));
        }
        for state in RefundState::ALL {
            assert!(refund_status_stored(state.as_str()).is_ok());
        }
        for value in [1, 2, 3, 4] {
            let text = required("status", value, bill_status_from_proto).unwrap();
            assert_eq!(bill_status_stored(text).unwrap(), value);
        }
        for value in [1, 2, 3, 4, 5, 6] {
            let text = required("class", value, discrepancy_class_from_proto).unwrap();
            assert_eq!(discrepancy_class_stored(text).unwrap(), value);
        }
        for value in [1, 2, 3, 4, 5] {
            let text = required("state", value, discrepancy_state_from_proto).unwrap();
            assert_eq!(discrepancy_state_stored(text).unwrap(), value);
        }
        for value in [1, 2, 3] {
            let source = required("source", value, reading_source_from_proto).unwrap();
            assert_eq!(reading_source_stored(source.as_str()).unwrap(), value);
        }
        for value in [1, 2, 3, 4, 5] {
            let action = required("action", value, action_from_proto).unwrap();
            assert_eq!(action_stored(Some(action.as_str())).unwrap(), value);
        }
    }

    #[test]
    fn a_water_tier_line_carries_its_tier_number() {
        assert_eq!(
            line_kind_stored("WATER_TIER_2").unwrap(),
            (pb::BillLineKind::Water.into(), 2)
        );
        assert_eq!(
            line_kind_stored("SEWAGE").unwrap(),
            (pb::BillLineKind::Sewage.into(), 0)
        );
    }

    #[test]
    fn an_unknown_stored_text_is_an_internal_error_never_a_default() {
        for result in [
            bill_status_stored("PAYED"),
            payment_status_stored("DONE"),
            discrepancy_state_stored(""),
            channel_stored("CASH"),
            reading_source_stored("MANUAL"),
            line_kind_stored("WATER_TIER_13").map(|(kind, _)| kind),
        ] {
            assert!(matches!(result, Err(AppError::Database(_))), "{result:?}");
        }
    }
}
