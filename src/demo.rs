//! `water-billing demo`: a small city end to end in a temporary SQLite database with the
//! sandbox gateways. It creates tariffs, accounts and a year of readings (with a lockdown
//! closure, missing readings that get estimated and a register rollover), runs the billing
//! cycles, lets customers pay yesterday through both gateways with injected faults (lost,
//! duplicated, delayed and tampered notifications, a wrong amount, a customer paying twice),
//! records counter payments, then reconciles both channels and the counter and prints what it
//! found and fixed, with the report paths.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{Datelike, Days, NaiveDate, Utc};
use clap::Args;

use crate::app::App;
use crate::app::accounts::{NewAccount, NewMeter};
use crate::app::closures::NewClosure;
use crate::app::payments::NewPayment;
use crate::app::readings::NewReading;
use crate::config::{BillingConfig, DatabaseConfig, PaymentsConfig, ServeConfig};
use crate::domain::calendar::Period;
use crate::domain::money::UnitPrice;
use crate::domain::reading::ReadingSource;
use crate::domain::tariff::{CustomerClass, PriceChange, TariffVersion, Tier};
use crate::gateway::beijing::beijing_date;
use crate::sandbox::delivery::DeliveryPolicy;
use crate::sandbox::faults::Faults;
use crate::startup::gateways::{Sandbox, SandboxKeys};

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Accounts in the city.
    #[arg(long, default_value_t = 60)]
    pub accounts: u32,
    /// Where the reports go (a temporary directory when unset).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
}

/// Months of readings and bills before the current one.
const HISTORY_MONTHS: u32 = 12;

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| dir.path().join("reports"));
    std::fs::create_dir_all(&report_dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("demo.db").display());
    let mut server = crate::startup::Server::build(&demo_config(&url)).await?;
    let sandbox = server.take_sandbox().context("sandbox")?;
    let app = server.app().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let today = beijing_date(Utc::now());
    println!(
        "== a city of {} accounts, {HISTORY_MONTHS} months of readings",
        args.accounts
    );
    build_city(&app, args.accounts, today).await?;
    bill_the_year(&app, today).await?;
    println!("== customers pay yesterday through Alipay and WeChat Pay, with faults injected");
    let paid = pay_yesterday(&app, &sandbox, args.accounts).await?;
    println!(
        "   {paid} orders paid; lost, duplicated, delayed and tampered notifications included"
    );
    counters(&app, today).await?;
    let yesterday = (today - Days::new(1)).to_string();
    for channel in ["ALIPAY", "WECHAT"] {
        println!("== reconciling {channel} for {yesterday}");
        let (view, items) =
            crate::cli::run_and_report(&app, channel, &yesterday, None, &report_dir).await?;
        for item in &items {
            println!(
                "   {:<16} {:<14} {:<28} ours {:>9} gateway {:>9}  {}",
                item.class,
                item.state,
                item.out_trade_no,
                amount(item.ledger_fen),
                amount(item.gateway_fen),
                item.note.clone().unwrap_or_default()
            );
        }
        println!("   open items for finance: {}", view.open_count);
    }
    println!("== counter close for {today}");
    let closes = app.cashier_closes(&today.to_string()).await?;
    for c in &closes {
        println!(
            "   cashier {} {} by {}",
            c.close.cashier_id,
            c.outcome(),
            crate::domain::money::Money::from_fen(c.close.difference_fen.abs())
        );
    }
    crate::cli::counter_report(&report_dir, &today.to_string(), &closes)?;
    println!("== reports in {}", report_dir.display());
    let _ = stop.send(());
    let _ = serving.await;
    if args.report_dir.is_none() {
        // Keep the reports readable after exit: the temporary database goes, the reports stay.
        let kept = std::env::temp_dir().join(format!("water-billing-demo-{}", std::process::id()));
        copy_dir(&report_dir, &kept)?;
        println!("   (kept in {})", kept.display());
    }
    Ok(())
}

fn demo_config(url: &str) -> ServeConfig {
    ServeConfig {
        database: DatabaseConfig::new(url),
        grpc_addr: ([127, 0, 0, 1], 0).into(),
        http_addr: ([127, 0, 0, 1], 0).into(),
        no_migrate: false,
        billing: BillingConfig::default(),
        alipay: Default::default(),
        wechat: Default::default(),
        payments: PaymentsConfig::default(),
        sandbox: true,
        schedule: Default::default(),
        sandbox_keys: SandboxKeys {
            delivery: Some(DeliveryPolicy::for_tests()),
            ..Default::default()
        },
    }
}

fn amount(fen: Option<i64>) -> String {
    fen.map_or_else(
        || "-".to_owned(),
        |fen| crate::domain::money::Money::from_fen(fen).to_string(),
    )
}

fn price(text: &str) -> anyhow::Result<UnitPrice> {
    Ok(UnitPrice::parse(text)?)
}

