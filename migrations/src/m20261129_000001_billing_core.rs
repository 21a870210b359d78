//! The billing core: tariffs, accounts, meters, readings, bills (segments, lines, yearly usage),
//! closures and the append-only double-entry journal.
//!
//! Idempotency lives in unique keys: one bill per account and period, one segment per meter
//! sequence number (two concurrent bills can never consume the same reading), one reading per
//! caller reference, one journal entry per entry key.

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
        let all: [DynIden; 11] = [
            JournalPostings::Table.into_iden(),
            JournalEntries::Table.into_iden(),
            Closures::Table.into_iden(),
            BillUsage::Table.into_iden(),
            BillLines::Table.into_iden(),
            BillSegments::Table.into_iden(),
            Bills::Table.into_iden(),
            Readings::Table.into_iden(),
            Meters::Table.into_iden(),
            Accounts::Table.into_iden(),
            TariffVersions::Table.into_iden(),
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
            .table(TariffVersions::Table)
            .col(big_pk_auto(TariffVersions::Id))
            .col(string_len(TariffVersions::Code, 32))
            .col(string_len(TariffVersions::CustomerClass, 16))
            .col(date(TariffVersions::EffectiveFrom))
            .col(text(TariffVersions::Tiers))
            .col(string_len(TariffVersions::SewagePrice, 24))
            .col(string_len(TariffVersions::ResourcePrice, 24))
            .col(integer(TariffVersions::BaseHouseholdSize))
            .col(big_integer(TariffVersions::ExtraM3PerPerson))
            .col(string_len(TariffVersions::PriceChange, 16))
            .to_owned(),
        Table::create()
            .table(Accounts::Table)
            .col(big_pk_auto(Accounts::Id))
            .col(string_len_uniq(Accounts::AccountNo, 32))
            .col(string_len(Accounts::HolderName, 200))
            .col(string_len(Accounts::Address, 500))
            .col(string_len(Accounts::CustomerClass, 16))
            .col(integer(Accounts::HouseholdSize))
            .col(string_len(Accounts::TariffCode, 32))
            .col(string_len(Accounts::Status, 16))
            .to_owned(),
        Table::create()
            .table(Meters::Table)
            .col(big_pk_auto(Meters::Id))
            .col(string_len_uniq(Meters::MeterNo, 32))
            .col(big_integer(Meters::AccountId))
            .col(small_integer(Meters::RegisterDigits))
            .col(big_integer(Meters::InitialIndex))
            .col(date(Meters::InstalledOn))
            .col(date_null(Meters::RemovedOn))
            .foreign_key(
                ForeignKey::create()
                    .from(Meters::Table, Meters::AccountId)
                    .to(Accounts::Table, Accounts::Id),
            )
            .to_owned(),
        Table::create()
            .table(Readings::Table)
            .col(big_pk_auto(Readings::Id))
            .col(big_integer(Readings::MeterId))
            .col(big_integer(Readings::IndexValue))
            .col(date(Readings::ReadOn))
            .col(string_len(Readings::Source, 16))
            .col(string_len_null(Readings::ReadingRef, 64))
            .col(string_len(Readings::Status, 16))
            .col(string_len_null(Readings::Note, 500))
            .col(big_integer(Readings::VolumeM3))
            .foreign_key(
                ForeignKey::create()
                    .from(Readings::Table, Readings::MeterId)
                    .to(Meters::Table, Meters::Id),
            )
            .to_owned(),
        Table::create()
            .table(Bills::Table)
            .col(big_pk_auto(Bills::Id))
            .col(string_len_uniq(Bills::BillNo, 48))
            .col(big_integer(Bills::AccountId))
            .col(string_len(Bills::Period, 7))
            .col(boolean(Bills::Estimated))
            .col(big_integer(Bills::VolumeM3))
            .col(date(Bills::PeriodFrom))
            .col(date(Bills::PeriodTo))
            .col(big_integer(Bills::TotalFen))
            .col(big_integer(Bills::PrincipalPaidFen))
            .col(big_integer(Bills::LateFeePaidFen))
            .col(big_integer(Bills::PrepaymentAppliedFen))
            .col(string_len(Bills::Status, 16))
            .col(date(Bills::IssuedOn))
            .col(date(Bills::DueOn))
            .foreign_key(
                ForeignKey::create()
                    .from(Bills::Table, Bills::AccountId)
                    .to(Accounts::Table, Accounts::Id),
            )
            .to_owned(),
        Table::create()
            .table(BillSegments::Table)
            .col(big_pk_auto(BillSegments::Id))
            .col(string_len(BillSegments::BillNo, 48))
            .col(big_integer(BillSegments::MeterId))
            .col(integer(BillSegments::MeterSeq))
            .col(big_integer(BillSegments::PreviousIndex))
            .col(big_integer(BillSegments::CurrentIndex))
            .col(big_integer(BillSegments::VolumeM3))
            .col(big_integer_null(BillSegments::ActualIndex))
            .col(date(BillSegments::ReadOn))
            .col(big_integer(BillSegments::LastActualIndex))
            .col(date(BillSegments::LastActualReadOn))
            .to_owned(),
        Table::create()
            .table(BillLines::Table)
            .col(big_pk_auto(BillLines::Id))
            .col(string_len(BillLines::BillNo, 48))
            .col(integer(BillLines::LineNo))
            .col(string_len(BillLines::Kind, 24))
            .col(big_integer(BillLines::VolumeM3))
            .col(string_len(BillLines::UnitPrice, 24))
            .col(big_integer(BillLines::AmountFen))
            .to_owned(),
        Table::create()
            .table(BillUsage::Table)
            .col(big_pk_auto(BillUsage::Id))
            .col(string_len(BillUsage::BillNo, 48))
            .col(big_integer(BillUsage::AccountId))
            .col(integer(BillUsage::Year))
            .col(big_integer(BillUsage::VolumeM3))
            .to_owned(),
        Table::create()
            .table(Closures::Table)
            .col(big_pk_auto(Closures::Id))
            .col(date(Closures::StartsOn))
            .col(date(Closures::EndsOn))
            .col(date(Closures::ScheduledEndsOn))
            .col(string_len(Closures::Reason, 500))
            .col(boolean(Closures::WaiveLateFees))
            .col(boolean(Closures::CloseCounters))
            .to_owned(),
        Table::create()
            .table(JournalEntries::Table)
            .col(big_pk_auto(JournalEntries::Id))
            .col(string_len_uniq(JournalEntries::EntryKey, 96))
            .col(string_len(JournalEntries::Kind, 32))
            .col(big_integer_null(JournalEntries::AccountId))
            .col(string_len_null(JournalEntries::BillNo, 48))
            .col(date(JournalEntries::PostedOn))
            .to_owned(),
        Table::create()
            .table(JournalPostings::Table)
            .col(big_pk_auto(JournalPostings::Id))
            .col(string_len(JournalPostings::EntryKey, 96))
            .col(string_len(JournalPostings::Ledger, 32))
            .col(big_integer_null(JournalPostings::AccountId))
            .col(big_integer(JournalPostings::DebitFen))
            .col(big_integer(JournalPostings::CreditFen))
            .to_owned(),
    ]
}

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("ux_tariff_versions_code_effective_from")
            .table(TariffVersions::Table)
            .col(TariffVersions::Code)
            .col(TariffVersions::EffectiveFrom)
            .unique()
            .to_owned(),
        Index::create()
            .name("ix_meters_account")
            .table(Meters::Table)
            .col(Meters::AccountId)
            .to_owned(),
        Index::create()
            .name("ix_readings_meter_read_on")
            .table(Readings::Table)
            .col(Readings::MeterId)
            .col(Readings::ReadOn)
            .to_owned(),
        Index::create()
            .name("ux_readings_reading_ref")
            .table(Readings::Table)
            .col(Readings::ReadingRef)
            .unique()
            .to_owned(),
        Index::create()
            .name("ux_bills_account_period")
            .table(Bills::Table)
            .col(Bills::AccountId)
            .col(Bills::Period)
            .unique()
            .to_owned(),
        Index::create()
            .name("ux_bill_segments_meter_seq")
            .table(BillSegments::Table)
            .col(BillSegments::MeterId)
            .col(BillSegments::MeterSeq)
            .unique()
            .to_owned(),
        Index::create()
            .name("ix_bill_segments_bill")
            .table(BillSegments::Table)
            .col(BillSegments::BillNo)
            .to_owned(),
        Index::create()
            .name("ux_bill_lines_bill_line")
            .table(BillLines::Table)
            .col(BillLines::BillNo)
            .col(BillLines::LineNo)
            .unique()
            .to_owned(),
        Index::create()
            .name("ix_bill_usage_account_year")
            .table(BillUsage::Table)
            .col(BillUsage::AccountId)
            .col(BillUsage::Year)
            .to_owned(),
        Index::create()
            .name("ix_journal_postings_entry")
            .table(JournalPostings::Table)
            .col(JournalPostings::EntryKey)
            .to_owned(),
        Index::create()
            .name("ix_journal_postings_account_ledger")
            .table(JournalPostings::Table)
            .col(JournalPostings::AccountId)
            .col(JournalPostings::Ledger)
            .to_owned(),
    ]
}

