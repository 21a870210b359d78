//! The `water-billing` binary: parses the command line and dispatches; nothing else.

use clap::Parser;
use tracing_subscriber::EnvFilter;
use water_billing::config::{Cli, Command};

/// mimalloc instead of glibc's allocator: a SQLite read allocates every value on sqlx's worker
/// thread and frees it on the reader, which glibc serves through its arena locks and
/// consolidation (a fifth of a million-row ledger load in `perf`); mimalloc frees across
/// threads without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(config) => {
            let server = water_billing::startup::Server::build(&config).await?;
            tracing::info!(
                grpc = %server.grpc_addr()?,
                http = %server.http_addr()?,
                database = %config.database.redacted_url(),
                "water-billing serving"
            );
            server.run(water_billing::startup::shutdown_signal()).await
        }
        Command::Migrate(config) => {
            let db = water_billing::db::connect(&config).await?;
            water_billing::db::migrate(&db).await?;
            tracing::info!(database = %config.redacted_url(), "migrations applied");
            Ok(())
        }
        Command::Bench(config) => water_billing::bench::run(config).await,
        Command::Sandbox(args) => {
            let (sandbox, env) = water_billing::startup::gateways::run_standalone(&args).await?;
            tracing::info!(
                alipay = %sandbox.alipay.gateway_url(),
                wechat = %sandbox.wechat.base_url(),
                settings = %env.display(),
                "sandbox gateways running; start the service with these settings \
                 (set -a; . {}; set +a; water-billing serve); Ctrl-C stops",
                env.display()
            );
            water_billing::startup::shutdown_signal().await;
            Ok(())
        }
        Command::Demo(args) => water_billing::demo::run(args).await,
        Command::Reconcile(args) => {
            if !water_billing::cli::reconcile(&args).await? {
                // Exceptions remain open: scripts and schedulers see a failure.
                std::process::exit(2);
            }
            Ok(())
        }
    }
}
