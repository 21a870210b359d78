//! Payments: online orders (Alipay, WeChat Pay) and counter payments, how each was allocated,
//! refunds, every gateway notification as received, and suspense items for money that arrived
//! but cannot be applied.
//!
//! Idempotency lives in unique keys: one order per merchant number, per caller idempotency key
//! and per counter receipt; one refund per refund number; one allocation row per payment and
//! bill. A notification is stored raw every time it arrives (duplicates included), so what the
//! gateways sent can always be shown to finance.

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
        let all: [DynIden; 5] = [
            SuspenseItems::Table.into_iden(),
            Notifications::Table.into_iden(),
            Refunds::Table.into_iden(),
            PaymentAllocations::Table.into_iden(),
            Payments::Table.into_iden(),
        ];
        for table in all {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

fn tables() -> Vec<TableCreateStatement> {
    vec![
        Table::create()
            .table(Payments::Table)
            .col(big_pk_auto(Payments::Id))
            .col(string_len_uniq(Payments::OutTradeNo, 64))
            .col(big_integer(Payments::AccountId))
            .col(string_len(Payments::Channel, 16))
            .col(big_integer(Payments::AmountFen))
            .col(string_len(Payments::Status, 24))
            .col(string_len_null(Payments::IdempotencyKey, 128))
            .col(text_null(Payments::QrCode))
            .col(timestamp_with_time_zone(Payments::CreatedAt))
            .col(timestamp_with_time_zone_null(Payments::ExpiresAt))
            .col(timestamp_with_time_zone_null(Payments::LastQueriedAt))
            .col(string_len_null(Payments::GatewayTradeNo, 64))
            .col(timestamp_with_time_zone_null(Payments::PaidAt))
            .col(date_null(Payments::BusinessDate))
            .col(big_integer(Payments::RefundedFen))
            .col(string_len_null(Payments::CashierId, 32))
            .col(string_len_null(Payments::ReceiptNo, 64))
            .col(string_len_null(Payments::SettledBy, 16))
            .to_owned(),
        Table::create()
            .table(PaymentAllocations::Table)
            .col(big_pk_auto(PaymentAllocations::Id))
            .col(big_integer(PaymentAllocations::PaymentId))
            .col(string_len(PaymentAllocations::BillNo, 48))
            .col(big_integer(PaymentAllocations::LateFeeFen))
            .col(big_integer(PaymentAllocations::PrincipalFen))
            .to_owned(),
        Table::create()
            .table(Refunds::Table)
            .col(big_pk_auto(Refunds::Id))
            .col(string_len_uniq(Refunds::RefundNo, 64))
            .col(big_integer(Refunds::PaymentId))
            .col(big_integer(Refunds::AmountFen))
            .col(string_len(Refunds::Reason, 200))
            .col(string_len(Refunds::Status, 16))
            .col(string_len_null(Refunds::GatewayRefundId, 64))
            .col(timestamp_with_time_zone(Refunds::CreatedAt))
            .col(timestamp_with_time_zone_null(Refunds::CompletedAt))
            .to_owned(),
        Table::create()
            .table(Notifications::Table)
            .col(big_pk_auto(Notifications::Id))
            .col(string_len(Notifications::Channel, 16))
            .col(timestamp_with_time_zone(Notifications::ReceivedAt))
            .col(text(Notifications::Headers))
            .col(text(Notifications::Body))
            .col(boolean(Notifications::Verified))
            .col(string_len(Notifications::Outcome, 32))
            .col(string_len_null(Notifications::Detail, 500))
            .col(string_len_null(Notifications::OutTradeNo, 64))
            .to_owned(),
        Table::create()
            .table(SuspenseItems::Table)
            .col(big_pk_auto(SuspenseItems::Id))
            .col(string_len(SuspenseItems::Channel, 16))
            .col(string_len(SuspenseItems::OutTradeNo, 64))
            .col(string_len(SuspenseItems::GatewayTradeNo, 64))
            .col(big_integer(SuspenseItems::AmountFen))
            .col(string_len(SuspenseItems::Reason, 32))
            .col(string_len(SuspenseItems::Detail, 500))
            .col(timestamp_with_time_zone(SuspenseItems::CreatedAt))
            .to_owned(),
    ]
}

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("ux_payments_idempotency_key")
            .table(Payments::Table)
            .col(Payments::IdempotencyKey)
            .unique()
            .to_owned(),
        Index::create()
            .name("ux_payments_receipt_no")
            .table(Payments::Table)
            .col(Payments::ReceiptNo)
            .unique()
            .to_owned(),
        Index::create()
            .name("ix_payments_account")
            .table(Payments::Table)
            .col(Payments::AccountId)
            .to_owned(),
        Index::create()
            .name("ix_payments_channel_business_date")
            .table(Payments::Table)
            .col(Payments::Channel)
            .col(Payments::BusinessDate)
            .to_owned(),
        Index::create()
            .name("ix_payments_status_created")
            .table(Payments::Table)
            .col(Payments::Status)
            .col(Payments::CreatedAt)
            .to_owned(),
        Index::create()
            .name("ux_payment_allocations_payment_bill")
            .table(PaymentAllocations::Table)
            .col(PaymentAllocations::PaymentId)
            .col(PaymentAllocations::BillNo)
            .unique()
            .to_owned(),
        Index::create()
            .name("ix_refunds_payment")
            .table(Refunds::Table)
            .col(Refunds::PaymentId)
            .to_owned(),
        Index::create()
            .name("ix_notifications_out_trade_no")
            .table(Notifications::Table)
            .col(Notifications::OutTradeNo)
            .to_owned(),
        Index::create()
            .name("ux_suspense_items_trade_reason")
            .table(SuspenseItems::Table)
            .col(SuspenseItems::Channel)
            .col(SuspenseItems::GatewayTradeNo)
            .col(SuspenseItems::Reason)
            .unique()
            .to_owned(),
    ]
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    OutTradeNo,
    AccountId,
    Channel,
    AmountFen,
    Status,
    IdempotencyKey,
    QrCode,
    CreatedAt,
    ExpiresAt,
    LastQueriedAt,
    GatewayTradeNo,
    PaidAt,
    BusinessDate,
    RefundedFen,
    CashierId,
    ReceiptNo,
    SettledBy,
}

#[derive(DeriveIden)]
enum PaymentAllocations {
    Table,
    Id,
    PaymentId,
    BillNo,
    LateFeeFen,
    PrincipalFen,
}

#[derive(DeriveIden)]
enum Refunds {
    Table,
    Id,
    RefundNo,
    PaymentId,
    AmountFen,
    Reason,
    Status,
    GatewayRefundId,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    Channel,
    ReceivedAt,
    Headers,
    Body,
    Verified,
    Outcome,
    Detail,
    OutTradeNo,
}

#[derive(DeriveIden)]
enum SuspenseItems {
    Table,
    Id,
    Channel,
    OutTradeNo,
    GatewayTradeNo,
    AmountFen,
    Reason,
    Detail,
    CreatedAt,
}
