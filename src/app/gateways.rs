//! The online channels as the use cases see them: each is either enabled with a ready client
//! or disabled with the settings it lacks (its RPCs answer FAILED_PRECONDITION naming them).
//! Building them from settings, key files or the loopback simulators is start-up's job
//! (`startup::gateways`), so the use cases never see configuration or simulators.

use std::sync::Arc;

use crate::gateway::alipay::client::AlipayClient;
use crate::gateway::wechat::client::WechatClient;

/// A channel: enabled, or disabled with a message naming what is missing.
#[derive(Debug)]
pub enum Channel<T> {
    Enabled(Arc<T>),
    Disabled(String),
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Enabled(client) => Self::Enabled(Arc::clone(client)),
            Self::Disabled(why) => Self::Disabled(why.clone()),
        }
    }
}

impl<T> Channel<T> {
    pub fn enabled(&self) -> Result<&Arc<T>, &str> {
        match self {
            Self::Enabled(client) => Ok(client),
            Self::Disabled(why) => Err(why),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gateways {
    pub alipay: Channel<AlipayClient>,
    pub wechat: Channel<WechatClient>,
}

impl Gateways {
    pub fn disabled() -> Self {
        Self {
            alipay: Channel::Disabled("the Alipay channel is not configured".into()),
            wechat: Channel::Disabled("the WeChat Pay channel is not configured".into()),
        }
    }

    /// The online channels whose settings are complete.
    pub fn enabled_online(&self) -> Vec<crate::app::settlement::PaymentChannel> {
        use crate::app::settlement::PaymentChannel;
        let alipay = self
            .alipay
            .enabled()
            .is_ok()
            .then_some(PaymentChannel::Alipay);
        let wechat = self
            .wechat
            .enabled()
            .is_ok()
            .then_some(PaymentChannel::Wechat);
        alipay.into_iter().chain(wechat).collect()
    }
}
