//! Fault-injection knobs, settable at any time through the simulator handle or
//! `POST /sandbox/faults`. They model what real gateways do to a webhook receiver: lose
//! notifications, repeat them (also concurrently), delay and reorder them, and (for a forged
//! or corrupted notification) carry a wrong amount or a bad signature.

use serde::{Deserialize, Serialize};

/// Bound on extra copies per notification.
pub const DUPLICATES_MAX: u32 = 20;
/// Bound on the injected delivery delay.
pub const DELAY_MS_MAX: u64 = 60_000;

/// The knobs. Counters and flags are consumed by the notifications they affect;
/// `delay_ms` stays until changed. Unknown JSON fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The next N notifications are never delivered (not even retried).
    pub drop_next_notifications: u32,
    /// The next notification is delivered N extra times, all copies concurrently.
    pub duplicate: u32,
    /// Every delivery waits this long before its first attempt.
    pub delay_ms: u64,
    /// The next two notifications are delivered in reverse order (the first is held until
    /// the second is delivered, or until the hold time of the delivery policy passes).
    pub reorder: bool,
    /// The next notification carries an amount one fen higher, correctly signed.
    pub wrong_amount_next: bool,
    /// The next notification carries a signature that does not verify.
    pub bad_signature_next: bool,
}

impl Faults {
    /// Clamps the knobs into their bounds.
    pub fn bounded(mut self) -> Self {
        self.duplicate = self.duplicate.min(DUPLICATES_MAX);
        self.delay_ms = self.delay_ms.min(DELAY_MS_MAX);
        self
    }
}

/// The faults applied while a notification is built (not at delivery).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildFaults {
    pub wrong_amount: bool,
    pub bad_signature: bool,
}
