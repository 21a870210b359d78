//! Batch reads for the use cases, and the conversions from rows to domain values.
//!
//! Every batch query takes the ids of one batch (bounded by the caller) and answers with maps
//! keyed by id, so a billing batch costs a fixed number of round trips whatever its size.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use super::entity::{
    bill, bill_segment, bill_usage, closure, journal_posting, reading, tariff_version,
};
use crate::app::{AppError, AppResult};
use crate::domain::bill_status::{BillBalance, BillStatus};
use crate::domain::calendar::DateRange;
use crate::domain::journal::Ledger;
use crate::domain::money::{Money, UnitPrice};
use crate::domain::posting::BookedBill;
use crate::domain::reading::ReadingStatus;
use crate::domain::tariff::{CustomerClass, PriceChange, TariffVersion, decode_tiers};

/// How sparse a batch's ids may be for [`ids_in`] to read them as one range: at most this
/// many ids of range per id asked for.
const RANGE_SPREAD_MAX: i64 = 4;

/// `column IN (ids)`, or `column BETWEEN min AND max` when the ids are dense (a billing batch
/// is a run of consecutive account ids): one index range scan instead of one index descent
/// per id. A range may match ids that were not asked for; callers key their results by id
/// and look up only their own.
pub fn ids_in(column: impl ColumnTrait, ids: &[i64]) -> sea_orm::Condition {
    if ids.is_empty() {
        return sea_orm::Condition::all().add(Expr::val(false));
    }
    match dense_range(ids) {
        Some((min, max)) => sea_orm::Condition::all().add(column.between(min, max)),
        None => sea_orm::Condition::all().add(column.is_in(ids.iter().copied())),
    }
}

/// The smallest and largest id when the ids are dense enough to read as one range.
fn dense_range(ids: &[i64]) -> Option<(i64, i64)> {
    let (min, max) = (*ids.iter().min()?, *ids.iter().max()?);
    let count = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    ((max - min).saturating_add(1) <= RANGE_SPREAD_MAX.saturating_mul(count)).then_some((min, max))
}

/// A stored row that no longer parses is a bug or a tampered database, never caller input.
pub fn corrupt(what: &str, detail: impl std::fmt::Display) -> AppError {
    AppError::Database(DbErr::Custom(format!("corrupt {what}: {detail}")))
}

/// A bill row as the posting rule sees it; a status that is none of the four is corrupt.
pub fn booked_bill(row: &bill::Model) -> AppResult<BookedBill> {
    let status = BillStatus::parse(&row.status).map_err(|e| corrupt("bill", e))?;
    Ok(BookedBill {
        bill_no: row.bill_no.clone(),
        due_on: row.due_on,
        balance: BillBalance {
            total: Money::from_fen(row.total_fen),
            principal_paid: Money::from_fen(row.principal_paid_fen),
            late_fee_paid: Money::from_fen(row.late_fee_paid_fen),
            status,
        },
    })
}

/// The open (UNPAID or PARTIALLY_PAID) bills of the accounts, oldest due first.
pub async fn open_bills(
    db: &impl ConnectionTrait,
    account_ids: &[i64],
) -> AppResult<Vec<bill::Model>> {
    let open: Vec<&str> = BillStatus::OPEN.iter().map(|s| s.as_str()).collect();
    Ok(bill::Entity::find()
        .filter(bill::Column::AccountId.is_in(account_ids.iter().copied()))
        .filter(bill::Column::Status.is_in(open))
        .order_by_asc(bill::Column::DueOn)
        .order_by_asc(bill::Column::Id)
        .all(db)
        .await?)
}

pub fn tariff_from_row(row: tariff_version::Model) -> AppResult<TariffVersion> {
    let bad = |detail: String| corrupt("tariff version", detail);
    Ok(TariffVersion {
        customer_class: CustomerClass::parse(&row.customer_class)
            .map_err(|e| bad(e.to_string()))?,
        effective_from: row.effective_from,
        tiers: decode_tiers(&row.tiers).map_err(|e| bad(e.to_string()))?,
        sewage_price: UnitPrice::parse(&row.sewage_price).map_err(|e| bad(e.to_string()))?,
        resource_price: UnitPrice::parse(&row.resource_price).map_err(|e| bad(e.to_string()))?,
        base_household_size: u32::try_from(row.base_household_size)
            .map_err(|e| bad(e.to_string()))?,
        extra_m3_per_person: u64::try_from(row.extra_m3_per_person)
            .map_err(|e| bad(e.to_string()))?,
        price_change: PriceChange::parse(&row.price_change).map_err(|e| bad(e.to_string()))?,
        code: row.code,
    })
}