#[derive(DeriveIden)]
enum TariffVersions {
    Table,
    Id,
    Code,
    CustomerClass,
    EffectiveFrom,
    Tiers,
    SewagePrice,
    ResourcePrice,
    BaseHouseholdSize,
    ExtraM3PerPerson,
    PriceChange,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    AccountNo,
    HolderName,
    Address,
    CustomerClass,
    HouseholdSize,
    TariffCode,
    Status,
}

#[derive(DeriveIden)]
enum Meters {
    Table,
    Id,
    MeterNo,
    AccountId,
    RegisterDigits,
    InitialIndex,
    InstalledOn,
    RemovedOn,
}

#[derive(DeriveIden)]
enum Readings {
    Table,
    Id,
    MeterId,
    IndexValue,
    ReadOn,
    Source,
    ReadingRef,
    Status,
    Note,
    VolumeM3,
}

#[derive(DeriveIden)]
enum Bills {
    Table,
    Id,
    BillNo,
    AccountId,
    Period,
    Estimated,
    VolumeM3,
    PeriodFrom,
    PeriodTo,
    TotalFen,
    PrincipalPaidFen,
    LateFeePaidFen,
    PrepaymentAppliedFen,
    Status,
    IssuedOn,
    DueOn,
}

#[derive(DeriveIden)]
enum BillSegments {
    Table,
    Id,
    BillNo,
    MeterId,
    MeterSeq,
    PreviousIndex,
    CurrentIndex,
    VolumeM3,
    ActualIndex,
    ReadOn,
    LastActualIndex,
    LastActualReadOn,
}

#[derive(DeriveIden)]
enum BillLines {
    Table,
    Id,
    BillNo,
    LineNo,
    Kind,
    VolumeM3,
    UnitPrice,
    AmountFen,
}

#[derive(DeriveIden)]
enum BillUsage {
    Table,
    Id,
    BillNo,
    AccountId,
    Year,
    VolumeM3,
}

#[derive(DeriveIden)]
enum Closures {
    Table,
    Id,
    StartsOn,
    EndsOn,
    ScheduledEndsOn,
    Reason,
    WaiveLateFees,
    CloseCounters,
}

#[derive(DeriveIden)]
enum JournalEntries {
    Table,
    Id,
    EntryKey,
    Kind,
    AccountId,
    BillNo,
    PostedOn,
}

#[derive(DeriveIden)]
enum JournalPostings {
    Table,
    Id,
    EntryKey,
    Ledger,
    AccountId,
    DebitFen,
    CreditFen,
}
