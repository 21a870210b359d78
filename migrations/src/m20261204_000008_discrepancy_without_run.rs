//! A discrepancy may stand outside any reconciliation run: `discrepancies.run_id` becomes
//! nullable.
//!
//! A payment the gateway confirms for an order finance had already reversed is held in
//! suspense and opened for finance as a PAID_AFTER_REVERSAL item at the moment it arrives
//! (a notification, our query), with no run to belong to. Such an item has no run id (the
//! gRPC API lists them under run 0). SQLite cannot relax NOT NULL in place: there the table is
//! rebuilt, inside the migration's transaction. `down` deletes the items without a run (and
//! their audit rows; the money stays in `suspense_items` and the journal) and makes the
//! column NOT NULL again.

use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// On SQLite too: the table rebuild must happen on one connection, all or nothing.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE discrepancies ALTER COLUMN run_id DROP NOT NULL")
                .await?;
            Ok(())
        } else {
            rebuild_sqlite(manager, RunId::Optional).await
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "DELETE FROM discrepancy_actions WHERE discrepancy_id IN
                 (SELECT id FROM discrepancies WHERE run_id IS NULL)",
        )
        .await?;
        db.execute_unprepared("DELETE FROM discrepancies WHERE run_id IS NULL")
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared("ALTER TABLE discrepancies ALTER COLUMN run_id SET NOT NULL")
                .await?;
            Ok(())
        } else {
            rebuild_sqlite(manager, RunId::Required).await
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RunId {
    /// As migration 3 made it.
    Required,
    Optional,
}

/// A new table, the rows copied, the old one dropped and the new one renamed, its index
/// recreated.
async fn rebuild_sqlite(manager: &SchemaManager<'_>, run_id: RunId) -> Result<(), DbErr> {
    use Discrepancies as D;
    let run_id_column = match run_id {
        RunId::Required => big_integer(D::RunId),
        RunId::Optional => big_integer_null(D::RunId),
    };
    let table = Table::create()
        .table(DiscrepanciesNew::Table)
        .col(big_pk_auto(D::Id))
        .col(run_id_column)
        .col(string_len(D::Class, 24))
        .col(string_len(D::State, 16))
        .col(string_len(D::Movement, 8))
        .col(string_len(D::OutTradeNo, 64))
        .col(string_len_null(D::GatewayTradeNo, 64))
        .col(string_len_null(D::RefundNo, 64))
        .col(string_len_null(D::AccountNo, 32))
        .col(big_integer_null(D::LedgerFen))
        .col(big_integer_null(D::GatewayFen))
        .col(big_integer(D::DifferenceFen))
        .col(timestamp_with_time_zone_null(D::LedgerTime))
        .col(timestamp_with_time_zone_null(D::GatewayTime))
        .col(string_len_null(D::Action, 16))
        .col(string_len_null(D::Operator, 64))
        .col(text_null(D::Note))
        .col(timestamp_with_time_zone_null(D::ResolvedAt))
        .to_owned();
    manager.create_table(table).await?;
    let columns = "id, run_id, class, state, movement, out_trade_no, gateway_trade_no, \
                   refund_no, account_no, ledger_fen, gateway_fen, difference_fen, ledger_time, \
                   gateway_time, action, operator, note, resolved_at";
    let db = manager.get_connection();
    db.execute_unprepared(&format!(
        "INSERT INTO discrepancies_new ({columns}) SELECT {columns} FROM discrepancies"
    ))
    .await?;
    db.execute_unprepared("DROP TABLE discrepancies").await?;
    db.execute_unprepared("ALTER TABLE discrepancies_new RENAME TO discrepancies")
        .await?;
    manager
        .create_index(
            Index::create()
                .name("ix_discrepancies_run")
                .table(D::Table)
                .col(D::RunId)
                .to_owned(),
        )
        .await
}

#[derive(DeriveIden)]
enum DiscrepanciesNew {
    Table,
}

#[derive(DeriveIden)]
enum Discrepancies {
    Table,
    Id,
    RunId,
    Class,
    State,
    Movement,
    OutTradeNo,
    GatewayTradeNo,
    RefundNo,
    AccountNo,
    LedgerFen,
    GatewayFen,
    DifferenceFen,
    LedgerTime,
    GatewayTime,
    Action,
    Operator,
    Note,
    ResolvedAt,
}
