//! `bench billing --accounts N` seeds N residential accounts, each with a meter and twelve
//! monthly readings, then times two billing cycles through the same use case `RunBillingCycle`
//! calls (the first bills of the year, then a steady-state month with history), and finally
//! the database's own limit: inserting the same number of bill rows with no reads and no rules.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use clap::Args;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, Set,
    TransactionTrait,
};

use crate::app::{App, BillingSettings};
use crate::config::DatabaseConfig;
use crate::db::entity::{account, meter, reading};
use crate::domain::calendar::Period;
use crate::domain::reading::{ReadingSource, ReadingStatus};

#[derive(Debug, Clone, Args)]
pub struct BillingBench {
    /// Accounts to seed.
    #[arg(long, default_value_t = 10_000)]
    pub accounts: u64,
    /// `sqlite` (a fresh file in a temporary directory) or a PostgreSQL server URL, on which
    /// the bench creates and afterwards drops a fresh database.
    #[arg(long, env = "BILLING_BENCH_DATABASE", default_value = "sqlite")]
    pub database: String,
    /// Accounts per billing-cycle transaction.
    #[arg(long, default_value_t = 5_000)]
    pub batch_size: u32,
}

/// Rows per seeding INSERT (a reading row has 9 columns: well under the parameter limits).
const SEED_ROWS_PER_INSERT: usize = 2_000;
const YEAR: i32 = 2025;

