//! `bench webhooks`: verified, committed Alipay notifications per second end to end over HTTP
//! (RSA2 verification, raw record, settlement, allocation, journal, commit, then `success`),
//! with latency percentiles, and beside it the database's own rate for the same writes with
//! no HTTP and no crypto.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use sea_orm::{EntityTrait, Set};
use tokio::sync::Semaphore;

use super::billing::{bench_database, describe, peak_rss_mib, report};
use crate::app::notifications::{RawNotification, record};
use crate::app::settlement::{PENDING, PaidEvidence, PaymentChannel, settle};
use crate::config::{BillingConfig, DatabaseConfig, ServeConfig};
use crate::db::entity::{account, payment};
use crate::gateway::alipay::notify::notification_sign_content;
use crate::gateway::alipay::sign::{Params, form_body};
use crate::gateway::keys::PrivateKey;
use crate::startup::gateways::{SANDBOX_ALIPAY_APP_ID, SANDBOX_ALIPAY_SELLER_ID, SandboxKeys};

#[derive(Debug, Clone, Args)]
pub struct WebhookBench {
    /// Notifications to post (each for its own PENDING order).
    #[arg(long, default_value_t = 10_000)]
    pub notifications: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Notifications posted first and not measured, so connection pools and caches are warm
    /// as in a running service.
    #[arg(long, default_value_t = 1_000)]
    pub warmup: u64,
    /// `sqlite` (a fresh file) or a PostgreSQL server URL (a fresh database is created).
    #[arg(long, env = "BILLING_BENCH_DATABASE", default_value = "sqlite")]
    pub database: String,
}

const AMOUNT_FEN: i64 = 100;

pub async fn run(bench: WebhookBench) -> anyhow::Result<()> {
    let database = bench_database(&bench.database).await?;
    let gateway_pem = generated_key_pem()?;
    let gateway_key = PrivateKey::parse(&gateway_pem)?;
    let mut config = serve_config(&database.url);
    config.sandbox_keys = SandboxKeys {
        merchant_pem: None,
        gateway_pem: Some(gateway_pem),
        delivery: None,
    };
    let mut server = crate::startup::Server::build(&config).await?;
    let _sandbox = server.take_sandbox();
    let app = server.app().clone();
    let url = format!("http://{}/notify/alipay", server.http_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    println!(
        "water-billing bench webhooks: {} notifications, {} in flight, {}",
        bench.notifications,
        bench.concurrency,
        describe(&bench.database)
    );
    let account_id = seed_accounts(&app, bench.notifications).await?;
    seed_orders(
        &app,
        account_id,
        "WBWARM",
        bench.warmup.min(bench.notifications),
    )
    .await?;
    seed_orders(&app, account_id, "WBHTTP", bench.notifications).await?;
    let warmup = signed_bodies(
        &gateway_key,
        "WBWARM",
        bench.warmup.min(bench.notifications),
    )
    .await?;
    post_all(&url, warmup, bench.concurrency).await?;
    let bodies = signed_bodies(&gateway_key, "WBHTTP", bench.notifications).await?;
    let started = Instant::now();
    let latencies = post_all(&url, bodies, bench.concurrency).await?;
    report(
        "end to end over HTTP (verify, record, post, commit)",
        bench.notifications,
        "notes",
        started.elapsed(),
    );
    print_latencies(latencies);
    seed_orders(&app, account_id, "WBDB", bench.notifications).await?;
    let started = Instant::now();
    database_only(&app, "WBDB", bench.notifications, bench.concurrency).await?;
    report(
        "database only (record, post, commit; no HTTP, no RSA)",
        bench.notifications,
        "notes",
        started.elapsed(),
    );
    println!("peak RSS: {} MiB", peak_rss_mib());
    let _ = stop.send(());
    let _ = serving.await;
    if let Some((admin, name)) = database.admin {
        use sea_orm::ConnectionTrait;
        drop(app);
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    Ok(())
}

fn serve_config(url: &str) -> ServeConfig {
    ServeConfig {
        database: DatabaseConfig {
            db_pool_max: 32,
            ..DatabaseConfig::new(url)
        },
        grpc_addr: ([127, 0, 0, 1], 0).into(),
        http_addr: ([127, 0, 0, 1], 0).into(),
        no_migrate: false,
        billing: BillingConfig::default(),
        alipay: Default::default(),
        wechat: Default::default(),
        payments: Default::default(),
        sandbox: true,
        schedule: Default::default(),
        sandbox_keys: SandboxKeys::default(),
    }
}

fn generated_key_pem() -> anyhow::Result<String> {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
    Ok(key.to_pkcs8_pem(LineEnding::LF)?.to_string())
}

/// One account per order, as in real traffic: payments of different customers do not wait
/// for each other's account lock.
async fn seed_accounts(app: &crate::app::App, count: u64) -> anyhow::Result<i64> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let rows: Vec<account::ActiveModel> = (0..count)
        .map(|i| account::ActiveModel {
            account_no: Set(format!("BENCH-WH-{i:08}")),
            holder_name: Set("Bench".into()),
            address: Set("Bench".into()),
            customer_class: Set("RESIDENTIAL".into()),
            household_size: Set(4),
            tariff_code: Set("BENCH".into()),
            status: Set("ACTIVE".into()),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(1_000) {
        account::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&app.db)
            .await?;
    }
    let first = account::Entity::find()
        .filter(account::Column::AccountNo.eq("BENCH-WH-00000000"))
        .one(&app.db)
        .await?
        .context("seeded account")?;
    Ok(first.id)
}

async fn seed_orders(
    app: &crate::app::App,
    first_account_id: i64,
    prefix: &str,
    count: u64,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let rows: Vec<payment::ActiveModel> = (0..count)
        .map(|i| payment::ActiveModel {
            out_trade_no: Set(format!("{prefix}{i:010}")),
            account_id: Set(first_account_id + i as i64),
            channel: Set("ALIPAY".into()),
            amount_fen: Set(AMOUNT_FEN),
            status: Set(PENDING.into()),
            created_at: Set(now),
            expires_at: Set(Some(now + chrono::Duration::days(1))),
            refunded_fen: Set(0),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(1_000) {
        payment::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&app.db)
            .await?;
    }
    Ok(())
}

fn notification(prefix: &str, i: u64) -> Params {
    let mut params = Params::new();
    // Distinct gateway trade numbers per prefix (warm-up, measured, database only).
    let series: u32 = prefix.bytes().map(u32::from).sum::<u32>() % 10_000;
    let trade_no = format!("2025010122{series:04}{i:014}");
    for (k, v) in [
        ("notify_id", format!("bench{i}")),
        ("notify_type", "trade_status_sync".into()),
        ("notify_time", "2025-01-01 10:00:22".into()),
        ("app_id", SANDBOX_ALIPAY_APP_ID.into()),
        ("seller_id", SANDBOX_ALIPAY_SELLER_ID.into()),
        ("out_trade_no", format!("{prefix}{i:010}")),
        ("trade_no", trade_no),
        ("trade_status", "TRADE_SUCCESS".into()),
        ("total_amount", "1.00".into()),
        ("gmt_payment", "2025-01-01 10:00:21".into()),
        ("charset", "utf-8".into()),
        ("version", "1.0".into()),
    ] {
        params.insert(k.into(), v);
    }
    params
}

/// Signs every notification up front (on all cores), so the timed part is the service's.
async fn signed_bodies(key: &PrivateKey, prefix: &str, count: u64) -> anyhow::Result<Vec<String>> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let key = key.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::task::spawn_blocking(
            move || -> anyhow::Result<Vec<(u64, String)>> {
                (w..count)
                    .step_by(workers as usize)
                    .map(|i| {
                        let mut params = notification(&prefix, i);
                        let sign =
                            key.sign_base64(notification_sign_content(&params).as_bytes())?;
                        params.insert("sign".into(), sign);
                        params.insert("sign_type".into(), "RSA2".into());
                        Ok((i, form_body(&params)))
                    })
                    .collect()
            },
        ));
    }
    let mut all = Vec::with_capacity(count as usize);
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, body)| body).collect())
}

