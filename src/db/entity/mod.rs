//! sea-orm entities, one per table of `migrations/`. They mirror the schema and nothing more:
//! conversion to domain types lives in `db/` beside the queries.

pub mod account;
pub mod bill;
pub mod bill_segment;
pub mod bill_usage;
pub mod cashier_close;
pub mod closure;
pub mod discrepancy;
pub mod discrepancy_action;
pub mod journal_entry;
pub mod journal_posting;
pub mod meter;
pub mod notification;
pub mod payment;
pub mod payment_allocation;
pub mod reading;
pub mod reconciliation_run;
pub mod refund;
pub mod statement_row;
pub mod suspense_item;
pub mod tariff_version;
