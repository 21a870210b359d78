//! Counter refunds carry their cashier, and a cashier's close shows payments and refunds apart.
//!
//! Cash refunded at the counter leaves that cashier's drawer, so the day close must count it:
//! `refunds.cashier_id` names the cashier who paid it out and `refunds.business_date` the
//! Beijing day it was paid (both null for online refunds, which the gateways pay). A close keeps
//! what it compared: `cashier_closes.payments_fen` (counter payments of the day) and
//! `cashier_closes.refunds_fen` (counter refunds), with `expected_fen` = payments − refunds as
//! before. Closes made before this migration counted payments only, so their payments are their
//! expected amount and their refunds zero. The index answers the close's lookup of one
//! cashier's refunds of one day.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const REFUNDS_INDEX: &str = "ix_refunds_cashier_day";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE takes one change at a time.
        for column in [
            string_len_null(Refunds::CashierId, 32),
            date_null(Refunds::BusinessDate),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Refunds::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [CashierCloses::PaymentsFen, CashierCloses::RefundsFen] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CashierCloses::Table)
                        .add_column(big_integer(column).default(0))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .exec_stmt(
                Query::update()
                    .table(CashierCloses::Table)
                    .value(
                        CashierCloses::PaymentsFen,
                        Expr::col(CashierCloses::ExpectedFen),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(REFUNDS_INDEX)
                    .table(Refunds::Table)
                    .col(Refunds::CashierId)
                    .col(Refunds::BusinessDate)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(REFUNDS_INDEX)
                    .table(Refunds::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Refunds::BusinessDate, Refunds::CashierId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Refunds::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [CashierCloses::RefundsFen, CashierCloses::PaymentsFen] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CashierCloses::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Refunds {
    Table,
    CashierId,
    BusinessDate,
}

#[derive(DeriveIden)]
enum CashierCloses {
    Table,
    ExpectedFen,
    PaymentsFen,
    RefundsFen,
}
