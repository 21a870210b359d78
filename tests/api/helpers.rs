//! `spawn_app`: a running service with a fresh database, and the clients to call it.

use std::net::SocketAddr;

use sea_orm::{ConnectionTrait, Database};
use tonic::transport::Channel;
use water_billing::config::{
    BillingConfig, DatabaseConfig, PaymentsConfig, ReconcileScheduleConfig, ServeConfig,
};
pub use water_billing::domain::evidence::{EvidenceSource, NotificationOutcome, SuspenseReason};
use water_billing::grpc::pb;
use water_billing::grpc::pb::account_service_client::AccountServiceClient;
use water_billing::grpc::pb::billing_service_client::BillingServiceClient;
use water_billing::grpc::pb::closure_service_client::ClosureServiceClient;
use water_billing::grpc::pb::payment_service_client::PaymentServiceClient;
use water_billing::grpc::pb::reconciliation_service_client::ReconciliationServiceClient;
use water_billing::grpc::pb::tariff_service_client::TariffServiceClient;
use water_billing::sandbox::delivery::DeliveryPolicy;
use water_billing::startup::gateways::{Sandbox, SandboxKeys};

pub struct TestApp {
    pub payments: PaymentServiceClient<Channel>,
    /// The loopback gateways, when spawned with `spawn_sandbox_app`.
    pub sandbox: Option<Sandbox>,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub accounts: AccountServiceClient<Channel>,
    pub tariffs: TariffServiceClient<Channel>,
    pub billing: BillingServiceClient<Channel>,
    pub closures: ClosureServiceClient<Channel>,
    pub reconciliation: ReconciliationServiceClient<Channel>,
    pub database_url: String,
    /// The running service's use cases, for driving background work (e.g. one sweep round)
    /// without its loop.
    pub app: water_billing::app::App,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh database URL: a new SQLite file, or a new PostgreSQL database on the server named
/// by `BILLING_TEST_DATABASE_URL`.
pub async fn fresh_database() -> (String, Option<tempfile::TempDir>) {
    match std::env::var("BILLING_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let admin = Database::connect(&url)
                .await
                .expect("connect to the PostgreSQL test server");
            let name = format!("wb_test_{}", unique_suffix());
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            let base = url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&url);
            (format!("{base}/{name}"), None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            (url, Some(dir))
        }
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(BillingConfig::default()).await
}

pub async fn spawn_app_with(billing: BillingConfig) -> TestApp {
    spawn(
        billing,
        None,
        PaymentsConfig::default(),
        Background::default(),
    )
    .await
}

/// A service wired to the loopback Alipay and WeChat Pay simulators (fixture keys, fast
/// notification retries).
pub async fn spawn_sandbox_app(payments: PaymentsConfig) -> TestApp {
    spawn(
        BillingConfig::default(),
        Some(sandbox_keys()),
        payments,
        Background::default(),
    )
    .await
}

/// A sandbox app with the daily reconciliation scheduled. The simulators' clocks are
/// `clock_offset` away before the service starts serving, so the scheduler's first round
/// already sees them.
pub async fn spawn_scheduled_sandbox_app(
    schedule: ReconcileScheduleConfig,
    clock_offset: chrono::Duration,
) -> TestApp {
    let background = Background {
        schedule,
        clock_offset,
    };
    spawn(
        BillingConfig::default(),
        Some(sandbox_keys()),
        PaymentsConfig::default(),
        background,
    )
    .await
}

fn sandbox_keys() -> SandboxKeys {
    SandboxKeys {
        merchant_pem: Some(fixture("merchant_pkcs8.pem")),
        gateway_pem: Some(fixture("gateway_pkcs8.pem")),
        delivery: Some(DeliveryPolicy::for_tests()),
    }
}

/// What the background tasks see from their first round.
#[derive(Default)]
struct Background {
    schedule: ReconcileScheduleConfig,
    clock_offset: chrono::Duration,
}

pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/gateway/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

async fn spawn(
    billing: BillingConfig,
    sandbox_keys: Option<SandboxKeys>,
    payments: PaymentsConfig,
    background: Background,
) -> TestApp {
    // Logs go to the test's captured output: shown only when a test fails.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("warn,water_billing=info")
        .try_init();
    let (database_url, dir) = fresh_database().await;
    let config = ServeConfig {
        database: DatabaseConfig::new(database_url.clone()),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        no_migrate: false,
        billing,
        alipay: Default::default(),
        wechat: Default::default(),
        payments,
        sandbox: sandbox_keys.is_some(),
        schedule: background.schedule,
        sandbox_keys: sandbox_keys.unwrap_or_default(),
    };
    let mut server = water_billing::startup::Server::build(&config)
        .await
        .expect("build server");
    let sandbox = server.take_sandbox();
    let app = server.app().clone();
    if let Some(sandbox) = &sandbox {
        sandbox.alipay.set_clock_offset(background.clock_offset);
        sandbox.wechat.set_clock_offset(background.clock_offset);
    }
    let grpc_addr = server.grpc_addr().unwrap();
    let http_addr = server.http_addr().unwrap();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{grpc_addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    TestApp {
        payments: PaymentServiceClient::new(channel.clone()),
        sandbox,
        grpc_addr,
        http_addr,
        accounts: AccountServiceClient::new(channel.clone()),
        tariffs: TariffServiceClient::new(channel.clone()),
        billing: BillingServiceClient::new(channel.clone()),
        closures: ClosureServiceClient::new(channel.clone()),
        reconciliation: ReconciliationServiceClient::new(channel),
        database_url,
        app,
        _shutdown: shutdown,
        _dir: dir,
    }
}

/// The residential tariff of domain.md section 7.
pub fn residential_tariff() -> pb::Tariff {
    pb::Tariff {
        code: "RES".into(),
        customer_class: pb::CustomerClass::Residential.into(),
        effective_from: "2020-01-01".into(),
        tiers: vec![tier("216", "2.40"), tier("300", "3.60"), tier("", "7.20")],
        sewage_price: "0.95".into(),
        resource_price: "0.20".into(),
        base_household_size: 4,
        extra_m3_per_person: 54,
        price_change: pb::PriceChange::ReadingDate.into(),
    }
}

/// The non-residential tariff of domain.md section 7.
pub fn non_residential_tariff() -> pb::Tariff {
    pb::Tariff {
        code: "NONRES".into(),
        customer_class: pb::CustomerClass::NonResidential.into(),
        effective_from: "2020-01-01".into(),
        tiers: vec![tier("", "3.15")],
        sewage_price: "1.40".into(),
        resource_price: "0.20".into(),
        base_household_size: 4,
        extra_m3_per_person: 0,
        price_change: pb::PriceChange::ReadingDate.into(),
    }
}

/// One all-in tier at 2.40 + 0.95 + 0.20 = 3.55 per m³ (domain.md 7.8).
pub fn flat_tariff() -> pb::Tariff {
    pb::Tariff {
        code: "FLAT".into(),
        customer_class: pb::CustomerClass::Residential.into(),
        effective_from: "2020-01-01".into(),
        tiers: vec![tier("", "2.40")],
        sewage_price: "0.95".into(),
        resource_price: "0.20".into(),
        base_household_size: 4,
        extra_m3_per_person: 0,
        price_change: pb::PriceChange::ReadingDate.into(),
    }
}

pub fn tier(up_to: &str, price: &str) -> pb::Tier {
    pb::Tier {
        up_to_m3: up_to.into(),
        water_price: price.into(),
    }
}

impl TestApp {
    pub async fn upsert_tariff(&mut self, tariff: pb::Tariff) -> pb::Tariff {
        self.tariffs
            .upsert_tariff(pb::UpsertTariffRequest {
                tariff: Some(tariff),
            })
            .await
            .expect("upsert tariff")
            .into_inner()
    }

    pub async fn create_account(
        &mut self,
        account_no: &str,
        tariff_code: &str,
        class: &str,
        household_size: u32,
    ) -> pb::Account {
        self.accounts
            .create_account(pb::CreateAccountRequest {
                account_no: account_no.into(),
                holder_name: "张三".into(),
                address: "1 Water St".into(),
                customer_class: wire::<pb::CustomerClass>(class),
                household_size,
                tariff_code: tariff_code.into(),
            })
            .await
            .expect("create account")
            .into_inner()
    }

    pub async fn install_meter(
        &mut self,
        account_no: &str,
        meter_no: &str,
        digits: u32,
        initial: u64,
        on: &str,
    ) -> pb::Meter {
        self.accounts
            .install_meter(pb::InstallMeterRequest {
                account_no: account_no.into(),
                meter_no: meter_no.into(),
                register_digits: digits,
                initial_index: initial,
                installed_on: on.into(),
            })
            .await
            .expect("install meter")
            .into_inner()
    }

    /// A residential account with a 5-digit meter, on the tariff given.
    pub async fn residential_account(
        &mut self,
        account_no: &str,
        tariff_code: &str,
        household: u32,
        initial: u64,
        on: &str,
    ) {
        self.create_account(account_no, tariff_code, "RESIDENTIAL", household)
            .await;
        self.install_meter(account_no, &format!("M-{account_no}"), 5, initial, on)
            .await;
    }

    pub async fn read(
        &mut self,
        meter_no: &str,
        index: u64,
        on: &str,
    ) -> Result<pb::Reading, tonic::Status> {
        self.billing
            .record_reading(pb::RecordReadingRequest {
                meter_no: meter_no.into(),
                index,
                read_on: on.into(),
                source: pb::ReadingSource::Actual.into(),
                reading_ref: String::new(),
            })
            .await
            .map(|r| r.into_inner())
    }

    pub async fn issue(
        &mut self,
        account_no: &str,
        period: &str,
        issued_on: &str,
    ) -> Result<pb::Bill, tonic::Status> {
        self.billing
            .issue_bill(pb::IssueBillRequest {
                account_no: account_no.into(),
                period: period.into(),
                issued_on: issued_on.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    pub async fn account(&mut self, account_no: &str, as_of: &str) -> pb::Account {
        self.accounts
            .get_account(pb::GetAccountRequest {
                account_no: account_no.into(),
                as_of: as_of.into(),
            })
            .await
            .expect("get account")
            .into_inner()
    }

    /// Counts rows matching a SQL condition, straight from the database.
    pub async fn count(&self, table: &str, condition: &str) -> i64 {
        self.query_i64(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {condition}"
        ))
        .await
    }

    /// Notifications stored with `outcome` (and, when given, that verification result).
    pub async fn count_notifications(
        &self,
        outcome: NotificationOutcome,
        verified: Option<bool>,
    ) -> i64 {
        let verified = match verified {
            Some(true) => " AND verified = true",
            Some(false) => " AND verified = false",
            None => "",
        };
        self.count(
            "notifications",
            &format!("outcome = '{}'{verified}", outcome.as_str()),
        )
        .await
    }

    /// Payments whose confirmation came from `source`.
    pub async fn count_settled_by(&self, source: EvidenceSource) -> i64 {
        self.count("payments", &format!("settled_by = '{}'", source.as_str()))
            .await
    }

    /// Suspense items held for `reason` (and `and`, an extra SQL condition, when not empty).
    pub async fn count_suspense(&self, reason: SuspenseReason, and: &str) -> i64 {
        let and = if and.is_empty() {
            String::new()
        } else {
            format!(" AND {and}")
        };
        self.count(
            "suspense_items",
            &format!("reason = '{}'{and}", reason.as_str()),
        )
        .await
    }

    /// The one integer column `n` of a one-row query, straight from the database.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let db = Database::connect(&self.database_url).await.unwrap();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }

    /// Runs one SQL statement straight on the database (to stage states the API cannot).
    pub async fn execute(&self, sql: &str) {
        let db = Database::connect(&self.database_url).await.unwrap();
        db.execute_unprepared(sql).await.unwrap();
    }

    /// Sum of debits and credits over the whole journal, straight from the database.
    pub async fn journal_totals(&self) -> (i64, i64) {
        let db = Database::connect(&self.database_url).await.unwrap();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT CAST(COALESCE(SUM(debit_fen),0) AS BIGINT) AS d, CAST(COALESCE(SUM(credit_fen),0) AS BIGINT) AS c FROM journal_postings",
            ))
            .await
            .unwrap()
            .unwrap();
        (row.try_get("", "d").unwrap(), row.try_get("", "c").unwrap())
    }
}

/// The lines of a bill of this kind ("WATER_TIER_2", "SEWAGE"), as (volume, price, amount).
pub fn line(bill: &pb::Bill, kind: &str) -> Vec<(u64, String, String)> {
    bill.lines
        .iter()
        .filter(|l| line_kind(l) == kind)
        .map(|l| (l.volume_m3, l.unit_price.clone(), l.amount.clone()))
        .collect()
}

pub fn assert_code(
    result: Result<impl std::fmt::Debug, tonic::Status>,
    code: tonic::Code,
) -> String {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    assert!(
        !status.message().is_empty(),
        "the error needs a message a caller can act on"
    );
    status.message().to_owned()
}

/// A bill line's kind in the old text form: "WATER_TIER_<tier>" for water, else the kind's
/// short name ("SEWAGE").
pub fn line_kind(line: &pb::BillLine) -> String {
    match line.kind() {
        pb::BillLineKind::Water => format!("WATER_TIER_{}", line.tier),
        other => other.short().to_owned(),
    }
}

/// Proto enum values by their short names ("PAID" for `BILL_STATUS_PAID`), so assertions read
/// like the API docs and string-era tests convert mechanically: `bill.status` becomes
/// `bill.status().short()`, `status: "PAID".into()` becomes `status: wire::<pb::BillStatus>("PAID")`.
pub trait Wire: Sized {
    /// The value's name without the enum's prefix; "UNSPECIFIED" for 0 or an unknown number.
    fn short(self) -> &'static str;
    /// The number of the value with this short name, 0 (UNSPECIFIED) for "", and
    /// [`UNKNOWN_ENUM_NUMBER`] for a name the enum does not have (what a string-era test of a
    /// bad value meant; the service refuses it).
    fn number(short: &str) -> i32;
}

/// A number none of the API's enums has.
pub const UNKNOWN_ENUM_NUMBER: i32 = 999;

/// The number of the `E` value named `short` (see [`Wire`]).
pub fn wire<E: Wire>(short: &str) -> i32 {
    E::number(short)
}

macro_rules! wire_names {
    ($($ty:ident => $prefix:literal),* $(,)?) => {$(
        impl Wire for pb::$ty {
            fn short(self) -> &'static str {
                self.as_str_name().strip_prefix($prefix).unwrap_or("UNSPECIFIED")
            }
            fn number(short: &str) -> i32 {
                if short.is_empty() {
                    return 0;
                }
                pb::$ty::from_str_name(&format!("{}{short}", $prefix))
                    .map_or(UNKNOWN_ENUM_NUMBER, i32::from)
            }
        }
    )*};
}

wire_names!(
    Channel => "CHANNEL_",
    CustomerClass => "CUSTOMER_CLASS_",
    AccountStatus => "ACCOUNT_STATUS_",
    PriceChange => "PRICE_CHANGE_",
    ReadingSource => "READING_SOURCE_",
    BillStatus => "BILL_STATUS_",
    BillLineKind => "BILL_LINE_KIND_",
    PaymentStatus => "PAYMENT_STATUS_",
    RefundStatus => "REFUND_STATUS_",
    ReconciliationRunStatus => "RECONCILIATION_RUN_STATUS_",
    DiscrepancyClass => "DISCREPANCY_CLASS_",
    DiscrepancyState => "DISCREPANCY_STATE_",
    Movement => "MOVEMENT_",
    DiscrepancyAction => "DISCREPANCY_ACTION_",
    CashierCloseOutcome => "CASHIER_CLOSE_OUTCOME_",
);
