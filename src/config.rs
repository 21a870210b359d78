//! One `Config` for the whole service: every flag is also a `BILLING_*` environment variable,
//! with defaults that let `water-billing serve` run on a fresh clone with no flags at all.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app::{BillingSettings, PaymentSettings};
use crate::db::ConnectSettings;
use crate::domain::late_fee::{FeeRounding, LateFeePolicy};
use crate::domain::reconcile_schedule::{RETRY_EVERY_S_MAX, TimeOfDay};

#[derive(Debug, Parser)]
#[command(
    name = "water-billing",
    version,
    about = "Water billing, online payments and reconciliation"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC API and the HTTP listener until SIGINT/SIGTERM.
    Serve(Box<ServeConfig>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseConfig),
    /// Measure a hot path (see BENCHMARKS.md).
    Bench(crate::bench::BenchConfig),
    /// Run the loopback Alipay and WeChat Pay simulators on their own, writing the keys and
    /// the `BILLING_*` settings that point `serve` at them.
    Sandbox(SandboxArgs),
    /// Reconcile one channel's business day against the gateway statement (or, for the
    /// counter, list the cashiers' closes), print a summary and write CSV and XLSX reports. Exits 0
    /// when nothing is left open.
    Reconcile(Box<ReconcileArgs>),
    /// A small city end to end in a temporary database with the sandbox gateways: billing,
    /// payments with injected faults, reconciliation of both channels and the counter.
    Demo(crate::demo::DemoArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    /// alipay, wechat or counter.
    #[arg(long)]
    pub channel: String,
    /// The Beijing business date, YYYY-MM-DD.
    #[arg(long)]
    pub date: String,
    /// A statement file finance already has (Alipay zip or csv, WeChat plain or gz); without
    /// it the statement is downloaded.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Where the CSV and XLSX reports are written.
    #[arg(long, env = "BILLING_REPORT_DIR", default_value = ".")]
    pub report_dir: PathBuf,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub billing: BillingConfig,
    #[command(flatten)]
    pub alipay: AlipayArgs,
    #[command(flatten)]
    pub wechat: WechatArgs,
    #[command(flatten)]
    pub payments: PaymentsConfig,
}

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Where to write the generated keys and `sandbox.env`.
    #[arg(long, env = "BILLING_SANDBOX_KEYS_DIR", default_value = "sandbox-keys")]
    pub keys_dir: PathBuf,
    /// Base URL of the service the simulators notify (its HTTP listener).
    #[arg(
        long,
        env = "BILLING_SANDBOX_NOTIFY_BASE",
        default_value = "http://127.0.0.1:8080"
    )]
    pub notify_base: String,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// sqlite://PATH?mode=rwc (embedded default) or postgres://USER@HOST/DB (production).
    #[arg(
        long,
        env = "BILLING_DATABASE_URL",
        default_value = "sqlite://water-billing.db?mode=rwc"
    )]
    pub database_url: String,
    /// Largest number of pooled database connections.
    #[arg(long, env = "BILLING_DB_POOL_MAX", default_value_t = 16)]
    pub db_pool_max: u32,
    /// How long a request may wait for a pooled connection.
    #[arg(long, env = "BILLING_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5_000)]
    pub db_acquire_timeout_ms: u64,
}

impl DatabaseConfig {
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            db_pool_max: 16,
            db_acquire_timeout_ms: 5_000,
        }
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted_url(&self) -> String {
        redact_password(&self.database_url)
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Address of the gRPC API.
    #[arg(long, env = "BILLING_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Address of the HTTP listener (health, and later webhooks).
    #[arg(long, env = "BILLING_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Do not apply pending migrations at start.
    #[arg(long, env = "BILLING_NO_MIGRATE")]
    pub no_migrate: bool,
    #[command(flatten)]
    pub billing: BillingConfig,
    #[command(flatten)]
    pub alipay: AlipayArgs,
    #[command(flatten)]
    pub wechat: WechatArgs,
    #[command(flatten)]
    pub payments: PaymentsConfig,
    /// Start loopback Alipay and WeChat Pay simulators and wire both channels to them, so the
    /// whole payment flow can be tried with no gateway account (overrides the channel settings).
    #[arg(long, env = "BILLING_SANDBOX")]
    pub sandbox: bool,
    #[command(flatten)]
    pub schedule: ReconcileScheduleConfig,
    /// Keys for the sandbox (tests load fixtures; `serve --sandbox` generates fresh ones).
    #[arg(skip)]
    pub sandbox_keys: crate::startup::gateways::SandboxKeys,
}

