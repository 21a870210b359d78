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

use crate::config::BillingConfig;
use crate::domain::calendar::beijing_today;
use crate::domain::late_fee::{FeeRounding, LateFeePolicy};

/// The billing parameters, parsed once at start-up.
#[derive(Debug, Clone)]
pub struct BillingSettings {
    pub due_days: u32,
    pub late_fee: LateFeePolicy,
    pub rollover_max_m3: u64,
    pub cycle_batch_size: usize,
}

impl BillingSettings {
    pub fn from_config(config: &BillingConfig) -> Result<Self, String> {
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
        Ok(Self {
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
    pub payments: crate::config::PaymentsConfig,
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
        payments: crate::config::PaymentsConfig,
    ) -> Self {
        self.gateways = gateways;
        self.payments = payments;
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