/// All tariff versions, grouped by code.
pub async fn tariff_versions_by_code(
    db: &impl ConnectionTrait,
) -> AppResult<HashMap<String, Vec<TariffVersion>>> {
    let rows = tariff_version::Entity::find().all(db).await?;
    let mut by_code: HashMap<String, Vec<TariffVersion>> = HashMap::new();
    for row in rows {
        let version = tariff_from_row(row)?;
        by_code
            .entry(version.code.clone())
            .or_default()
            .push(version);
    }
    Ok(by_code)
}

/// Each account's prepayment balance: credits minus debits on the PREPAYMENT ledger.
pub async fn prepayment_balances(
    db: &impl ConnectionTrait,
    account_ids: &[i64],
) -> AppResult<HashMap<i64, Money>> {
    let rows: Vec<(Option<i64>, i64, i64)> = journal_posting::Entity::find()
        .select_only()
        .column(journal_posting::Column::AccountId)
        .column_as(sum_bigint(journal_posting::Column::CreditFen), "credit")
        .column_as(sum_bigint(journal_posting::Column::DebitFen), "debit")
        .filter(ids_in(journal_posting::Column::AccountId, account_ids))
        .filter(journal_posting::Column::Ledger.eq(Ledger::Prepayment.as_str()))
        .group_by(journal_posting::Column::AccountId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, credit, debit)| Some((id?, Money::from_fen(credit - debit))))
        .collect())
}

/// Volume already billed per account and calendar year, for years from `year_min` on.
pub async fn billed_by_year(
    db: &impl ConnectionTrait,
    account_ids: &[i64],
    year_min: i32,
) -> AppResult<HashMap<i64, BTreeMap<i32, u64>>> {
    let rows: Vec<(i64, i32, i64)> = bill_usage::Entity::find()
        .select_only()
        .column(bill_usage::Column::AccountId)
        .column(bill_usage::Column::Year)
        .column_as(sum_bigint(bill_usage::Column::VolumeM3), "volume")
        .filter(ids_in(bill_usage::Column::AccountId, account_ids))
        .filter(bill_usage::Column::Year.gte(year_min))
        .group_by(bill_usage::Column::AccountId)
        .group_by(bill_usage::Column::Year)
        .into_tuple()
        .all(db)
        .await?;
    let mut out: HashMap<i64, BTreeMap<i32, u64>> = HashMap::new();
    for (account_id, year, volume) in rows {
        let volume = u64::try_from(volume).map_err(|e| corrupt("bill usage", e))?;
        out.entry(account_id).or_default().insert(year, volume);
    }
    Ok(out)
}

/// How far back the estimate looks for billed actual volumes.
const ESTIMATE_HISTORY_PERIODS: u32 = 24;
/// How many billed actual volumes an estimate averages.
const ESTIMATE_SAMPLE_SIZE: usize = 3;

/// The last (up to three) billed actual volumes of each account before `period`, oldest first.
pub async fn recent_actual_volumes(
    db: &impl ConnectionTrait,
    account_ids: &[i64],
    period: crate::domain::calendar::Period,
) -> AppResult<HashMap<i64, Vec<u64>>> {
    let mut oldest = period;
    for _ in 0..ESTIMATE_HISTORY_PERIODS {
        oldest = oldest.prev();
    }
    let rows: Vec<(i64, i64)> = bill::Entity::find()
        .select_only()
        .column(bill::Column::AccountId)
        .column(bill::Column::VolumeM3)
        .filter(ids_in(bill::Column::AccountId, account_ids))
        .filter(bill::Column::Estimated.eq(false))
        .filter(bill::Column::Period.gte(oldest.to_string()))
        .filter(bill::Column::Period.lt(period.to_string()))
        .order_by_asc(bill::Column::AccountId)
        .order_by_asc(bill::Column::Period)
        .into_tuple()
        .all(db)
        .await?;
    let mut out: HashMap<i64, Vec<u64>> = HashMap::new();
    for (account_id, volume) in rows {
        let volume = u64::try_from(volume).map_err(|e| corrupt("bill volume", e))?;
        out.entry(account_id).or_default().push(volume);
    }
    for volumes in out.values_mut() {
        let excess = volumes.len().saturating_sub(ESTIMATE_SAMPLE_SIZE);
        volumes.drain(..excess);
    }
    Ok(out)
}

