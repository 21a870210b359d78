//! The database adapter: connecting (SQLite by default, PostgreSQL in production), applying
//! migrations safely when several replicas start together, and the queries the use cases run.
//!
//! Queries are plain functions taking a connection or transaction, so a use case decides where
//! its transaction starts and ends. Rows become domain values here, never in `grpc/`.

pub mod bill_lines;
pub mod entity;
mod error;
mod nodelay;
pub mod prepayment;
pub mod queries;
pub mod writes;

pub use error::{DbError, DbResult, corrupt};

use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    Statement, TransactionTrait,
};

/// How long a SQLite connection waits for the write lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;
/// Rows a SQLite connection's worker thread may run ahead of the reader (sqlx's default is 50).
/// A large result is then read a buffer at a time instead of woken for row by row (see
/// `app::reconciliation::ledger`); ≈ 1 MiB of rows at most per open query.
pub const SQLITE_ROW_BUFFER_ROWS: usize = 4_096;
/// Arbitrary but fixed key of the PostgreSQL advisory lock that serialises migrations.
const MIGRATION_LOCK_KEY: i64 = 0x5742_4D49_4752; // "WBMIGR"

/// What a connection pool needs; `config` maps the `BILLING_DATABASE_URL` / `BILLING_DB_*`
/// settings into it, so this adapter never sees flags.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    pub url: String,
    pub pool_max: u32,
    pub acquire_timeout_ms: u64,
}

pub async fn connect(settings: impl Into<ConnectSettings>) -> Result<DatabaseConnection, DbErr> {
    let config = settings.into();
    let mut options = ConnectOptions::new(config.url.clone());
    options
        .max_connections(config.pool_max)
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS))
                .foreign_keys(true)
                .row_buffer_size(SQLITE_ROW_BUFFER_ROWS)
        });
    let port = postgres_port(&config.url);
    options.map_sqlx_postgres_pool_opts(move |pool| {
        pool.after_connect(move |_connection, _meta| {
            Box::pin(async move {
                if let Err(err) = nodelay::set_on_sockets_to(port) {
                    tracing::warn!(error = %err, "could not set TCP_NODELAY on database sockets");
                }
                Ok(())
            })
        })
    });
    Database::connect(options).await
}

/// The server port of a PostgreSQL URL (5432 unless it names one).
fn postgres_port(url: &str) -> u16 {
    if !url.starts_with("postgres") {
        return 5432;
    }
    url.parse::<sea_orm::sqlx::postgres::PgConnectOptions>()
        .map_or(5432, |options| options.get_port())
}

/// Applies pending migrations. On PostgreSQL an advisory lock makes replicas that start together
/// take turns, so each migration runs exactly once; SQLite's own write lock does the same there.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Migrator::up(db, None).await;
    }
    // A transaction-scoped lock: released by commit or rollback, even if this replica dies.
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
    ))
    .await?;
    match Migrator::up(&txn, None).await {
        Ok(()) => txn.commit().await,
        Err(err) => {
            txn.rollback().await?;
            Err(err)
        }
    }
}

/// Answers whether the database is reachable.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    db.query_one_raw(Statement::from_string(backend, "SELECT 1"))
        .await?;
    Ok(())
}

/// Starts a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`), so concurrent writers queue on the busy timeout instead of failing
/// with a stale snapshot when they upgrade from reading; PostgreSQL ignores the mode.
pub async fn begin_write(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    db.begin_with_options(sea_orm::TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}
