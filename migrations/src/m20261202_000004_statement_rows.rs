//! The statement rows of each reconciliation run, kept so that finance can see what the
//! gateway said line by line long after the file is gone, and so that a later run of an
//! adjacent business date can settle the items held near midnight against them.
//!
//! Rows belong to the run that imported them (a run is one statement file); money is whole
//! fen, the fee an exact decimal string (WeChat writes five decimals), times UTC.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use StatementRows as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .col(big_pk_auto(S::Id))
                    .col(big_integer(S::RunId))
                    .col(integer(S::LineNo))
                    .col(string_len(S::Movement, 8))
                    .col(string_len(S::OutTradeNo, 64))
                    .col(string_len(S::GatewayTradeNo, 64))
                    .col(string_len_null(S::RefundNo, 64))
                    .col(big_integer(S::AmountFen))
                    .col(big_integer(S::SettlementFen))
                    .col(string_len(S::Fee, 40))
                    .col(timestamp_with_time_zone(S::TradeTime))
                    .col(string_len(S::Status, 32))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_statement_rows_run_line")
                    .table(S::Table)
                    .col(S::RunId)
                    .col(S::LineNo)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(StatementRows::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum StatementRows {
    Table,
    Id,
    RunId,
    LineNo,
    Movement,
    OutTradeNo,
    GatewayTradeNo,
    RefundNo,
    AmountFen,
    SettlementFen,
    Fee,
    TradeTime,
    Status,
}