async fn build_city(app: &App, accounts: u32, today: NaiveDate) -> anyhow::Result<()> {
    let start = Period::containing(today);
    let mut first = start;
    for _ in 0..HISTORY_MONTHS {
        first = first.prev();
    }
    app.upsert_tariff(TariffVersion {
        code: "RES".into(),
        customer_class: CustomerClass::Residential,
        effective_from: NaiveDate::from_ymd_opt(2020, 1, 1).context("date")?,
        tiers: vec![
            Tier {
                up_to_m3: Some(216),
                water_price: price("2.40")?,
            },
            Tier {
                up_to_m3: Some(300),
                water_price: price("3.60")?,
            },
            Tier {
                up_to_m3: None,
                water_price: price("7.20")?,
            },
        ],
        sewage_price: price("0.95")?,
        resource_price: price("0.20")?,
        base_household_size: 4,
        extra_m3_per_person: 54,
        price_change: PriceChange::ReadingDate,
    })
    .await?;
    let lockdown = (
        first.next().next().next().next(),
        first.next().next().next().next().next(),
    );
    app.schedule_closure(NewClosure {
        starts_on: lockdown.0.first_day().to_string(),
        ends_on: lockdown.1.last_day().to_string(),
        reason: "epidemic lockdown: counters closed, readers kept out".into(),
        waive_late_fees: true,
        close_counters: true,
    })
    .await?;
    for n in 0..accounts {
        let account_no = format!("C-{n:05}");
        app.create_account(NewAccount {
            account_no: account_no.clone(),
            holder_name: format!("住户 {n}"),
            address: format!("{} Lotus Lane", n + 1),
            customer_class: "RESIDENTIAL".into(),
            household_size: 2 + n % 5,
            tariff_code: "RES".into(),
        })
        .await?;
        // Account 0 has an old 4-digit register about to roll over.
        let (digits, initial) = if n == 0 {
            (4, 9_950)
        } else {
            (5, u64::from(n) * 37)
        };
        let installed_on = first.first_day() - Days::new(1);
        let meter = NewMeter {
            meter_no: format!("M-{n:05}"),
            register_digits: digits,
            initial_index: initial,
            installed_on: installed_on.to_string(),
        };
        app.install_meter(&account_no, meter).await?;
        let modulus = 10_u64.pow(digits);
        let mut index = initial;
        let mut period = first;
        while period < start {
            index = (index + 8 + u64::from((n * 7 + period.month) % 15)) % modulus;
            let locked_out = (period == lockdown.0 || period == lockdown.1) && n % 3 == 0;
            if !locked_out {
                let read_on = period.first_day() + Days::new(24);
                let reading = NewReading {
                    meter_no: format!("M-{n:05}"),
                    index,
                    read_on: read_on.to_string(),
                    source: Some(ReadingSource::Actual),
                    reading_ref: String::new(),
                };
                app.record_reading(reading).await?;
            }
            period = period.next();
        }
    }
    Ok(())
}

async fn bill_the_year(app: &App, today: NaiveDate) -> anyhow::Result<()> {
    let start = Period::containing(today);
    let mut period = start;
    for _ in 0..HISTORY_MONTHS {
        period = period.prev();
    }
    let (mut issued, mut estimated_hint) = (0, 0);
    while period < start {
        let progress = app
            .run_billing_cycle(period, period.next().first_day(), |_| {})
            .await?;
        issued += progress.issued;
        estimated_hint += progress.skipped;
        period = period.next();
    }
    let estimated = app.count_estimated_bills().await?;
    println!(
        "   {issued} bills issued over {HISTORY_MONTHS} cycles ({estimated} estimated during the lockdown, {estimated_hint} skipped)"
    );
    Ok(())
}

/// Every second account pays what it owes, yesterday (the simulators' clocks run a day behind
/// while customers pay), alternating the channels and the faults.
async fn pay_yesterday(app: &App, sandbox: &Sandbox, accounts: u32) -> anyhow::Result<u32> {
    sandbox.alipay.set_clock_offset(chrono::Duration::days(-1));
    sandbox.wechat.set_clock_offset(chrono::Duration::days(-1));
    let mut paid = 0;
    for n in (0..accounts).step_by(2) {
        let channel = if n % 4 == 0 { "ALIPAY" } else { "WECHAT" };
        let faults = match (n / 2) % 6 {
            0 => Faults {
                drop_next_notifications: 1,
                ..Default::default()
            },
            1 => Faults {
                duplicate: 3,
                ..Default::default()
            },
            2 => Faults {
                delay_ms: 100,
                ..Default::default()
            },
            3 => Faults {
                bad_signature_next: true,
                ..Default::default()
            },
            4 => Faults {
                wrong_amount_next: true,
                ..Default::default()
            },
            _ => Faults::default(),
        };
        // Account 2 pays the same amount twice: finance sees a DUPLICATE to refund or keep.
        let times = if n == 2 { 2 } else { 1 };
        let mut first_amount = String::new();
        for attempt in 0..times {
            let order = app
                .create_payment(NewPayment {
                    account_no: format!("C-{n:05}"),
                    channel: channel.into(),
                    amount: if attempt == 0 {
                        String::new()
                    } else {
                        first_amount.clone()
                    },
                    idempotency_key: format!("demo-{n}-{attempt}"),
                })
                .await;
            let Ok(order) = order else { continue };
            first_amount =
                crate::domain::money::Money::from_fen(order.payment.amount_fen).to_string();
            let number = order.payment.out_trade_no;
            match channel {
                "ALIPAY" => {
                    sandbox.alipay.set_faults(faults.clone());
                    sandbox.alipay.pay(&number)?;
                }
                _ => {
                    sandbox.wechat.set_faults(faults.clone());
                    sandbox.wechat.pay(&number)?;
                }
            }
            paid += 1;
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    sandbox.alipay.set_clock_offset(chrono::Duration::zero());
    sandbox.wechat.set_clock_offset(chrono::Duration::zero());
    Ok(paid)
}

async fn counters(app: &App, today: NaiveDate) -> anyhow::Result<()> {
    for (n, amount) in [(1_u32, "20.00"), (3, "35.50"), (5, "12.80")] {
        app.record_counter_payment(
            &format!("C-{n:05}"),
            amount,
            "CASHIER-01",
            &format!("R-{}-{n}", today.ordinal()),
        )
        .await?;
    }
    // The cashier counts 0.50 less than recorded: a short (短款) for finance, not a customer.
    app.close_cashier_day("CASHIER-01", &today.to_string(), "67.80")
        .await?;
    Ok(())
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}