pub struct BenchDatabase {
    pub url: String,
    pub admin: Option<(DatabaseConnection, String)>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn bench_database(spec: &str) -> anyhow::Result<BenchDatabase> {
    if spec == "sqlite" {
        let dir = tempfile::tempdir()?;
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        return Ok(BenchDatabase {
            url,
            admin: None,
            _dir: Some(dir),
        });
    }
    let admin = Database::connect(spec)
        .await
        .with_context(|| "connecting to the bench server")?;
    let name = format!("wb_bench_{}", std::process::id());
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    let base = spec.rsplit_once('/').map_or(spec, |(base, _)| base);
    Ok(BenchDatabase {
        url: format!("{base}/{name}"),
        admin: Some((admin, name)),
        _dir: None,
    })
}

pub async fn run(bench: BillingBench) -> anyhow::Result<()> {
    let database = bench_database(&bench.database).await?;
    let db = crate::db::connect(&DatabaseConfig::new(database.url.clone())).await?;
    crate::db::migrate(&db).await?;
    let settings = BillingSettings {
        cycle_batch_size: bench.batch_size as usize,
        ..BillingSettings::default()
    };
    let app = App::new(db.clone(), settings);
    println!(
        "water-billing bench billing: {} accounts on {}",
        bench.accounts,
        describe(&bench.database)
    );
    let started = Instant::now();
    let seeded_rows = seed(&app, bench.accounts).await?;
    report(
        "seed (accounts, meters, 12 readings each)",
        seeded_rows,
        "rows",
        started.elapsed(),
    );
    // A production database has statistics and a visibility map for its readings: give the
    // freshly seeded one the same, so the cycle is not timed against autovacuum.
    let started = Instant::now();
    let maintenance = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => "VACUUM ANALYZE",
        _ => "ANALYZE",
    };
    db.execute_unprepared(maintenance).await?;
    println!(
        "{maintenance} after seeding: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    for month in [1, 2] {
        let period = Period::new(YEAR, month)?;
        let issued_on = period.last_day().succ_opt().unwrap_or(period.last_day());
        let started = Instant::now();
        let progress = app.run_billing_cycle(period, issued_on, |_| {}).await?;
        anyhow::ensure!(
            progress.issued == bench.accounts,
            "expected every account billed: {progress:?}"
        );
        report(
            &format!("billing cycle {period}"),
            progress.issued,
            "bills",
            started.elapsed(),
        );
    }
    let cycle_peak = peak_rss_mib();
    let rows_per_bill = rows_per_bill(&db, bench.accounts * 2).await?;
    let started = Instant::now();
    raw_insert(&db, bench.batch_size as usize).await?;
    report(
        "raw insert of the same bill rows, no logic",
        bench.accounts,
        "bills",
        started.elapsed(),
    );
    println!(
        "rows per bill: {rows_per_bill:.1}; peak RSS: {cycle_peak} MiB after seeding and the \
         cycles, {} MiB at the end",
        peak_rss_mib()
    );
    drop(db);
    if let Some((admin, name)) = database.admin {
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    Ok(())
}

pub fn describe(spec: &str) -> &str {
    if spec == "sqlite" || spec.starts_with("sqlite:") {
        "SQLite (file, WAL)"
    } else {
        "PostgreSQL"
    }
}

pub fn report(what: &str, count: u64, unit: &str, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    #[allow(clippy::cast_precision_loss, clippy::float_arithmetic)]
    let rate = count as f64 / secs;
    println!("{what:<48} {count:>9} {unit:<5} {secs:>8.2} s {rate:>10.0} {unit}/s");
}

async fn seed(app: &App, accounts: u64) -> anyhow::Result<u64> {
    app.upsert_tariff(residential_tariff()?).await?;
    let txn = app.db.begin().await?;
    let mut rows = 0;
    let mut first = 0;
    while first < accounts {
        let last = (first + SEED_ROWS_PER_INSERT as u64 / 12).min(accounts);
        rows += seed_chunk(&txn, first, last).await?;
        first = last;
    }
    txn.commit().await?;
    Ok(rows)
}

async fn seed_chunk(db: &impl ConnectionTrait, first: u64, last: u64) -> anyhow::Result<u64> {
    let installed_on = NaiveDate::from_ymd_opt(YEAR - 1, 12, 31).context("date")?;
    let accounts: Vec<account::ActiveModel> = (first..last)
        .map(|n| account::ActiveModel {
            account_no: Set(format!("BENCH-{n:08}")),
            holder_name: Set(format!("Holder {n}")),
            address: Set(format!("{n} Bench Road")),
            customer_class: Set("RESIDENTIAL".into()),
            household_size: Set(3 + (n % 4) as i32),
            tariff_code: Set("BENCH".into()),
            status: Set("ACTIVE".into()),
            ..Default::default()
        })
        .collect();
    account::Entity::insert_many(accounts)
        .exec_without_returning(db)
        .await?;
    let ids = account_ids(db, first, last).await?;
    let meters: Vec<meter::ActiveModel> = ids
        .iter()
        .map(|(n, id)| meter::ActiveModel {
            meter_no: Set(format!("BM-{n:08}")),
            account_id: Set(*id),
            register_digits: Set(6),
            initial_index: Set(0),
            installed_on: Set(installed_on),
            removed_on: Set(None),
            ..Default::default()
        })
        .collect();
    meter::Entity::insert_many(meters)
        .exec_without_returning(db)
        .await?;
    let meter_ids = meter_ids(db, first, last).await?;
    let mut readings = Vec::with_capacity(meter_ids.len() * 12);
    for (n, meter_id) in meter_ids {
        let mut index = 0_i64;
        for month in 1..=12_u32 {
            let volume = ((n * 7 + u64::from(month) * 3) % 15 + 5) as i64;
            index += volume;
            readings.push(reading::ActiveModel {
                meter_id: Set(meter_id),
                index_value: Set(index),
                read_on: Set(NaiveDate::from_ymd_opt(YEAR, month, 28).context("date")?),
                source: Set(ReadingSource::SmartMeter.as_str().into()),
                reading_ref: Set(None),
                status: Set(ReadingStatus::Accepted.as_str().into()),
                note: Set(None),
                volume_m3: Set(volume),
                ..Default::default()
            });
        }
    }
    let count = readings.len() as u64;
    reading::Entity::insert_many(readings)
        .exec_without_returning(db)
        .await?;
    Ok((last - first) * 2 + count)
}

async fn account_ids(
    db: &impl ConnectionTrait,
    first: u64,
    last: u64,
) -> anyhow::Result<Vec<(u64, i64)>> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let rows = account::Entity::find()
        .filter(account::Column::AccountNo.gte(format!("BENCH-{first:08}")))
        .filter(account::Column::AccountNo.lt(format!("BENCH-{last:08}")))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|a| (bench_number(&a.account_no), a.id))
        .collect())
}

async fn meter_ids(
    db: &impl ConnectionTrait,
    first: u64,
    last: u64,
) -> anyhow::Result<Vec<(u64, i64)>> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let rows = meter::Entity::find()
        .filter(meter::Column::MeterNo.gte(format!("BM-{first:08}")))
        .filter(meter::Column::MeterNo.lt(format!("BM-{last:08}")))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| (bench_number(&m.meter_no), m.id))
        .collect())
}

fn bench_number(code: &str) -> u64 {
    code.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_default()
}

fn residential_tariff() -> anyhow::Result<crate::domain::tariff::TariffVersion> {
    use crate::domain::money::UnitPrice;
    use crate::domain::tariff::{CustomerClass, PriceChange, TariffVersion, Tier};
    Ok(TariffVersion {
        code: "BENCH".into(),
        customer_class: CustomerClass::Residential,
        effective_from: NaiveDate::from_ymd_opt(2020, 1, 1).context("date")?,
        tiers: vec![
            Tier {
                up_to_m3: Some(216),
                water_price: UnitPrice::parse("2.40")?,
            },
            Tier {
                up_to_m3: Some(300),
                water_price: UnitPrice::parse("3.60")?,
            },
            Tier {
                up_to_m3: None,
                water_price: UnitPrice::parse("7.20")?,
            },
        ],
        sewage_price: UnitPrice::parse("0.95")?,
        resource_price: UnitPrice::parse("0.20")?,
        base_household_size: 4,
        extra_m3_per_person: 54,
        price_change: PriceChange::ReadingDate,
    })
}

