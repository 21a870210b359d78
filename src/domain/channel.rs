//! The channels money arrives and leaves through: the two online gateways and the counter.
//! Stored as the text of [`PaymentChannel::as_str`] on payments, notifications, suspense items
//! and runs; a stored text none of them is a corrupt row, never a default. Which ledger holds
//! a channel's money until it reaches the bank is part of the channel, so the journal never
//! guesses it. The module is pure: no I/O, no clock.

use std::fmt;

use super::evidence::UnknownValue;
use super::journal::Ledger;

/// The channels money arrives through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentChannel {
    Alipay,
    Wechat,
    Counter,
}

impl PaymentChannel {
    pub const ALL: [Self; 3] = [Self::Alipay, Self::Wechat, Self::Counter];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alipay => "ALIPAY",
            Self::Wechat => "WECHAT",
            Self::Counter => "COUNTER",
        }
    }

    pub fn parse(input: &str) -> Result<Self, UnknownValue> {
        Self::ALL
            .into_iter()
            .find(|channel| channel.as_str() == input)
            .ok_or_else(|| UnknownValue {
                what: "channel (ALIPAY, WECHAT or COUNTER)",
                input: input.to_owned(),
            })
    }

    /// Where the money sits until it is settled to the utility's bank account.
    pub fn ledger(self) -> Ledger {
        match self {
            Self::Alipay | Self::Wechat => Ledger::GatewayClearing,
            Self::Counter => Ledger::CounterCash,
        }
    }
}

impl fmt::Display for PaymentChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_channel_reads_back_and_nothing_else_does() {
        for channel in PaymentChannel::ALL {
            assert_eq!(PaymentChannel::parse(channel.as_str()), Ok(channel));
        }
        for bad in ["", "alipay", "CASH", "WECHAT "] {
            assert!(PaymentChannel::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn online_money_clears_through_the_gateway_and_cash_through_the_drawer() {
        assert_eq!(PaymentChannel::Alipay.ledger(), Ledger::GatewayClearing);
        assert_eq!(PaymentChannel::Wechat.ledger(), Ledger::GatewayClearing);
        assert_eq!(PaymentChannel::Counter.ledger(), Ledger::CounterCash);
    }
}
