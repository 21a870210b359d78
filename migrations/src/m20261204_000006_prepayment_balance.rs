//! Each account carries its prepayment balance (`accounts.prepayment_fen`), and the database
//! refuses to let it go below zero (`CHECK (prepayment_fen >= 0)`).
//!
//! The journal stays the record (credits minus debits on the PREPAYMENT ledger per account);
//! the column is kept in step by every writer of PREPAYMENT postings, in the same
//! transaction, so the bill path reads the balance from the account row it has just locked
//! instead of summing the journal, and a race that would spend prepayment twice fails on the
//! constraint instead of leaving a negative balance. The constraint is a column constraint,
//! so SQLite can add it with `ALTER TABLE ... ADD COLUMN` and drop it with the column.
//!
//! The backfill copies each account's journal balance. An account whose journal already
//! shows a negative prepayment (the double-spend this migration closes) stops the migration
//! with the accounts named: finance must correct them first, and nothing is clamped quietly.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Named so a violation can be recognised in either database's error message.
pub const PREPAYMENT_CHECK: &str = "ck_accounts_prepayment_non_negative";

/// How many offending accounts the refusal names.
const NEGATIVE_SHOWN_MAX: usize = 10;

const NEGATIVE_BALANCES: &str = "SELECT account_id, \
     CAST(SUM(credit_fen - debit_fen) AS BIGINT) AS balance \
     FROM journal_postings WHERE ledger = 'PREPAYMENT' AND account_id IS NOT NULL \
     GROUP BY account_id HAVING SUM(credit_fen - debit_fen) < 0 ORDER BY account_id";

const BACKFILL: &str = "UPDATE accounts SET prepayment_fen = COALESCE((\
     SELECT CAST(SUM(p.credit_fen - p.debit_fen) AS BIGINT) FROM journal_postings p \
     WHERE p.account_id = accounts.id AND p.ledger = 'PREPAYMENT'), 0) \
     WHERE id IN (SELECT account_id FROM journal_postings WHERE ledger = 'PREPAYMENT')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        refuse_negative_balances(db).await?;
        db.execute_unprepared(&format!(
            "ALTER TABLE accounts ADD COLUMN prepayment_fen BIGINT NOT NULL DEFAULT 0 \
             CONSTRAINT {PREPAYMENT_CHECK} CHECK (prepayment_fen >= 0)"
        ))
        .await?;
        db.execute_unprepared(BACKFILL).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::PrepaymentFen)
                    .to_owned(),
            )
            .await
    }
}

async fn refuse_negative_balances(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            NEGATIVE_BALANCES,
        ))
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut shown = Vec::with_capacity(rows.len().min(NEGATIVE_SHOWN_MAX));
    for row in rows.iter().take(NEGATIVE_SHOWN_MAX) {
        let id: i64 = row.try_get("", "account_id")?;
        let balance: i64 = row.try_get("", "balance")?;
        shown.push(format!("account id {id}: {balance} fen"));
    }
    Err(DbErr::Migration(format!(
        "{} accounts have a negative prepayment in the journal ({}); correct them before \
         this migration adds the constraint that forbids it",
        rows.len(),
        shown.join(", ")
    )))
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    PrepaymentFen,
}
