//! Gateway clients against the loopback simulators over real HTTP with real signatures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alipay;
mod helpers;
mod wechat;
