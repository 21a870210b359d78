//! Database migrations for water-billing, shared by SQLite and PostgreSQL.
//!
//! Each migration is a self-contained file with its own `DeriveIden` enums, so history never
//! depends on today's entities. Applied migrations are never edited: a change is a new file.
//! Money is stored as whole fen (`BIGINT`), exact on both databases (SQLite's NUMERIC affinity
//! would silently turn "192.15" into a float); unit prices are exact decimal strings.

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_billing_core;
mod m20261129_000002_payments;
mod m20261129_000003_reconciliation;
mod m20261202_000004_statement_rows;
mod m20261203_000005_compact_bills;
mod m20261204_000006_prepayment_balance;
mod m20261204_000007_refund_cashier;
mod m20261204_000008_discrepancy_without_run;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_billing_core::Migration),
            Box::new(m20261129_000002_payments::Migration),
            Box::new(m20261129_000003_reconciliation::Migration),
            Box::new(m20261202_000004_statement_rows::Migration),
            Box::new(m20261203_000005_compact_bills::Migration),
            Box::new(m20261204_000006_prepayment_balance::Migration),
            Box::new(m20261204_000007_refund_cashier::Migration),
            Box::new(m20261204_000008_discrepancy_without_run::Migration),
        ]
    }
}
