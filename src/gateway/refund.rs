//! What a refund request or refund query told us, classified by the gateway clients so the
//! app never guesses from error text (protocol notes A3.3, A3.4, A3.6, B5.4, B5.5).
//!
//! The classification is deliberately one-sided: only a signed business error that says the
//! refund was not executed is a [`RefundAnswer::Refused`]. A timeout, a 5xx, a signed answer
//! with a missing or renamed field, an unverifiable signature are all
//! [`RefundAnswer::Unknown`]: the money may have left, so the refund stays pending and is
//! asked again with the same refund number.

use crate::domain::refund::RefundEvent;

use super::error::GatewayError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundAnswer {
    /// The gateway says the money went back (Alipay `fund_change=Y` or `REFUND_SUCCESS`,
    /// WeChat `SUCCESS`). `gateway_refund_id` is the gateway's number when it gave one.
    Paid { gateway_refund_id: Option<String> },
    /// Accepted, not finished: WeChat `PROCESSING`, Alipay `fund_change=N` or
    /// `REFUND_PROCESSING`. Ask again later.
    Processing { gateway_refund_id: Option<String> },
    /// A definitive, signed business refusal: nothing was paid.
    Refused { code: String, message: String },
    /// A state a person must look at: WeChat `CLOSED` / `ABNORMAL`, or an answer about a
    /// different amount than ours.
    NeedsAttention { why: String },
    /// The refund query has no refund with our number: send the same refund again.
    NotFound,
    /// We cannot tell whether money moved.
    Unknown { why: String },
}

impl RefundAnswer {
    /// A refund request's error: only a business rejection is a refusal; anything else
    /// (transport, 5xx, an answer we could not read) may have paid.
    pub fn from_request_error(error: GatewayError) -> Self {
        match error {
            GatewayError::Rejected {
                code,
                sub_code,
                message,
            } => Self::Refused {
                code: sub_code.unwrap_or(code),
                message,
            },
            GatewayError::Unknown(why) | GatewayError::Protocol(why) => Self::Unknown { why },
        }
    }

    /// A refund query's error: a refused *query* says nothing about the refund.
    pub fn from_query_error(error: GatewayError) -> Self {
        Self::Unknown {
            why: error.to_string(),
        }
    }

    /// The domain event this answer is.
    pub fn event(&self) -> RefundEvent {
        match self {
            Self::Paid { .. } => RefundEvent::Paid,
            Self::Processing { .. } => RefundEvent::Processing,
            Self::Refused { .. } => RefundEvent::Refused,
            Self::NeedsAttention { .. } => RefundEvent::NeedsAttention,
            Self::NotFound => RefundEvent::NotFound,
            Self::Unknown { .. } => RefundEvent::Inconclusive,
        }
    }

    pub fn gateway_refund_id(&self) -> Option<&str> {
        match self {
            Self::Paid { gateway_refund_id } | Self::Processing { gateway_refund_id } => {
                gateway_refund_id.as_deref()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_business_rejection_of_the_request_is_a_refusal() {
        let rejected = GatewayError::Rejected {
            code: "40004".into(),
            sub_code: Some("ACQ.TRADE_NOT_ALLOW_REFUND".into()),
            message: "no".into(),
        };
        assert_eq!(
            RefundAnswer::from_request_error(rejected.clone()).event(),
            RefundEvent::Refused
        );
        assert_eq!(
            RefundAnswer::from_query_error(rejected).event(),
            RefundEvent::Inconclusive
        );
        for error in [
            GatewayError::Unknown("timeout".into()),
            GatewayError::Protocol("response lacks `trade_no`".into()),
        ] {
            assert_eq!(
                RefundAnswer::from_request_error(error).event(),
                RefundEvent::Inconclusive
            );
        }
    }
}
