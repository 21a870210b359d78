//! Bills get cheaper to write: a bill's lines move into the bill row as one JSON array
//! (`bills.lines`, and the `bill_lines` table goes), and `bills.account_id` loses its foreign
//! key.
//!
//! Lines are written once with their bill and only ever read with it; four extra rows (and
//! their index entries) per bill made the line table the biggest cost of a billing run. The
//! JSON holds the fields the table had: `line_no`, `kind`, `volume_m3`, `unit_price` (exact
//! decimal string) and `amount_fen` (whole fen). Existing lines are copied over in both
//! directions, so the migration loses nothing either way.
//!
//! The foreign key made PostgreSQL look up and key-share-lock the account row for every bill
//! inserted, which doubled the cost of the insert. Accounts are never deleted (an account
//! closes by status) and a bill's account id is read from the accounts table in the same
//! batch, so the reference cannot dangle. SQLite cannot drop a constraint in place: there the
//! table is rebuilt, inside the migration's transaction.

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
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE bills ADD COLUMN lines TEXT NOT NULL DEFAULT '[]';
                 ALTER TABLE bills DROP CONSTRAINT IF EXISTS bills_account_id_fkey",
            )
            .await?;
            db.execute_unprepared(LINES_TO_JSON_POSTGRES).await?;
        } else {
            rebuild_bills_sqlite(manager, Shape::Compact).await?;
            db.execute_unprepared(LINES_TO_JSON_SQLITE).await?;
        }
        manager
            .drop_table(Table::drop().table(BillLines::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(bill_lines_table()).await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_bill_lines_bill_line")
                    .table(BillLines::Table)
                    .col(BillLines::BillNo)
                    .col(BillLines::LineNo)
                    .unique()
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(JSON_TO_LINES_POSTGRES).await?;
            db.execute_unprepared(
                "ALTER TABLE bills DROP COLUMN lines;
                 ALTER TABLE bills ADD CONSTRAINT bills_account_id_fkey
                     FOREIGN KEY (account_id) REFERENCES accounts (id)",
            )
            .await?;
            Ok(())
        } else {
            db.execute_unprepared(JSON_TO_LINES_SQLITE).await?;
            rebuild_bills_sqlite(manager, Shape::Original).await
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// As migration 1 made it: no `lines`, a foreign key to accounts.
    Original,
    /// With `lines`, without the foreign key.
    Compact,
}

/// SQLite's way to change constraints: a new table, the rows copied, the old one dropped and
/// the new one renamed, its index recreated.
async fn rebuild_bills_sqlite(manager: &SchemaManager<'_>, shape: Shape) -> Result<(), DbErr> {
    let mut table = Table::create();
    table
        .table(BillsNew::Table)
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
        .col(date(Bills::DueOn));
    match shape {
        Shape::Compact => {
            table.col(text(Bills::Lines).default("[]"));
        }
        Shape::Original => {
            table.foreign_key(
                ForeignKey::create()
                    .from(BillsNew::Table, Bills::AccountId)
                    .to(Accounts::Table, Accounts::Id),
            );
        }
    }
    manager.create_table(table.to_owned()).await?;
    let columns = "id, bill_no, account_id, period, estimated, volume_m3, period_from, \
                   period_to, total_fen, principal_paid_fen, late_fee_paid_fen, \
                   prepayment_applied_fen, status, issued_on, due_on";
    let db = manager.get_connection();
    db.execute_unprepared(&format!(
        "INSERT INTO bills_new ({columns}) SELECT {columns} FROM bills"
    ))
    .await?;
    db.execute_unprepared("DROP TABLE bills").await?;
    db.execute_unprepared("ALTER TABLE bills_new RENAME TO bills")
        .await?;
    manager
        .create_index(
            Index::create()
                .name("ux_bills_account_period")
                .table(Bills::Table)
                .col(Bills::AccountId)
                .col(Bills::Period)
                .unique()
                .to_owned(),
        )
        .await
}

fn bill_lines_table() -> TableCreateStatement {
    Table::create()
        .table(BillLines::Table)
        .col(big_pk_auto(BillLines::Id))
        .col(string_len(BillLines::BillNo, 48))
        .col(integer(BillLines::LineNo))
        .col(string_len(BillLines::Kind, 24))
        .col(big_integer(BillLines::VolumeM3))
        .col(string_len(BillLines::UnitPrice, 24))
        .col(big_integer(BillLines::AmountFen))
        .to_owned()
}

const LINES_TO_JSON_POSTGRES: &str = "UPDATE bills AS b SET lines = l.lines FROM (
    SELECT bill_no, json_agg(json_build_object(
        'line_no', line_no, 'kind', kind, 'volume_m3', volume_m3,
        'unit_price', unit_price, 'amount_fen', amount_fen) ORDER BY line_no)::text AS lines
    FROM bill_lines GROUP BY bill_no) AS l
WHERE l.bill_no = b.bill_no";

const LINES_TO_JSON_SQLITE: &str = "UPDATE bills SET lines = (
    SELECT json_group_array(json_object(
        'line_no', line_no, 'kind', kind, 'volume_m3', volume_m3,
        'unit_price', unit_price, 'amount_fen', amount_fen))
    FROM (SELECT * FROM bill_lines AS l WHERE l.bill_no = bills.bill_no ORDER BY l.line_no))
WHERE EXISTS (SELECT 1 FROM bill_lines AS l WHERE l.bill_no = bills.bill_no)";

const JSON_TO_LINES_POSTGRES: &str = "INSERT INTO bill_lines
    (bill_no, line_no, kind, volume_m3, unit_price, amount_fen)
SELECT b.bill_no, (e->>'line_no')::integer, e->>'kind', (e->>'volume_m3')::bigint,
    e->>'unit_price', (e->>'amount_fen')::bigint
FROM bills AS b, json_array_elements(b.lines::json) AS e";

const JSON_TO_LINES_SQLITE: &str = "INSERT INTO bill_lines
    (bill_no, line_no, kind, volume_m3, unit_price, amount_fen)
SELECT b.bill_no, json_extract(e.value, '$.line_no'), json_extract(e.value, '$.kind'),
    json_extract(e.value, '$.volume_m3'), json_extract(e.value, '$.unit_price'),
    json_extract(e.value, '$.amount_fen')
FROM bills AS b, json_each(b.lines) AS e";

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
    Lines,
}

#[derive(DeriveIden)]
enum BillsNew {
    Table,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
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