/// Alipay (public-key mode). A channel missing any setting is disabled and says which one.
#[derive(Debug, Clone, Default, Args)]
pub struct AlipayArgs {
    #[arg(long, env = "BILLING_ALIPAY_APP_ID")]
    pub alipay_app_id: Option<String>,
    /// Our merchant PID (2088...), checked on every notification.
    #[arg(long, env = "BILLING_ALIPAY_SELLER_ID")]
    pub alipay_seller_id: Option<String>,
    /// The application private key: PEM or bare base64, PKCS#1 or PKCS#8.
    #[arg(long, env = "BILLING_ALIPAY_APP_PRIVATE_KEY_FILE")]
    pub alipay_app_private_key_file: Option<PathBuf>,
    /// The Alipay public key: PEM or bare base64 SPKI.
    #[arg(long, env = "BILLING_ALIPAY_PUBLIC_KEY_FILE")]
    pub alipay_public_key_file: Option<PathBuf>,
    #[arg(
        long,
        env = "BILLING_ALIPAY_GATEWAY_URL",
        default_value = "https://openapi.alipay.com/gateway.do"
    )]
    pub alipay_gateway_url: String,
    /// Our public webhook URL for Alipay (ends in /notify/alipay).
    #[arg(long, env = "BILLING_ALIPAY_NOTIFY_URL")]
    pub alipay_notify_url: Option<String>,
}

/// WeChat Pay API v3. A channel missing any setting is disabled and says which one.
#[derive(Debug, Clone, Default, Args)]
pub struct WechatArgs {
    #[arg(long, env = "BILLING_WECHAT_MCH_ID")]
    pub wechat_mch_id: Option<String>,
    #[arg(long, env = "BILLING_WECHAT_APP_ID")]
    pub wechat_app_id: Option<String>,
    /// The merchant API private key (apiclient_key.pem).
    #[arg(long, env = "BILLING_WECHAT_MCH_PRIVATE_KEY_FILE")]
    pub wechat_mch_private_key_file: Option<PathBuf>,
    /// Serial number of the merchant API certificate.
    #[arg(long, env = "BILLING_WECHAT_MCH_SERIAL_NO")]
    pub wechat_mch_serial_no: Option<String>,
    /// File holding the 32-character APIv3 key.
    #[arg(long, env = "BILLING_WECHAT_APIV3_KEY_FILE")]
    pub wechat_apiv3_key_file: Option<PathBuf>,
    /// The WeChat Pay public key (PEM), used with BILLING_WECHAT_PUBLIC_KEY_ID.
    #[arg(long, env = "BILLING_WECHAT_PUBLIC_KEY_FILE")]
    pub wechat_public_key_file: Option<PathBuf>,
    /// `PUB_KEY_ID_...` of the WeChat Pay public key.
    #[arg(long, env = "BILLING_WECHAT_PUBLIC_KEY_ID")]
    pub wechat_public_key_id: Option<String>,
    /// Platform certificates (PEM files), for merchants still on certificates; comma-separated.
    #[arg(
        long,
        env = "BILLING_WECHAT_PLATFORM_CERT_FILES",
        value_delimiter = ','
    )]
    pub wechat_platform_cert_files: Vec<PathBuf>,
    #[arg(
        long,
        env = "BILLING_WECHAT_BASE_URL",
        default_value = "https://api.mch.weixin.qq.com"
    )]
    pub wechat_base_url: String,
    /// Our public webhook URL for WeChat Pay (ends in /notify/wechat).
    #[arg(long, env = "BILLING_WECHAT_NOTIFY_URL")]
    pub wechat_notify_url: Option<String>,
}

/// The daily reconciliation `serve` can run by itself: yesterday's (Beijing) statement of each
/// enabled online channel, from a start time, retried until a deadline. Times are Beijing
/// wall-clock `HH:MM`; a malformed one stops start-up naming the flag.
#[derive(Debug, Clone, Args)]
pub struct ReconcileScheduleConfig {
    /// Reconcile yesterday's statements every day (off unless set).
    #[arg(long, env = "BILLING_RECONCILE_SCHEDULE")]
    pub reconcile_schedule: bool,
    /// Beijing time from which yesterday is reconciled (gateways publish around 10:00).
    #[arg(
        long,
        env = "BILLING_RECONCILE_AT",
        default_value = "10:30",
        value_name = "HH:MM"
    )]
    pub reconcile_at: TimeOfDay,
    /// Beijing time after which a statement still not ready is given up for the day (an error
    /// is logged).
    #[arg(
        long,
        env = "BILLING_RECONCILE_DEADLINE",
        default_value = "18:00",
        value_name = "HH:MM"
    )]
    pub reconcile_deadline: TimeOfDay,
    /// Seconds between attempts while a statement is not ready or an attempt failed.
    #[arg(
        long,
        alias = "reconcile-retry-every",
        env = "BILLING_RECONCILE_RETRY_EVERY_S",
        default_value_t = 600,
        value_parser = clap::value_parser!(u64).range(1..=RETRY_EVERY_S_MAX)
    )]
    pub reconcile_retry_every_s: u64,
    /// Where scheduled runs write their CSV and XLSX reports.
    #[arg(long, env = "BILLING_RECONCILE_REPORT_DIR", default_value = "reports")]
    pub reconcile_report_dir: PathBuf,
}

