//! Notification delivery as the gateways do it: POST to the order's `notify_url`, retry a
//! bounded number of times until the receiver acknowledges (`success` for Alipay, HTTP
//! 200/204 for WeChat), with the delivery-time faults (drop, duplicate, delay, reorder)
//! applied. Deliveries run on spawned tasks; [`DeliveryRecord`]s tell tests what happened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::faults::{BuildFaults, Faults, RefundFaults};

/// Bound on kept delivery records; the oldest are forgotten first.
pub const DELIVERY_RECORDS_MAX: usize = 10_000;

/// How notifications are retried. The real gateways retry for about a day; the defaults
/// here are short so a local run settles quickly, and tests shorten them further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Attempts per notification, including the first.
    pub attempts_max: u32,
    /// Pause between attempts.
    pub retry_delay_ms: u64,
    /// Time a receiver has to answer one attempt (WeChat asks for 5 s).
    pub attempt_timeout_ms: u64,
    /// How long a `reorder`-held notification waits for its successor.
    pub reorder_hold_ms: u64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            attempts_max: 5,
            retry_delay_ms: 1_000,
            attempt_timeout_ms: 5_000,
            reorder_hold_ms: 2_000,
        }
    }
}

impl DeliveryPolicy {
    /// Fast retries for tests.
    pub fn for_tests() -> Self {
        Self {
            attempts_max: 5,
            retry_delay_ms: 20,
            attempt_timeout_ms: 2_000,
            reorder_hold_ms: 1_000,
        }
    }
}

/// What counts as an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// 2xx with the body exactly `success`.
    AlipaySuccess,
    /// HTTP 200 or 204.
    WechatStatus,
}

/// One notification ready to send.
#[derive(Debug, Clone)]
pub struct Notification {
    pub url: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub ack: Ack,
    /// For records and logs, e.g. `TRADE_SUCCESS WB1`.
    pub label: String,
}

/// What happened to one copy of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub label: String,
    pub url: String,
    /// 0 when dropped by a fault.
    pub attempts: u32,
    pub acked: bool,
    pub dropped: bool,
}

enum Plan {
    Drop,
    Send { copies: u32, hold: bool },
}

/// The delivery machinery of one simulator.
pub struct Deliverer {
    http: reqwest::Client,
    policy: DeliveryPolicy,
    faults: Mutex<Faults>,
    held: Mutex<Option<(u64, Notification, u32)>>,
    hold_seq: AtomicU64,
    records: Mutex<Vec<DeliveryRecord>>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a simulator lock leaves plain data behind; keep serving.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Deliverer {
    pub fn new(policy: DeliveryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(policy.attempt_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            http,
            policy,
            faults: Mutex::new(Faults::default()),
            held: Mutex::new(None),
            hold_seq: AtomicU64::new(0),
            records: Mutex::new(Vec::new()),
        }
    }

    pub fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = faults.bounded();
    }

    /// Consumes the build-time faults for the notification about to be built.
    pub fn take_build_faults(&self) -> BuildFaults {
        let mut faults = lock(&self.faults);
        BuildFaults {
            wrong_amount: std::mem::take(&mut faults.wrong_amount_next),
            bad_signature: std::mem::take(&mut faults.bad_signature_next),
        }
    }

    /// Consumes the refund-API faults for one call: a refund request (`request`) takes them
    /// all, a refund query only the 503s.
    pub fn take_refund_faults(&self, request: bool) -> RefundFaults {
        let mut faults = lock(&self.faults);
        if faults.refund_unavailable_next > 0 {
            faults.refund_unavailable_next -= 1;
            return RefundFaults {
                unavailable: true,
                ..RefundFaults::default()
            };
        }
        if !request {
            return RefundFaults::default();
        }
        RefundFaults {
            unavailable: false,
            answer_delay_ms: std::mem::take(&mut faults.refund_answer_delay_next_ms),
            garbled: std::mem::take(&mut faults.refund_garbled_next),
            status: faults.refund_status_next.take(),
            refused_but_paid: std::mem::take(&mut faults.refund_refused_but_paid_next),
        }
    }

    pub fn records(&self) -> Vec<DeliveryRecord> {
        lock(&self.records).clone()
    }