async fn post_all(
    url: &str,
    bodies: Vec<String>,
    concurrency: usize,
) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(bodies.len());
    for body in bodies {
        let permit = Arc::clone(&gate).acquire_owned().await?;
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let answer = client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await?
                .text()
                .await?;
            drop(permit);
            anyhow::ensure!(answer == "success", "notification answered {answer:?}");
            Ok::<_, anyhow::Error>(started.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await??);
    }
    Ok(latencies)
}

fn print_latencies(mut latencies: Vec<Duration>) {
    latencies.sort();
    let at = |q: usize| {
        latencies
            .get((latencies.len() * q / 100).min(latencies.len().saturating_sub(1)))
            .copied()
    };
    // Whole microseconds shown as milliseconds with three decimals: no float needed.
    let ms = |d: Option<Duration>| {
        let micros = d.map_or(0, |d| d.as_micros());
        format!("{}.{:03}", micros / 1_000, micros % 1_000)
    };
    println!(
        "latency p50 {} ms, p99 {} ms, max {} ms",
        ms(at(50)),
        ms(at(99)),
        ms(latencies.last().copied())
    );
}

/// The same records and postings, one transaction per notification, no HTTP, no RSA.
async fn database_only(
    app: &crate::app::App,
    prefix: &str,
    count: u64,
    concurrency: usize,
) -> anyhow::Result<()> {
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for i in 0..count {
        let permit = Arc::clone(&gate).acquire_owned().await?;
        let app = app.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let params = notification(&prefix, i);
            let body = form_body(&params);
            let evidence = PaidEvidence {
                out_trade_no: format!("{prefix}{i:010}"),
                gateway_trade_no: params.get("trade_no").cloned().unwrap_or_default(),
                amount_fen: AMOUNT_FEN,
                paid_at: Utc::now(),
                source: crate::domain::evidence::EvidenceSource::Notify,
            };
            let txn = crate::db::begin_write(&app.db).await?;
            settle(&txn, PaymentChannel::Alipay, &evidence, &app.settings).await?;
            let raw = RawNotification {
                headers: &[],
                body: body.as_bytes(),
            };
            record(
                &txn,
                "ALIPAY",
                &raw,
                true,
                crate::domain::evidence::NotificationOutcome::Posted,
                None,
                Some(&evidence.out_trade_no),
            )
            .await?;
            txn.commit().await.context("commit")?;
            drop(permit);
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