impl Default for ReconcileScheduleConfig {
    fn default() -> Self {
        Self {
            reconcile_schedule: false,
            reconcile_at: TimeOfDay::DEFAULT_START,
            reconcile_deadline: TimeOfDay::DEFAULT_DEADLINE,
            reconcile_retry_every_s: 600,
            reconcile_report_dir: PathBuf::from("reports"),
        }
    }
}

/// Pacing of the payment background work.
#[derive(Debug, Clone, Args)]
pub struct PaymentsConfig {
    /// A PENDING order older than this is refreshed by a gateway query (GetPayment, sweeper).
    #[arg(long, env = "BILLING_PENDING_QUERY_AFTER_S", default_value_t = 180)]
    pub pending_query_after_s: u64,
    /// How often the sweeper looks for stale PENDING orders.
    #[arg(long, env = "BILLING_SWEEP_INTERVAL_S", default_value_t = 60)]
    pub sweep_interval_s: u64,
    /// Orders the sweeper handles per round, at most.
    #[arg(long, env = "BILLING_SWEEP_BATCH_MAX", default_value_t = 100)]
    pub sweep_batch_max: u64,
    /// A PENDING refund older than this is settled by a refund query (refund sweeper).
    #[arg(long, env = "BILLING_REFUND_QUERY_AFTER_S", default_value_t = 60)]
    pub refund_query_after_s: u64,
    /// How often the refund sweeper looks for PENDING refunds (doubled while the gateway
    /// does not answer, up to `REFUND_SWEEP_BACKOFF_MAX_S`).
    #[arg(long, env = "BILLING_REFUND_SWEEP_INTERVAL_S", default_value_t = 30)]
    pub refund_sweep_interval_s: u64,
    /// Refunds the refund sweeper queries per round, at most.
    #[arg(long, env = "BILLING_REFUND_SWEEP_BATCH_MAX", default_value_t = 100)]
    pub refund_sweep_batch_max: u64,
    /// The only directory `RunReconciliation` may read statement files from; unset, the API
    /// refuses file imports (the CLI's `--file` reads any path its operator can).
    #[arg(long, env = "BILLING_STATEMENT_DIR")]
    pub statement_dir: Option<PathBuf>,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            pending_query_after_s: 180,
            sweep_interval_s: 60,
            sweep_batch_max: 100,
            refund_query_after_s: 60,
            refund_sweep_interval_s: 30,
            refund_sweep_batch_max: 100,
            statement_dir: None,
        }
    }
}

/// The billing parameters domain.md marks as "default".
#[derive(Debug, Clone, Args)]
pub struct BillingConfig {
    /// Days from issue to due date.
    #[arg(long, env = "BILLING_DUE_DAYS", default_value_t = 15)]
    pub due_days: u32,
    /// Late fee per chargeable day, as a fraction of unpaid principal.
    #[arg(long, env = "BILLING_LATE_FEE_RATE_PER_DAY", default_value = "0.003")]
    pub late_fee_rate_per_day: rust_decimal::Decimal,
    /// TRUNCATE (default) or HALF_UP.
    #[arg(long, env = "BILLING_LATE_FEE_ROUNDING", default_value = "TRUNCATE")]
    pub late_fee_rounding: String,
    /// Cap the late fee at the unpaid principal.
    #[arg(long, env = "BILLING_LATE_FEE_CAP", default_value_t = true, action = clap::ArgAction::Set)]
    pub late_fee_cap: bool,
    /// Largest volume a register rollover may imply before the reading is rejected.
    #[arg(long, env = "BILLING_ROLLOVER_MAX_M3", default_value_t = crate::domain::reading::DEFAULT_ROLLOVER_MAX_M3)]
    pub rollover_max_m3: u64,
    /// Accounts billed per transaction by the billing cycle.
    #[arg(long, env = "BILLING_CYCLE_BATCH_SIZE", default_value_t = 5_000)]
    pub cycle_batch_size: u32,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            due_days: 15,
            late_fee_rate_per_day: rust_decimal::Decimal::new(3, 3),
            late_fee_rounding: "TRUNCATE".to_owned(),
            late_fee_cap: true,
            rollover_max_m3: crate::domain::reading::DEFAULT_ROLLOVER_MAX_M3,
            cycle_batch_size: 5_000,
        }
    }
}

