//! Fault-injection knobs, settable at any time through the simulator handle or
//! `POST /sandbox/faults`. They model what real gateways do to a webhook receiver: lose
//! notifications, repeat them (also concurrently), delay and reorder them, and (for a forged
//! or corrupted notification) carry a wrong amount or a bad signature. The `refund_*` knobs
//! model what a gateway's refund API does to its caller: be down, answer too late, answer
//! signed but unreadable, end a refund CLOSED or ABNORMAL, refuse a refund it then pays.

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
    /// The next N refund requests and refund queries answer HTTP 503 without executing.
    pub refund_unavailable_next: u32,
    /// The next refund request is executed, but answered only after this many milliseconds
    /// (set it past the client's request timeout: the caller cannot know it paid).
    pub refund_answer_delay_next_ms: u64,
    /// The next refund request is executed and answered signed, but with fields renamed and
    /// (Alipay) a `gmt_refund_pay` that is not a time, (WeChat) no `status`.
    pub refund_garbled_next: bool,
    /// WeChat: the next refund ends with this status (`CLOSED` or `ABNORMAL`) and moves no
    /// money; its refund query keeps answering it.
    pub refund_status_next: Option<String>,
    /// The next refund request is answered with a signed business refusal, yet executed,
    /// and its success notification follows (a gateway that contradicts itself).
    pub refund_refused_but_paid_next: bool,
}

impl Faults {
    /// Clamps the knobs into their bounds.
    pub fn bounded(mut self) -> Self {
        self.duplicate = self.duplicate.min(DUPLICATES_MAX);
        self.delay_ms = self.delay_ms.min(DELAY_MS_MAX);
        self.refund_answer_delay_next_ms = self.refund_answer_delay_next_ms.min(DELAY_MS_MAX);
        self
    }
}

/// The refund-API faults taken by one refund request or refund query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefundFaults {
    /// Answer 503, execute nothing (the other knobs are then left for the next call).
    pub unavailable: bool,
    pub answer_delay_ms: u64,
    pub garbled: bool,
    pub status: Option<String>,
    pub refused_but_paid: bool,
}

/// The faults applied while a notification is built (not at delivery).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildFaults {
    pub wrong_amount: bool,
    pub bad_signature: bool,
}
