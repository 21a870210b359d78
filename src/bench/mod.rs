//! `water-billing bench`: measures the hot paths on this machine (figures in BENCHMARKS.md).
//! Benchmarks report rates and latencies; tests never time anything.

pub mod billing;
pub mod reconcile;
pub mod webhooks;

use clap::{Args, Subcommand};

#[derive(Debug, Clone, Args)]
pub struct BenchConfig {
    #[command(subcommand)]
    pub target: BenchTarget,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchTarget {
    /// Seed accounts with a year of readings and time the billing cycle.
    Billing(billing::BillingBench),
    /// Post signed notifications over HTTP and time verified, committed webhooks.
    Webhooks(webhooks::WebhookBench),
    /// Time one day's reconciliation (parse, ledger load, match) against a generated statement.
    Reconcile(reconcile::ReconcileBench),
}

pub async fn run(config: BenchConfig) -> anyhow::Result<()> {
    match config.target {
        BenchTarget::Billing(bench) => billing::run(bench).await,
        BenchTarget::Webhooks(bench) => webhooks::run(bench).await,
        BenchTarget::Reconcile(bench) => reconcile::run(bench).await,
    }
}
