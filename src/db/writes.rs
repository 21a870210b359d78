//! The rows one batch of bills writes, collected in memory and inserted with multi-row
//! statements: a whole billing batch costs a handful of round trips in one transaction.
//!
//! A bill is three rows: the bill (its lines inline as JSON), a segment per meter read, and
//! its usage per calendar year. The journal gets one `BILL_ISSUED` entry per batch and issue
//! date, summing the batch's bills per ledger (the bills are the receivable's sub-ledger, so
//! the per-account detail is on them); a prepayment applied to a bill stays an entry of its
//! own, since an account's prepayment balance is read from its postings.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait, Set};

use super::entity::{account, bill, bill_segment, bill_usage, journal_entry, journal_posting};
use super::{DbError, DbResult};
use crate::domain::bill_status::BillBalance;
use crate::domain::billing::{DraftBill, bill_no};
use crate::domain::calendar::Period;
use crate::domain::journal::{JournalEntry, bill_issued, prepayment_applied};
use crate::domain::rating::BillLine;

/// Rows per INSERT statement: keeps every statement under SQLite's and PostgreSQL's
/// bound-parameter limits (the widest table has 15 columns).
const INSERT_ROWS_MAX: usize = 1_000;

/// Rows per PostgreSQL `UNNEST` insert: one array parameter per column, so the statement
/// size does not grow with the row count the way `VALUES` lists do.
const UNNEST_ROWS_MAX: usize = 20_000;

/// Where a meter's billing stands before this batch: the key of its next segment.
#[derive(Debug, Clone, Copy)]
pub struct MeterKey {
    pub meter_id: i64,
    pub next_seq: i32,
    pub last_actual_read_on: NaiveDate,
}

#[derive(Debug, Default)]
pub struct BillRows {
    bills: Vec<bill::ActiveModel>,
    segments: Vec<bill_segment::ActiveModel>,
    usage: Vec<bill_usage::ActiveModel>,
    entries: Vec<journal_entry::ActiveModel>,
    postings: Vec<journal_posting::ActiveModel>,
    /// Prepayment each account applies to its new bill (account id -> fen taken, negative).
    prepayment: BTreeMap<i64, i64>,
    /// Per issue date: the bills issued and all their lines, journalled as one entry.
    issued: BTreeMap<NaiveDate, IssuedBills>,
}

#[derive(Debug)]
struct IssuedBills {
    first_bill_no: String,
    account_id: i64,
    count: usize,
    lines: Vec<BillLine>,
}

fn int(value: u64) -> DbResult<i64> {
    i64::try_from(value).map_err(|_| DbError::OutOfRange(format!("{value} is too large to store")))
}

impl BillRows {
    pub fn len(&self) -> usize {
        self.bills.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bills.is_empty()
    }

    pub fn push(
        &mut self,
        account: &account::Model,
        period: Period,
        draft: &DraftBill,
        meters: &HashMap<String, MeterKey>,
    ) -> DbResult<()> {
        let number = bill_no(period, &account.account_no);
        let total_fen = draft.total.to_fen();
        let applied_fen = draft.prepayment_applied.to_fen();
        let status = BillBalance::issued(draft.total, draft.prepayment_applied)
            .map_err(|e| DbError::Refused(format!("bill {number}: {e}")))?
            .status;
        self.bills.push(bill::ActiveModel {
            bill_no: Set(number.clone()),
            account_id: Set(account.id),
            period: Set(period.to_string()),
            estimated: Set(draft.estimated),
            volume_m3: Set(int(draft.volume_m3)?),
            period_from: Set(draft.from),
            period_to: Set(draft.to),
            total_fen: Set(total_fen),
            principal_paid_fen: Set(applied_fen),
            late_fee_paid_fen: Set(0),
            prepayment_applied_fen: Set(applied_fen),
            status: Set(status.as_str().to_owned()),
            issued_on: Set(draft.issued_on),
            due_on: Set(draft.due_on),
            lines: Set(super::bill_lines::encode(&draft.lines)?),
            ..Default::default()
        });
        self.push_segments(&number, draft, meters)?;
        for &(year, volume) in &draft.usage_by_year {
            self.usage.push(bill_usage::ActiveModel {
                bill_no: Set(number.clone()),
                account_id: Set(account.id),
                year: Set(year),
                volume_m3: Set(int(volume)?),
                ..Default::default()
            });
        }
        let issued = self
            .issued
            .entry(draft.issued_on)
            .or_insert_with(|| IssuedBills {
                first_bill_no: number.clone(),
                account_id: account.id,
                count: 0,
                lines: Vec::new(),
            });
        issued.count += 1;
        issued.lines.extend(draft.lines.iter().copied());
        if draft.prepayment_applied.is_positive() {
            let entry = prepayment_applied(draft.prepayment_applied);
            *self.prepayment.entry(account.id).or_default() +=
                super::prepayment::prepayment_delta_fen(&entry);
            let key = format!("{}:{number}", entry.kind);
            self.push_entry(key, Some(account.id), Some(number), draft.issued_on, &entry);
        }
        Ok(())
    }