    /// Sends `notification` in the background, applying the delivery-time faults.
    pub fn dispatch(self: &Arc<Self>, notification: Notification) {
        let plan = {
            let mut faults = lock(&self.faults);
            if faults.drop_next_notifications > 0 {
                faults.drop_next_notifications -= 1;
                Plan::Drop
            } else {
                Plan::Send {
                    copies: 1 + std::mem::take(&mut faults.duplicate),
                    hold: std::mem::take(&mut faults.reorder),
                }
            }
        };
        match plan {
            Plan::Drop => self.record(DeliveryRecord {
                label: notification.label,
                url: notification.url,
                attempts: 0,
                acked: false,
                dropped: true,
            }),
            Plan::Send { copies, hold: true } => self.hold(notification, copies),
            Plan::Send {
                copies,
                hold: false,
            } => {
                let earlier = lock(&self.held).take();
                let this = Arc::clone(self);
                tokio::spawn(async move {
                    this.deliver_copies(notification, copies).await;
                    if let Some((_, held, held_copies)) = earlier {
                        this.deliver_copies(held, held_copies).await;
                    }
                });
            }
        }
    }

    /// Keeps `notification` back until the next one has been delivered, or the hold time
    /// passes (so a lone held notification is still delivered).
    fn hold(self: &Arc<Self>, notification: Notification, copies: u32) {
        let id = self.hold_seq.fetch_add(1, Ordering::Relaxed);
        let previous = lock(&self.held).replace((id, notification, copies));
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if let Some((_, previous, previous_copies)) = previous {
                this.deliver_copies(previous, previous_copies).await;
            }
            tokio::time::sleep(Duration::from_millis(this.policy.reorder_hold_ms)).await;
            let expired = {
                let mut held = lock(&this.held);
                match held.as_ref() {
                    Some((held_id, _, _)) if *held_id == id => held.take(),
                    _ => None,
                }
            };
            if let Some((_, notification, copies)) = expired {
                this.deliver_copies(notification, copies).await;
            }
        });
    }

    /// Delivers `copies` copies concurrently and waits for all of them.
    async fn deliver_copies(self: &Arc<Self>, notification: Notification, copies: u32) {
        let notification = Arc::new(notification);
        let tasks: Vec<_> = (0..copies)
            .map(|_| {
                let this = Arc::clone(self);
                let notification = Arc::clone(&notification);
                tokio::spawn(async move { this.deliver(&notification).await })
            })
            .collect();
        for task in tasks {
            // A panicked delivery task only loses its own record.
            let _ = task.await;
        }
    }

    async fn deliver(&self, notification: &Notification) {
        let delay_ms = lock(&self.faults).delay_ms;
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        let mut attempts = 0;
        let mut acked = false;
        while attempts < self.policy.attempts_max && !acked {
            if attempts > 0 {
                tokio::time::sleep(Duration::from_millis(self.policy.retry_delay_ms)).await;
            }
            attempts += 1;
            acked = self.attempt(notification).await;
        }
        if !acked {
            tracing::warn!(label = %notification.label, attempts, "notification not acknowledged");
        }
        self.record(DeliveryRecord {
            label: notification.label.clone(),
            url: notification.url.clone(),
            attempts,
            acked,
            dropped: false,
        });
    }

    async fn attempt(&self, notification: &Notification) -> bool {
        let mut request = self
            .http
            .post(&notification.url)
            .header(reqwest::header::CONTENT_TYPE, notification.content_type)
            .body(notification.body.clone());
        for (name, value) in &notification.headers {
            request = request.header(name, value);
        }
        let Ok(response) = request.send().await else {
            return false;
        };
        let status = response.status();
        match notification.ack {
            Ack::WechatStatus => status.as_u16() == 200 || status.as_u16() == 204,
            Ack::AlipaySuccess => {
                status.is_success()
                    && response
                        .bytes()
                        .await
                        .is_ok_and(|body| body.as_ref() == b"success")
            }
        }
    }

    fn record(&self, record: DeliveryRecord) {
        let mut records = lock(&self.records);
        if records.len() >= DELIVERY_RECORDS_MAX {
            records.remove(0);
        }
        records.push(record);
    }
}
