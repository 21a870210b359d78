//! Service tests: the real server on port 0 with a fresh database, called through the generated
//! gRPC client. `BILLING_TEST_DATABASE_URL=postgres://...` runs the same suite on PostgreSQL
//! (each test gets its own database there); the default is a fresh SQLite file per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod bills;
mod closures;
mod counter_refunds;
mod cycle;
mod enums;
mod helpers;
mod money_model;
mod payments;
mod prepayment_race;
mod readings;
mod reconciliation;
mod refunds;
mod resolutions;
mod schema_migrations;
mod server;
mod tariffs;