async fn rows_per_bill(db: &DatabaseConnection, bills: u64) -> anyhow::Result<f64> {
    let mut rows = 0_i64;
    for table in [
        "bills",
        "bill_segments",
        "bill_usage",
        "journal_entries",
        "journal_postings",
    ] {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await?
            .context("count")?;
        rows += row.try_get::<i64>("", "n")?;
    }
    #[allow(clippy::cast_precision_loss, clippy::float_arithmetic)]
    Ok(rows as f64 / bills.max(1) as f64)
}

/// The same rows a bill writes (bill with four lines inline, segment, usage; one journal
/// entry with five postings per batch), built from constants and inserted in the same
/// batches: the database's own limit.
async fn raw_insert(db: &DatabaseConnection, batch_size: usize) -> anyhow::Result<()> {
    use crate::db::entity::{bill, bill_segment, bill_usage, journal_entry, journal_posting};
    use sea_orm::QuerySelect;
    let day = NaiveDate::from_ymd_opt(2030, 1, 31).context("date")?;
    let lines = r#"[{"line_no":1,"kind":"WATER_TIER_1","volume_m3":12,"unit_price":"2.40","amount_fen":2880},{"line_no":2,"kind":"SEWAGE","volume_m3":12,"unit_price":"0.95","amount_fen":1140},{"line_no":3,"kind":"RESOURCE_TAX","volume_m3":12,"unit_price":"0.20","amount_fen":240},{"line_no":4,"kind":"ADJUSTMENT","volume_m3":0,"unit_price":"0","amount_fen":0}]"#;
    let ids: Vec<i64> = account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    for chunk in ids.chunks(batch_size) {
        let txn = db.begin().await?;
        let no = |id: &i64| format!("RAW-{id}");
        insert(
            &txn,
            chunk.iter().map(|id| bill::ActiveModel {
                bill_no: Set(no(id)),
                account_id: Set(*id),
                period: Set("2030-01".into()),
                estimated: Set(false),
                volume_m3: Set(12),
                period_from: Set(day),
                period_to: Set(day),
                total_fen: Set(4260),
                principal_paid_fen: Set(0),
                late_fee_paid_fen: Set(0),
                prepayment_applied_fen: Set(0),
                status: Set("UNPAID".into()),
                issued_on: Set(day),
                due_on: Set(day),
                lines: Set(lines.into()),
                ..Default::default()
            }),
        )
        .await?;
        insert(
            &txn,
            chunk.iter().map(|id| bill_segment::ActiveModel {
                bill_no: Set(no(id)),
                meter_id: Set(*id),
                meter_seq: Set(1000),
                previous_index: Set(1),
                current_index: Set(13),
                volume_m3: Set(12),
                actual_index: Set(Some(13)),
                read_on: Set(day),
                last_actual_index: Set(13),
                last_actual_read_on: Set(day),
                ..Default::default()
            }),
        )
        .await?;
        insert(
            &txn,
            chunk.iter().map(|id| bill_usage::ActiveModel {
                bill_no: Set(no(id)),
                account_id: Set(*id),
                year: Set(2030),
                volume_m3: Set(12),
                ..Default::default()
            }),
        )
        .await?;
        let key = format!("RAW:{}", chunk[0]);
        insert(
            &txn,
            std::iter::once(journal_entry::ActiveModel {
                entry_key: Set(key.clone()),
                kind: Set("RAW".into()),
                account_id: Set(None),
                bill_no: Set(None),
                posted_on: Set(day),
                ..Default::default()
            }),
        )
        .await?;
        insert(
            &txn,
            (0..5).map(|_| journal_posting::ActiveModel {
                entry_key: Set(key.clone()),
                ledger: Set("RECEIVABLE".into()),
                account_id: Set(None),
                debit_fen: Set(100),
                credit_fen: Set(0),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await?;
    }
    Ok(())
}

/// The same insert path the billing cycle uses (multi-row `VALUES` on SQLite, `UNNEST`
/// arrays on PostgreSQL).
async fn insert<A>(db: &impl ConnectionTrait, rows: impl Iterator<Item = A>) -> anyhow::Result<()>
where
    A: ActiveModelTrait + Send,
{
    let rows: Vec<A> = rows.collect();
    crate::db::writes::insert_chunked::<A::Entity, A>(db, rows).await?;
    Ok(())
}

/// Peak resident memory of this process, from /proc (0 where unavailable).
pub fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|kb| kb.parse::<u64>().ok())
                })
        })
        .map_or(0, |kb| kb / 1024)
}
