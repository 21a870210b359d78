//! The account row as the lock on an account's money, and its prepayment balance column.
//!
//! Every use case that reads an account's prepayment or open bills and then changes them
//! takes the account rows first ([`lock_accounts`], [`lock_account`]) inside a write
//! transaction (`crate::db::begin_write`): PostgreSQL locks the rows `FOR UPDATE`, in id order
//! so two batches never deadlock; SQLite's `BEGIN IMMEDIATE` has already made the transaction
//! the only writer. `accounts.prepayment_fen` mirrors the PREPAYMENT ledger of the journal
//! per account; every writer of PREPAYMENT postings moves it by the same amount in the same
//! transaction ([`adjust_prepayment`], [`adjust_prepayments`]), and a `CHECK` keeps it from
//! going below zero (migration `m20261204_000006_prepayment_balance`). Going below zero is
//! refused as a typed [`NegativePrepayment`], never stored.

use std::collections::BTreeMap;

use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entity::account;
use super::{DbError, DbResult};
use crate::domain::journal::{JournalEntry, Ledger};

/// The constraint's name as migration 6 created it (applied migrations never change).
const PREPAYMENT_CHECK: &str = "ck_accounts_prepayment_non_negative";

/// Accounts per set-wise balance update: two bound values per account, far under both
/// databases' parameter limits.
const ADJUST_ACCOUNTS_MAX: usize = 1_000;

/// A movement that would take an account's prepayment below zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "account id {account_id} holds {balance_fen} fen of prepayment; taking {taken_fen} fen would leave it negative"
)]
pub struct NegativePrepayment {
    pub account_id: i64,
    pub balance_fen: i64,
    pub taken_fen: i64,
}

impl From<NegativePrepayment> for DbError {
    fn from(err: NegativePrepayment) -> Self {
        DbError::Refused(err.to_string())
    }
}

/// Locks the accounts with these ids (in id order) and reads them inside the lock. Ids that
/// do not exist are simply absent from the answer.
pub async fn lock_accounts(
    txn: &impl ConnectionTrait,
    ids: &[i64],
) -> DbResult<Vec<account::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = account::Entity::find()
        .filter(super::queries::ids_in(account::Column::Id, ids))
        .order_by_asc(account::Column::Id);
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        query = query.lock_exclusive();
    }
    let mut wanted: Vec<i64> = ids.to_vec();
    wanted.sort_unstable();
    // A dense batch is read as one id range: rows of the range not asked for are dropped
    // (locked too, harmlessly: concurrent batches cover disjoint ranges).
    Ok(query
        .all(txn)
        .await?
        .into_iter()
        .filter(|row| wanted.binary_search(&row.id).is_ok())
        .collect())
}

/// Locks one account and reads it inside the lock.
pub async fn lock_account(txn: &impl ConnectionTrait, account_id: i64) -> DbResult<account::Model> {
    lock_accounts(txn, &[account_id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| DbError::NotFound(format!("account id {account_id} does not exist")))
}

/// What `entry` does to the PREPAYMENT ledger: credits minus debits, in fen.
pub fn prepayment_delta_fen(entry: &JournalEntry) -> i64 {
    entry
        .postings
        .iter()
        .filter(|p| p.ledger == Ledger::Prepayment)
        .map(|p| p.credit.to_fen() - p.debit.to_fen())
        .sum()
}

/// Moves one account's prepayment by `delta_fen`, refusing to go below zero.
pub async fn adjust_prepayment(
    txn: &impl ConnectionTrait,
    account_id: i64,
    delta_fen: i64,
) -> DbResult<()> {
    if delta_fen == 0 {
        return Ok(());
    }
    let column = account::Column::PrepaymentFen;
    let moved = account::Entity::update_many()
        .col_expr(column, Expr::col(column).add(delta_fen))
        .filter(account::Column::Id.eq(account_id))
        .filter(Expr::col(column).add(delta_fen).gte(0))
        .exec(txn)
        .await
        .map_err(from_db)?;
    if moved.rows_affected == 1 {
        return Ok(());
    }
    let balance: Option<i64> = account::Entity::find_by_id(account_id)
        .select_only()
        .column(column)
        .into_tuple()
        .one(txn)
        .await?;
    match balance {
        Some(balance_fen) => Err(NegativePrepayment {
            account_id,
            balance_fen,
            taken_fen: -delta_fen,
        }
        .into()),
        None => Err(DbError::NotFound(format!(
            "account id {account_id} does not exist"
        ))),
    }
}

/// Moves several accounts' prepayment at once (account id -> delta in fen), a bounded number
/// of accounts per statement. The constraint refuses any that would go below zero.
pub async fn adjust_prepayments(
    txn: &impl ConnectionTrait,
    deltas: &BTreeMap<i64, i64>,
) -> DbResult<()> {
    let moving: Vec<(i64, i64)> = deltas
        .iter()
        .filter(|(_, delta)| **delta != 0)
        .map(|(id, delta)| (*id, *delta))
        .collect();
    let column = account::Column::PrepaymentFen;
    for chunk in moving.chunks(ADJUST_ACCOUNTS_MAX) {
        let mut by_account = CaseStatement::new();
        for (id, delta) in chunk {
            by_account = by_account.case(account::Column::Id.eq(*id), Expr::val(*delta));
        }
        let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
        let delta: Expr = by_account.into();
        let moved = account::Entity::update_many()
            .col_expr(column, Expr::col(column).add(delta))
            .filter(account::Column::Id.is_in(ids))
            .exec(txn)
            .await
            .map_err(from_db)?;
        if moved.rows_affected != chunk.len() as u64 {
            return Err(super::corrupt(
                "prepayment update",
                format!("moved {} of {} accounts", moved.rows_affected, chunk.len()),
            ));
        }
    }
    Ok(())
}

/// A database error, with the prepayment constraint's violation made a typed refusal.
pub fn from_db(err: DbErr) -> DbError {
    if is_negative_prepayment(&err) {
        tracing::error!(error = %err, "a write would have left a prepayment negative");
        return DbError::Refused(
            "the write would leave an account's prepayment negative; nothing was changed".into(),
        );
    }
    DbError::Database(err)
}

/// Whether the prepayment constraint refused the statement (both databases name it).
pub fn is_negative_prepayment(err: &DbErr) -> bool {
    err.to_string().contains(PREPAYMENT_CHECK)
}
