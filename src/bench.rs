//! `water-billing bench`: measures the hot paths on this machine (see BENCHMARKS.md).

use clap::{Args, Subcommand};

#[derive(Debug, Clone, Args)]
pub struct BenchConfig {
    #[command(subcommand)]
    pub target: BenchTarget,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchTarget {
    /// Seed accounts with a year of readings and time RunBillingCycle.
    Billing(BillingBench),
}

#[derive(Debug, Clone, Args)]
pub struct BillingBench {
    /// Accounts to seed.
    #[arg(long, default_value_t = 10_000)]
    pub accounts: u64,
    /// Database to run on (a fresh one: the bench creates its own tables).
    #[arg(
        long,
        env = "BILLING_BENCH_DATABASE_URL",
        default_value = "sqlite::memory:"
    )]
    pub database_url: String,
}

pub async fn run(config: BenchConfig) -> anyhow::Result<()> {
    match config.target {
        BenchTarget::Billing(bench) => {
            anyhow::bail!(
                "billing bench for {} accounts on {} is not implemented yet",
                bench.accounts,
                bench.database_url
            )
        }
    }
}