    /// One `BILL_ISSUED` entry per issue date for the whole batch. A single bill's entry
    /// names its bill and account; a batch's is keyed by its first bill and its size (unique,
    /// since a bill number is issued once) and its postings carry no account.
    fn push_issue_entries(&mut self) {
        for (issued_on, issued) in std::mem::take(&mut self.issued) {
            let entry = bill_issued(&issued.lines);
            let first = issued.first_bill_no;
            if issued.count == 1 {
                let key = format!("{}:{first}", entry.kind);
                self.push_entry(key, Some(issued.account_id), Some(first), issued_on, &entry);
            } else {
                let key = format!("{}:{first}+{}", entry.kind, issued.count - 1);
                self.push_entry(key, None, None, issued_on, &entry);
            }
        }
    }

    fn push_segments(
        &mut self,
        number: &str,
        draft: &DraftBill,
        meters: &HashMap<String, MeterKey>,
    ) -> DbResult<()> {
        for segment in &draft.segments {
            let key = meters.get(&segment.meter_no).ok_or_else(|| {
                DbError::Refused(format!("meter {} is not on the account", segment.meter_no))
            })?;
            let last_actual_read_on = if segment.actual_index.is_some() {
                segment.read_on
            } else {
                key.last_actual_read_on
            };
            self.segments.push(bill_segment::ActiveModel {
                bill_no: Set(number.to_owned()),
                meter_id: Set(key.meter_id),
                meter_seq: Set(key.next_seq),
                previous_index: Set(int(segment.previous_index)?),
                current_index: Set(int(segment.current_index)?),
                volume_m3: Set(int(segment.volume_m3)?),
                actual_index: Set(segment.actual_index.map(int).transpose()?),
                read_on: Set(segment.read_on),
                last_actual_index: Set(int(segment.new_state.last_actual_index)?),
                last_actual_read_on: Set(last_actual_read_on),
                ..Default::default()
            });
        }
        Ok(())
    }

    fn push_entry(
        &mut self,
        key: String,
        account_id: Option<i64>,
        bill_no: Option<String>,
        posted_on: NaiveDate,
        entry: &JournalEntry,
    ) {
        self.entries.push(journal_entry::ActiveModel {
            entry_key: Set(key.clone()),
            kind: Set(entry.kind.to_owned()),
            account_id: Set(account_id),
            bill_no: Set(bill_no),
            posted_on: Set(posted_on),
            ..Default::default()
        });
        for posting in &entry.postings {
            self.postings.push(journal_posting::ActiveModel {
                entry_key: Set(key.clone()),
                ledger: Set(posting.ledger.as_str().to_owned()),
                account_id: Set(account_id),
                debit_fen: Set(posting.debit.to_fen()),
                credit_fen: Set(posting.credit.to_fen()),
                ..Default::default()
            });
        }
    }

    /// Inserts every row and takes the applied prepayment off the accounts; the caller owns the
    /// transaction and holds the accounts' rows (`db::prepayment::lock_accounts`).
    pub async fn insert(mut self, db: &impl ConnectionTrait) -> DbResult<()> {
        self.push_issue_entries();
        insert_chunked::<bill::Entity, _>(db, self.bills).await?;
        insert_chunked::<bill_segment::Entity, _>(db, self.segments).await?;
        insert_chunked::<bill_usage::Entity, _>(db, self.usage).await?;
        insert_chunked::<journal_entry::Entity, _>(db, self.entries).await?;
        insert_chunked::<journal_posting::Entity, _>(db, self.postings).await?;
        super::prepayment::adjust_prepayments(db, &self.prepayment).await
    }
}

pub(crate) async fn insert_chunked<E, A>(db: &impl ConnectionTrait, rows: Vec<A>) -> DbResult<()>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
{
    if db.get_database_backend() == DatabaseBackend::Postgres {
        for chunk in rows.chunks(UNNEST_ROWS_MAX) {
            insert_unnest::<E, A>(db, chunk).await?;
        }
        return Ok(());
    }
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(INSERT_ROWS_MAX).collect();
        E::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(())
}