impl BillingConfig {
    /// The billing parameters, checked: the use cases only ever see valid ones.
    pub fn settings(&self) -> Result<BillingSettings, String> {
        let config = self;
        let rounding = match config.late_fee_rounding.as_str() {
            "TRUNCATE" => FeeRounding::Truncate,
            "HALF_UP" => FeeRounding::HalfUp,
            other => {
                return Err(format!(
                    "late fee rounding {other:?} is not TRUNCATE or HALF_UP"
                ));
            }
        };
        if config.late_fee_rate_per_day.is_sign_negative() {
            return Err("the late fee rate per day cannot be negative".to_owned());
        }
        if !(1..=10_000).contains(&config.cycle_batch_size) {
            return Err("the billing cycle batch size must be between 1 and 10000".to_owned());
        }
        Ok(BillingSettings {
            due_days: config.due_days,
            late_fee: LateFeePolicy {
                rate_per_day: config.late_fee_rate_per_day,
                rounding,
                cap_at_principal: config.late_fee_cap,
            },
            rollover_max_m3: config.rollover_max_m3,
            cycle_batch_size: config.cycle_batch_size as usize,
        })
    }
}

impl From<PaymentsConfig> for PaymentSettings {
    fn from(config: PaymentsConfig) -> Self {
        let PaymentsConfig {
            pending_query_after_s,
            sweep_interval_s,
            sweep_batch_max,
            refund_query_after_s,
            refund_sweep_interval_s,
            refund_sweep_batch_max,
            statement_dir,
        } = config;
        Self {
            pending_query_after_s,
            sweep_interval_s,
            sweep_batch_max,
            refund_query_after_s,
            refund_sweep_interval_s,
            refund_sweep_batch_max,
            statement_dir,
        }
    }
}

impl From<&DatabaseConfig> for ConnectSettings {
    fn from(config: &DatabaseConfig) -> Self {
        Self {
            url: config.database_url.clone(),
            pool_max: config.db_pool_max,
            acquire_timeout_ms: config.db_acquire_timeout_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn serve(args: &[&str]) -> Result<ReconcileScheduleConfig, clap::Error> {
        let argv = ["water-billing", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(config) => Ok(config.schedule),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_use_cases_default_pacing_is_the_settings_default() {
        assert_eq!(
            PaymentSettings::from(PaymentsConfig::default()),
            PaymentSettings::default()
        );
        let parsed = match Cli::try_parse_from(["water-billing", "serve"])
            .unwrap()
            .command
        {
            Command::Serve(config) => config.payments,
            other => panic!("parsed as {other:?}"),
        };
        assert_eq!(PaymentSettings::from(parsed), PaymentSettings::default());
    }

    #[test]
    fn the_default_billing_settings_are_valid() {
        let settings = BillingConfig::default().settings().unwrap();
        assert_eq!(settings.due_days, BillingSettings::default().due_days);
        assert_eq!(
            settings.cycle_batch_size,
            BillingSettings::default().cycle_batch_size
        );
    }

    #[test]
    fn the_reconciliation_schedule_is_off_by_default_with_the_documented_times() {
        let parsed = serve(&[]).unwrap();
        let default = ReconcileScheduleConfig::default();
        assert!(!parsed.reconcile_schedule);
        assert_eq!(parsed.reconcile_at.to_string(), "10:30");
        assert_eq!(parsed.reconcile_at, default.reconcile_at);
        assert_eq!(parsed.reconcile_deadline.to_string(), "18:00");
        assert_eq!(parsed.reconcile_deadline, default.reconcile_deadline);
        assert_eq!(parsed.reconcile_retry_every_s, 600);
        assert_eq!(parsed.reconcile_report_dir, default.reconcile_report_dir);
    }

    #[test]
    fn a_malformed_schedule_setting_is_refused_naming_the_flag() {
        let err = serve(&["--reconcile-at", "25:00"]).unwrap_err().to_string();
        assert!(err.contains("--reconcile-at"), "{err}");
        assert!(err.contains("25:00") && err.contains("HH:MM"), "{err}");
        let err = serve(&["--reconcile-retry-every", "0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--reconcile-retry-every-s"), "{err}");
        let ok = serve(&["--reconcile-schedule", "--reconcile-deadline", "23:59"]).unwrap();
        assert!(ok.reconcile_schedule);
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact_password("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_password("sqlite://x.db?mode=rwc"),
            "sqlite://x.db?mode=rwc"
        );
    }
}
