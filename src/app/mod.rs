//! Use cases: each public function validates its input into domain values, runs the pure domain
//! rules, and owns the transaction that records the outcome. gRPC (and later HTTP and the CLI)
//! call these and nothing below them.

pub mod accounts;
pub mod billing;
pub mod closures;
pub mod committer;
pub mod counter_refunds;
pub mod cycle;
pub mod error;
pub mod gateways;
mod group_settle;
pub mod notifications;
pub mod payments;
pub mod readings;
pub mod reconciliation;
pub mod refund_settle;
pub mod refundable;
pub mod refunds;
pub mod reversal;
pub mod settlement;
pub mod tariffs;
pub mod validate;

use chrono::{NaiveDate, Utc};
use sea_orm::DatabaseConnection;

pub use error::{AppError, AppResult};

use crate::domain::calendar::beijing_today;
use crate::domain::late_fee::LateFeePolicy;

/// The billing parameters, parsed once at start-up (`config::BillingConfig::settings`).
#[derive(Debug, Clone)]
pub struct BillingSettings {
    pub due_days: u32,
    pub late_fee: LateFeePolicy,
    pub rollover_max_m3: u64,
    pub cycle_batch_size: usize,
}

/// Pacing of the payment and refund background work, read once at start-up (from
/// `config::PaymentsConfig`; the defaults here are its defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSettings {
    /// A PENDING order older than this is refreshed by a gateway query.
    pub pending_query_after_s: u64,
    /// How often the payment sweeper looks for stale PENDING orders.
    pub sweep_interval_s: u64,
    /// Orders the payment sweeper handles per round, at most.
    pub sweep_batch_max: u64,
    /// A PENDING refund older than this is settled by a refund query.
    pub refund_query_after_s: u64,
    /// How often the refund sweeper looks for PENDING refunds.
    pub refund_sweep_interval_s: u64,
    /// Refunds the refund sweeper queries per round, at most.
    pub refund_sweep_batch_max: u64,
    /// The only directory `RunReconciliation` may read statement files from; `None` refuses
    /// file imports through the API.
    pub statement_dir: Option<std::path::PathBuf>,
}

impl Default for PaymentSettings {
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

impl Default for BillingSettings {
    fn default() -> Self {
        // The defaults of BillingConfig are valid by construction.
        Self {
            due_days: 15,
            late_fee: LateFeePolicy::default(),
            rollover_max_m3: crate::domain::reading::DEFAULT_ROLLOVER_MAX_M3,
            cycle_batch_size: 5_000,
        }
    }
}

/// Committer tasks on PostgreSQL.
const COMMITTERS_POSTGRES: usize = 4;

/// Everything a use case needs: the database, the settings and the gateway channels.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    pub db: DatabaseConnection,
    pub settings: BillingSettings,
    pub gateways: gateways::Gateways,
    pub payments: PaymentSettings,
    /// The webhook group committer, once started (`start_committer`).
    pub committer: Option<committer::Committer>,
}

impl App {
    /// An app with both online channels disabled (billing only).
    pub fn new(db: DatabaseConnection, settings: BillingSettings) -> Self {
        Self {
            db,
            settings,
            gateways: gateways::Gateways::disabled(),
            payments: Default::default(),
            committer: None,
        }
    }

    pub fn with_gateways(
        mut self,
        gateways: gateways::Gateways,
        payments: impl Into<PaymentSettings>,
    ) -> Self {
        self.gateways = gateways;
        self.payments = payments.into();
        self
    }

    /// Starts the webhook group committer: one task on SQLite (one writer anyway), a few on
    /// PostgreSQL so batches of different accounts commit in parallel.
    pub fn start_committer(mut self) -> Self {
        let workers = match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => COMMITTERS_POSTGRES,
            _ => 1,
        };
        self.committer = Some(committer::Committer::start(self.clone(), workers));
        self
    }

    /// The current instant: the one place payment use cases read the clock.
    pub fn now(&self) -> chrono::DateTime<Utc> {
        Utc::now()
    }

    /// Today's Beijing date: the only place the use cases read the clock.
    pub fn today(&self) -> NaiveDate {
        beijing_today(Utc::now())
    }
}