/// PostgreSQL only: `INSERT INTO t (cols) SELECT * FROM UNNEST($1::type[], ...)`, binding one
/// array per column instead of one parameter per value (several times faster for big batches).
/// A column set on some rows must be set on all of them.
async fn insert_unnest<E, A>(db: &impl ConnectionTrait, rows: &[A]) -> DbResult<()>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
{
    use sea_orm::{IdenStatic, Iterable, Statement, Value};
    let Some(first) = rows.first() else {
        return Ok(());
    };
    // A column the rows leave unset (the generated `id`, a column with a default) is left to
    // the database, as a `VALUES` insert would.
    let columns: Vec<E::Column> = E::Column::iter()
        .filter(|c| c.as_str() != "id" && first.get(*c).is_set())
        .collect();
    let mut arrays: Vec<Vec<Value>> = vec![Vec::with_capacity(rows.len()); columns.len()];
    for row in rows {
        for (array, column) in arrays.iter_mut().zip(&columns) {
            let value = row.get(*column).into_value().ok_or_else(|| {
                super::corrupt("insert", format!("column {} not set", column.as_str()))
            })?;
            array.push(value);
        }
    }
    // The array binder cannot carry NULL elements: a nullable column travels as a filled-in
    // array plus a boolean mask, and the SELECT turns masked entries back into NULL.
    let mut params = Vec::new();
    let mut unnest_args = Vec::new();
    let mut selected = Vec::new();
    for (i, (array, column)) in arrays.into_iter().zip(&columns).enumerate() {
        let sample = first
            .get(*column)
            .into_value()
            .unwrap_or(Value::String(None));
        let pg_type = pg_array_type(&sample).ok_or_else(|| {
            super::corrupt("insert", format!("no array type for {}", column.as_str()))
        })?;
        let has_null = array.iter().any(|v| !v.is_some());
        let array_type = sample.array_type();
        let filled: Vec<Value> = if has_null {
            let mask: Vec<Value> = array
                .iter()
                .map(|v| Value::Bool(Some(!v.is_some())))
                .collect();
            params.push(Value::Array(
                sea_orm::sea_query::ArrayType::Bool,
                Some(Box::new(mask)),
            ));
            unnest_args.push(format!("${}::boolean[]", params.len()));
            array
                .into_iter()
                .map(|v| if v.is_some() { v } else { filler(&v) })
                .collect()
        } else {
            array
        };
        params.push(Value::Array(array_type, Some(Box::new(filled))));
        unnest_args.push(format!("${}::{pg_type}", params.len()));
        selected.push(if has_null {
            format!("CASE WHEN u.m{i} THEN NULL ELSE u.c{i} END")
        } else {
            format!("u.c{i}")
        });
    }
    let aliases: Vec<String> = columns
        .iter()
        .enumerate()
        .flat_map(|(i, _)| {
            let masked = selected[i].starts_with("CASE");
            masked
                .then(|| format!("m{i}"))
                .into_iter()
                .chain(std::iter::once(format!("c{i}")))
        })
        .collect();
    let names: Vec<String> = columns
        .iter()
        .map(|c| format!("\"{}\"", c.as_str()))
        .collect();
    let sql = format!(
        "INSERT INTO \"{}\" ({}) SELECT {} FROM UNNEST({}) AS u({})",
        E::default().table_name(),
        names.join(", "),
        selected.join(", "),
        unnest_args.join(", "),
        aliases.join(", ")
    );
    let values = params;
    db.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        sql,
        values,
    ))
    .await?;
    Ok(())
}

/// A non-NULL stand-in of the same type, for a masked NULL.
fn filler(value: &sea_orm::Value) -> sea_orm::Value {
    use sea_orm::Value;
    match value {
        Value::Bool(_) => Value::Bool(Some(false)),
        Value::SmallInt(_) => Value::SmallInt(Some(0)),
        Value::Int(_) => Value::Int(Some(0)),
        Value::BigInt(_) => Value::BigInt(Some(0)),
        Value::ChronoDate(_) => Value::ChronoDate(Some(NaiveDate::default())),
        Value::ChronoDateTimeUtc(_) => {
            Value::ChronoDateTimeUtc(Some(chrono::DateTime::<chrono::Utc>::default()))
        }
        _ => Value::String(Some(String::new())),
    }
}

fn pg_array_type(value: &sea_orm::Value) -> Option<&'static str> {
    use sea_orm::Value;
    Some(match value {
        Value::Bool(_) => "boolean[]",
        Value::SmallInt(_) => "smallint[]",
        Value::Int(_) => "integer[]",
        Value::BigInt(_) => "bigint[]",
        Value::String(_) => "text[]",
        Value::ChronoDate(_) => "date[]",
        Value::ChronoDateTimeUtc(_) => "timestamptz[]",
        _ => return None,
    })
}