/// The newest segment of each meter: where billing has got to on that meter.
pub async fn last_segments(
    db: &impl ConnectionTrait,
    meter_ids: &[i64],
) -> AppResult<HashMap<i64, bill_segment::Model>> {
    if meter_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let backend = db.get_database_backend();
    // Newest sequence per meter from the (meter_id, meter_seq) index, then those rows. A
    // correlated MAX per row let PostgreSQL pick a sequential scan once the table was big.
    let (filter, values): (String, Vec<sea_orm::Value>) = match dense_range(meter_ids) {
        Some((min, max)) => (
            format!(
                "meter_id BETWEEN {} AND {}",
                placeholder(backend, 0),
                placeholder(backend, 1)
            ),
            vec![min.into(), max.into()],
        ),
        None => (
            format!("meter_id IN ({})", placeholders(backend, meter_ids.len())),
            meter_ids.iter().map(|id| (*id).into()).collect(),
        ),
    };
    let sql = format!(
        "SELECT s.* FROM bill_segments s JOIN (SELECT meter_id, MAX(meter_seq) AS last_seq \
         FROM bill_segments WHERE {filter} GROUP BY meter_id) l \
         ON s.meter_id = l.meter_id AND s.meter_seq = l.last_seq"
    );
    let rows = bill_segment::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|row| (row.meter_id, row)).collect())
}

/// Accepted readings of the given meters dated after `after` and up to `up_to`, oldest first.
pub async fn readings_between(
    db: &impl ConnectionTrait,
    meter_ids: &[i64],
    after: NaiveDate,
    up_to: NaiveDate,
) -> AppResult<Vec<reading::Model>> {
    Ok(reading::Entity::find()
        .filter(ids_in(reading::Column::MeterId, meter_ids))
        .filter(reading::Column::Status.eq(ReadingStatus::Accepted.as_str()))
        .filter(reading::Column::ReadOn.gt(after))
        .filter(reading::Column::ReadOn.lte(up_to))
        .order_by_asc(reading::Column::ReadOn)
        .order_by_asc(reading::Column::Id)
        .all(db)
        .await?)
}

/// The date ranges on which late fees are waived (closures that say so).
pub async fn late_fee_waivers(db: &impl ConnectionTrait) -> AppResult<Vec<DateRange>> {
    let rows = closure::Entity::find()
        .filter(closure::Column::WaiveLateFees.eq(true))
        .all(db)
        .await?;
    rows.into_iter()
        .map(|row| DateRange::new(row.starts_on, row.ends_on).map_err(|e| corrupt("closure", e)))
        .collect()
}

fn sum_bigint(column: impl sea_orm::sea_query::IntoColumnRef) -> Expr {
    Expr::col(column).sum().cast_as(Alias::new("BIGINT"))
}

fn placeholder(backend: sea_orm::DatabaseBackend, index: usize) -> String {
    match backend {
        sea_orm::DatabaseBackend::Postgres => format!("${}", index + 1),
        _ => "?".to_owned(),
    }
}

fn placeholders(backend: sea_orm::DatabaseBackend, count: usize) -> String {
    (0..count)
        .map(|i| placeholder(backend, i))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::entity::bill;
    use sea_orm::{DbBackend, QueryTrait};

    fn sql(ids: &[i64]) -> String {
        bill::Entity::find()
            .filter(ids_in(bill::Column::AccountId, ids))
            .build(DbBackend::Postgres)
            .to_string()
    }

    #[test]
    fn dense_ids_read_as_one_range_sparse_ones_as_a_list() {
        assert!(sql(&[7, 5, 6, 9]).contains(r#""account_id" BETWEEN 5 AND 9"#));
        assert!(sql(&[42]).contains("BETWEEN 42 AND 42"));
        let sparse = sql(&[1, 1_000]);
        assert!(sparse.contains(r#""account_id" IN (1, 1000)"#), "{sparse}");
        assert!(sql(&[]).contains("FALSE"), "{}", sql(&[]));
    }
}
