//! water-billing: turns meter readings into water bills for a city water utility, takes
//! payments and reconciles them for finance.
//!
//! # Layout
//! - `config`: the one `Config` (flags and `BILLING_*` environment variables).
//! - `startup`: builds the service from a config (the gateway channels from their settings, or
//!   the loopback simulators with `--sandbox`, in `startup::gateways`), binds listeners, serves
//!   until shutdown.
//! - `domain`: the pure core (money, calendar, tariffs, rating, readings, late fees,
//!   allocation, journal, bill drafting, the refund lifecycle). No I/O, no clock; tested
//!   with plain values.
//! - `app`: the use cases; each validates input, runs domain rules and owns its transaction.
//! - `db`: connection, migrations, entities, batch queries and batch writes, with its own
//!   error (`db::DbError`; a stored value the domain cannot read is `Corrupt`).
//! - `gateway`: the payment gateways' protocols: keys, Alipay RSA2 signing and notification
//!   verification, WeChat Pay v3 signing, header verification and AES-GCM notifications.
//! - `grpc`: tonic services, proto conversions and the one error → status mapping.
//! - `http`: the axum listener (health; webhooks later).
//! - `sandbox`: loopback Alipay and WeChat Pay simulators speaking the real protocols (their own
//!   keys, customer payments, notifications with injectable faults, statements).
//! - `demo`: `water-billing demo`, a small city end to end with the sandbox gateways.
//! - `bench`: the `water-billing bench` command measuring the hot paths.
//! - `cli`: the `water-billing reconcile` command: summary table, progress, reports.
//! - `scheduler`: the daily reconciliation `serve` runs by itself (`--reconcile-schedule`).
//! - `report`: what a reconciliation report says, written as CSV (the record) and XLSX.
//!
//! Dependencies point one way: `domain` <- `db` <- `app` <- `grpc` / `http` / `cli`, with
//! `config` and `startup` on top. `db` never imports `app` (it maps rows to domain values and
//! says what failed in its own error); `app` never sees flags or simulators (`config` turns
//! settings into `app::BillingSettings` / `app::PaymentSettings` / `db::ConnectSettings`).

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod gateway;
pub mod grpc;
pub mod http;
pub mod report;
pub mod sandbox;
pub mod scheduler;
pub mod startup;
