//! Reconciliation: one row per run (channel × business date × statement file), the
//! discrepancies each run found, the append-only audit trail of what finance did about them,
//! and the cashiers' daily closes (扎帐).
//!
//! A run is unique per channel, date and statement hash, so importing the same file twice
//! finds the first run instead of recording a second one; a different file is a new version.
//! Money is whole fen; fees and net settlement are exact decimal strings because WeChat writes
//! fees to five decimals.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            manager.create_table(table).await?;
        }
        for index in indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let all: [DynIden; 4] = [
            CashierCloses::Table.into_iden(),
            DiscrepancyActions::Table.into_iden(),
            Discrepancies::Table.into_iden(),
            ReconciliationRuns::Table.into_iden(),
        ];
        for table in all {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

fn runs_table() -> TableCreateStatement {
    use ReconciliationRuns as R;
    Table::create()
        .table(R::Table)
        .col(big_pk_auto(R::Id))
        .col(string_len(R::Channel, 16))
        .col(date(R::BusinessDate))
        .col(integer(R::Version))
        .col(string_len(R::Status, 16))
        .col(string_len(R::StatementSha256, 64))
        .col(big_integer(R::LedgerCount))
        .col(big_integer(R::GatewayCount))
        .col(big_integer(R::MatchedCount))
        .col(big_integer(R::MatchedFen))
        .col(big_integer(R::GatewayOnlyCount))
        .col(big_integer(R::GatewayOnlyFen))
        .col(big_integer(R::LedgerOnlyCount))
        .col(big_integer(R::LedgerOnlyFen))
        .col(big_integer(R::AmountMismatchCount))
        .col(big_integer(R::AmountMismatchFen))
        .col(big_integer(R::StatusMismatchCount))
        .col(big_integer(R::StatusMismatchFen))
        .col(big_integer(R::DuplicateCount))
        .col(big_integer(R::DuplicateFen))
        .col(big_integer(R::LedgerTotalFen))
        .col(big_integer(R::GatewayTotalFen))
        .col(big_integer(R::GatewayRefundsFen))
        .col(string_len(R::FeeTotal, 40))
        .col(string_len(R::NetSettlement, 40))
        .col(timestamp_with_time_zone(R::CreatedAt))
        .to_owned()
}

fn tables() -> Vec<TableCreateStatement> {
    vec![
        runs_table(),
        Table::create()
            .table(Discrepancies::Table)
            .col(big_pk_auto(Discrepancies::Id))
            .col(big_integer(Discrepancies::RunId))
            .col(string_len(Discrepancies::Class, 24))
            .col(string_len(Discrepancies::State, 16))
            .col(string_len(Discrepancies::Movement, 8))
            .col(string_len(Discrepancies::OutTradeNo, 64))
            .col(string_len_null(Discrepancies::GatewayTradeNo, 64))
            .col(string_len_null(Discrepancies::RefundNo, 64))
            .col(string_len_null(Discrepancies::AccountNo, 32))
            .col(big_integer_null(Discrepancies::LedgerFen))
            .col(big_integer_null(Discrepancies::GatewayFen))
            .col(big_integer(Discrepancies::DifferenceFen))
            .col(timestamp_with_time_zone_null(Discrepancies::LedgerTime))
            .col(timestamp_with_time_zone_null(Discrepancies::GatewayTime))
            .col(string_len_null(Discrepancies::Action, 16))
            .col(string_len_null(Discrepancies::Operator, 64))
            .col(text_null(Discrepancies::Note))
            .col(timestamp_with_time_zone_null(Discrepancies::ResolvedAt))
            .to_owned(),
        Table::create()
            .table(DiscrepancyActions::Table)
            .col(big_pk_auto(DiscrepancyActions::Id))
            .col(big_integer(DiscrepancyActions::DiscrepancyId))
            .col(string_len(DiscrepancyActions::Action, 16))
            .col(string_len(DiscrepancyActions::Operator, 64))
            .col(text(DiscrepancyActions::Note))
            .col(timestamp_with_time_zone(DiscrepancyActions::CreatedAt))
            .to_owned(),
        Table::create()
            .table(CashierCloses::Table)
            .col(big_pk_auto(CashierCloses::Id))
            .col(string_len(CashierCloses::CashierId, 32))
            .col(date(CashierCloses::BusinessDate))
            .col(big_integer(CashierCloses::ExpectedFen))
            .col(big_integer(CashierCloses::CountedFen))
            .col(big_integer(CashierCloses::DifferenceFen))
            .col(timestamp_with_time_zone(CashierCloses::CreatedAt))
            .to_owned(),
    ]
}

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("ux_reconciliation_runs_channel_date_sha")
            .table(ReconciliationRuns::Table)
            .col(ReconciliationRuns::Channel)
            .col(ReconciliationRuns::BusinessDate)
            .col(ReconciliationRuns::StatementSha256)
            .unique()
            .to_owned(),
        Index::create()
            .name("ux_reconciliation_runs_channel_date_version")
            .table(ReconciliationRuns::Table)
            .col(ReconciliationRuns::Channel)
            .col(ReconciliationRuns::BusinessDate)
            .col(ReconciliationRuns::Version)
            .unique()
            .to_owned(),
        Index::create()
            .name("ix_discrepancies_run")
            .table(Discrepancies::Table)
            .col(Discrepancies::RunId)
            .to_owned(),
        Index::create()
            .name("ix_discrepancy_actions_discrepancy")
            .table(DiscrepancyActions::Table)
            .col(DiscrepancyActions::DiscrepancyId)
            .to_owned(),
        Index::create()
            .name("ux_cashier_closes_cashier_date")
            .table(CashierCloses::Table)
            .col(CashierCloses::CashierId)
            .col(CashierCloses::BusinessDate)
            .unique()
            .to_owned(),
    ]
}

#[derive(DeriveIden)]
enum ReconciliationRuns {
    Table,
    Id,
    Channel,
    BusinessDate,
    Version,
    Status,
    StatementSha256,
    LedgerCount,
    GatewayCount,
    MatchedCount,
    MatchedFen,
    GatewayOnlyCount,
    GatewayOnlyFen,
    LedgerOnlyCount,
    LedgerOnlyFen,
    AmountMismatchCount,
    AmountMismatchFen,
    StatusMismatchCount,
    StatusMismatchFen,
    DuplicateCount,
    DuplicateFen,
    LedgerTotalFen,
    GatewayTotalFen,
    GatewayRefundsFen,
    FeeTotal,
    NetSettlement,
    CreatedAt,
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

#[derive(DeriveIden)]
enum DiscrepancyActions {
    Table,
    Id,
    DiscrepancyId,
    Action,
    Operator,
    Note,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CashierCloses {
    Table,
    Id,
    CashierId,
    BusinessDate,
    ExpectedFen,
    CountedFen,
    DifferenceFen,
    CreatedAt,
}
