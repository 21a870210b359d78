//! Bills: issuing one (idempotent per account and period), reading and listing them, and the
//! batch engine the billing cycle shares with `IssueBill`.
//!
//! A batch locks its accounts' rows, reads everything they need in a fixed number of queries
//! inside that same transaction, drafts each bill with the pure domain rules, and writes all
//! rows with multi-row inserts before it commits: a refund or payment on one of the accounts
//! waits for the batch, so a prepayment cannot be applied to a bill and spent elsewhere.
//! Billing state is append-only: a meter's position is its newest bill segment, an account's
//! yearly volume is the sum of its bill usage rows, its prepayment is its journal (mirrored on the account row). Unique keys
//! (account+period, meter+segment sequence, journal entry key) make a concurrent duplicate fail
//! instead of double-billing.

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::accounts::find_account;
use super::validate;
use super::{App, AppError, AppResult};
use crate::db::bill_lines::{self, StoredLine};
use crate::db::entity::{account, bill, bill_segment, meter};
use crate::db::writes::{BillRows, MeterKey};
use crate::db::{prepayment, queries};
use crate::domain::billing::{
    AccountSnapshot, BillOutcome, BillRequest, MeterSnapshot, draft_bill,
};
use crate::domain::calendar::Period;
use crate::domain::reading::MeterState;
use crate::domain::tariff::TariffVersion;

pub const UNPAID: &str = "UNPAID";
pub const PARTIALLY_PAID: &str = "PARTIALLY_PAID";
pub const PAID: &str = "PAID";
pub const VOID: &str = "VOID";
const LIST_PAGE_SIZE_DEFAULT: u64 = 50;
const LIST_PAGE_SIZE_MAX: u64 = 500;

#[derive(Debug, Clone)]
pub struct BillView {
    pub bill: bill::Model,
    pub account_no: String,
    pub segments: Vec<(String, bill_segment::Model)>,
    pub lines: Vec<StoredLine>,
}

/// What happened to one account in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountOutcome {
    Issued,
    Skipped(String),
    Failed(String),
}

impl App {
    pub async fn issue_bill(
        &self,
        account_no: &str,
        period: &str,
        issued_on: &str,
    ) -> AppResult<BillView> {
        let period = validate::period("period", period)?;
        let today = self.today();
        let issued_on = validate::date_or("issued_on", issued_on, today)?;
        check_period(period, issued_on, today)?;
        let account = find_account(&self.db, account_no).await?;
        if let Some(view) = self.find_bill_for(&account, period).await? {
            return Ok(view);
        }
        let later = bill::Entity::find()
            .filter(bill::Column::AccountId.eq(account.id))
            .filter(bill::Column::Period.gt(period.to_string()))
            .one(&self.db)
            .await?;
        if let Some(later) = later {
            return Err(AppError::FailedPrecondition(format!(
                "account {account_no} is already billed for the later period {}; periods are billed in order",
                later.period
            )));
        }
        let versions = queries::tariff_versions_by_code(&self.db).await?;
        // The account row is the lock: the balance and the meters are read under it, so a
        // refund or payment on the account waits for this bill (and the reverse).
        let txn = crate::db::begin_write(&self.db).await?;
        let locked = prepayment::lock_accounts(&txn, &[account.id]).await?;
        let (rows, outcomes) =
            prepare_batch(&txn, &locked, period, issued_on, &versions, &self.settings).await?;
        match outcomes.into_iter().next() {
            Some((_, AccountOutcome::Skipped(reason) | AccountOutcome::Failed(reason))) => {
                txn.rollback().await?;
                // A concurrent request may have billed the period meanwhile, consuming the reading.
                if let Some(view) = self.find_bill_for(&account, period).await? {
                    return Ok(view);
                }
                return Err(AppError::FailedPrecondition(format!(
                    "no bill for {account_no} in {period}: {reason}"
                )));
            }
            Some((_, AccountOutcome::Issued)) => {}
            None => {
                return Err(AppError::NotFound(format!(
                    "account {account_no} does not exist"
                )));
            }
        }
        match write_and_commit(txn, rows).await {
            Ok(()) => {}
            Err(err) if err.is_unique_violation() => {
                if let Some(view) = self.find_bill_for(&account, period).await? {
                    return Ok(view);
                }
                return Err(AppError::Conflict(format!(
                    "account {account_no} was billed concurrently; retry"
                )));
            }
            Err(err) => return Err(err),
        }
        self.find_bill_for(&account, period).await?.ok_or_else(|| {
            AppError::Database(sea_orm::DbErr::RecordNotFound("bill just written".into()))
        })
    }

    /// How many issued bills were estimates (估抄).
    pub async fn count_estimated_bills(&self) -> AppResult<u64> {
        use sea_orm::PaginatorTrait;
        Ok(bill::Entity::find()
            .filter(bill::Column::Estimated.eq(true))
            .count(&self.db)
            .await?)
    }

    pub async fn get_bill(&self, bill_no: &str) -> AppResult<BillView> {
        let bill = bill::Entity::find()
            .filter(bill::Column::BillNo.eq(bill_no))
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("bill {bill_no:?} does not exist")))?;
        let account = account::Entity::find_by_id(bill.account_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| queries::corrupt("bill", "account missing"))?;
        self.bill_view(bill, account.account_no).await
    }

    pub async fn list_bills(
        &self,
        account_no: &str,
        status: &str,
        page_size: u32,
        page_token: &str,
    ) -> AppResult<(Vec<BillView>, String)> {
        let account = find_account(&self.db, account_no).await?;
        let page_size = match u64::from(page_size) {
            0 => LIST_PAGE_SIZE_DEFAULT,
            n if n <= LIST_PAGE_SIZE_MAX => n,
            n => {
                return Err(AppError::invalid(
                    "page_size",
                    format!("{n} is above the maximum {LIST_PAGE_SIZE_MAX}"),
                ));
            }
        };
        let mut query = bill::Entity::find().filter(bill::Column::AccountId.eq(account.id));
        if !status.is_empty() {
            if ![UNPAID, PARTIALLY_PAID, PAID, VOID].contains(&status) {
                return Err(AppError::invalid(
                    "status",
                    format!("{status:?} is not UNPAID, PARTIALLY_PAID, PAID or VOID"),
                ));
            }
            query = query.filter(bill::Column::Status.eq(status));
        }
        if !page_token.is_empty() {
            let before: i64 = page_token.parse().map_err(|_| {
                AppError::invalid("page_token", "is not a token this service returned")
            })?;
            query = query.filter(bill::Column::Id.lt(before));
        }
        let bills = query
            .order_by_desc(bill::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?;
        let has_more = bills.len() as u64 > page_size;
        let mut views = Vec::with_capacity(bills.len());
        for bill in bills.into_iter().take(page_size as usize) {
            views.push(self.bill_view(bill, account.account_no.clone()).await?);
        }
        let next = match (has_more, views.last()) {
            (true, Some(last)) => last.bill.id.to_string(),
            _ => String::new(),
        };
        Ok((views, next))
    }

    async fn find_bill_for(
        &self,
        account: &account::Model,
        period: Period,
    ) -> AppResult<Option<BillView>> {
        let found = bill::Entity::find()
            .filter(bill::Column::AccountId.eq(account.id))
            .filter(bill::Column::Period.eq(period.to_string()))
            .one(&self.db)
            .await?;
        match found {
            Some(bill) => Ok(Some(
                self.bill_view(bill, account.account_no.clone()).await?,
            )),
            None => Ok(None),
        }
    }

    async fn bill_view(&self, bill: bill::Model, account_no: String) -> AppResult<BillView> {
        let segments = bill_segment::Entity::find()
            .filter(bill_segment::Column::BillNo.eq(&bill.bill_no))
            .order_by_asc(bill_segment::Column::Id)
            .all(&self.db)
            .await?;
        let meter_ids: Vec<i64> = segments.iter().map(|s| s.meter_id).collect();
        let meters: HashMap<i64, String> = meter::Entity::find()
            .filter(meter::Column::Id.is_in(meter_ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| (m.id, m.meter_no))
            .collect();
        let segments = segments
            .into_iter()
            .map(|s| (meters.get(&s.meter_id).cloned().unwrap_or_default(), s))
            .collect();
        let lines = bill_lines::decode(&bill.lines)?;
        Ok(BillView {
            bill,
            account_no,
            segments,
            lines,
        })
    }
}

/// A period can be billed once it has begun, on or after its first day.
pub fn check_period(period: Period, issued_on: NaiveDate, today: NaiveDate) -> AppResult<()> {
    if period.first_day() > today {
        return Err(AppError::invalid(
            "period",
            format!("{period} is in the future (today is {today})"),
        ));
    }
    if issued_on < period.first_day() {
        return Err(AppError::invalid(
            "issued_on",
            format!("{issued_on} is before period {period} begins"),
        ));
    }
    Ok(())
}

/// Inserts `rows` in `txn` and commits it; on error the transaction is rolled back (dropped).
pub async fn write_and_commit(txn: DatabaseTransaction, rows: BillRows) -> AppResult<()> {
    rows.insert(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// Per meter: where billing stands and which readings it has not consumed yet.
struct MeterContext {
    meter: meter::Model,
    next_seq: i32,
    state: MeterState,
    last_billed_on: NaiveDate,
    last_actual_read_on: NaiveDate,
}

/// Reads what the accounts need and drafts their bills; nothing is written. `accounts` must
/// have been read by `db::prepayment::lock_accounts` in `db`, the transaction that will write
/// the bills: their prepayment balance is taken from those rows.
pub async fn prepare_batch(
    db: &impl ConnectionTrait,
    accounts: &[account::Model],
    period: Period,
    issued_on: NaiveDate,
    versions: &HashMap<String, Vec<TariffVersion>>,
    settings: &super::BillingSettings,
) -> AppResult<(BillRows, Vec<(String, AccountOutcome)>)> {
    let account_ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
    let meters = meter::Entity::find()
        .filter(queries::ids_in(meter::Column::AccountId, &account_ids))
        .order_by_asc(meter::Column::Id)
        .all(db)
        .await?;
    let contexts = meter_contexts(db, meters).await?;
    let readings = latest_readings(db, &contexts, period).await?;
    let history = queries::recent_actual_volumes(db, &account_ids, period).await?;
    let by_year = queries::billed_by_year(db, &account_ids, period.year - 1).await?;
    let request = BillRequest {
        period,
        issued_on,
        due_days: settings.due_days,
        rollover_max_m3: settings.rollover_max_m3,
    };
    let mut rows = BillRows::default();
    let mut outcomes = Vec::with_capacity(accounts.len());
    let no_versions = Vec::new();
    let mut meters_of: HashMap<i64, Vec<&MeterContext>> = HashMap::new();
    for context in &contexts {
        meters_of
            .entry(context.meter.account_id)
            .or_default()
            .push(context);
    }
    for account in accounts {
        let meters = meters_of.remove(&account.id).unwrap_or_default();
        let snapshot = AccountSnapshot {
            account_no: &account.account_no,
            household_size: u32::try_from(account.household_size).unwrap_or(1),
            versions: versions.get(&account.tariff_code).unwrap_or(&no_versions),
            meters: meters
                .iter()
                .filter_map(|c| meter_snapshot(c, readings.get(&c.meter.id)))
                .collect(),
            recent_actual_volumes: history.get(&account.id).cloned().unwrap_or_default(),
            billed_by_year: by_year.get(&account.id).cloned().unwrap_or_default(),
            prepayment_balance: crate::domain::money::Money::from_fen(account.prepayment_fen),
        };
        let outcome = match draft_bill(&snapshot, &request) {
            Ok(BillOutcome::Issue(draft)) => {
                let keys: HashMap<String, MeterKey> = meters
                    .iter()
                    .map(|c| {
                        (
                            c.meter.meter_no.clone(),
                            MeterKey {
                                meter_id: c.meter.id,
                                next_seq: c.next_seq,
                                last_actual_read_on: c.last_actual_read_on,
                            },
                        )
                    })
                    .collect();
                rows.push(account, period, &draft, &keys)?;
                AccountOutcome::Issued
            }
            Ok(BillOutcome::Skip(reason)) => AccountOutcome::Skipped(reason.to_string()),
            Err(err) => AccountOutcome::Failed(err.to_string()),
        };
        outcomes.push((account.account_no.clone(), outcome));
    }
    Ok((rows, outcomes))
}

async fn meter_contexts(
    db: &impl ConnectionTrait,
    meters: Vec<meter::Model>,
) -> AppResult<Vec<MeterContext>> {
    let ids: Vec<i64> = meters.iter().map(|m| m.id).collect();
    let mut segments = queries::last_segments(db, &ids).await?;
    meters
        .into_iter()
        .map(|meter| {
            let to_u64 = |v: i64| u64::try_from(v).map_err(|e| queries::corrupt("meter state", e));
            Ok(match segments.remove(&meter.id) {
                Some(seg) => MeterContext {
                    next_seq: seg.meter_seq + 1,
                    state: MeterState {
                        last_actual_index: to_u64(seg.last_actual_index)?,
                        system_index: to_u64(seg.current_index)?,
                    },
                    last_billed_on: seg.read_on,
                    last_actual_read_on: seg.last_actual_read_on,
                    meter,
                },
                None => MeterContext {
                    next_seq: 0,
                    state: MeterState {
                        last_actual_index: to_u64(meter.initial_index)?,
                        system_index: to_u64(meter.initial_index)?,
                    },
                    last_billed_on: meter.installed_on,
                    // Readings dated on the installation day count: nothing before them is billed.
                    last_actual_read_on: meter
                        .installed_on
                        .pred_opt()
                        .unwrap_or(meter.installed_on),
                    meter,
                },
            })
        })
        .collect()
}

/// Each meter's newest unbilled accepted reading dated within or before `period`.
async fn latest_readings(
    db: &impl ConnectionTrait,
    contexts: &[MeterContext],
    period: Period,
) -> AppResult<HashMap<i64, (u64, NaiveDate)>> {
    let Some(after) = contexts.iter().map(|c| c.last_actual_read_on).min() else {
        return Ok(HashMap::new());
    };
    let ids: Vec<i64> = contexts.iter().map(|c| c.meter.id).collect();
    let last_read: HashMap<i64, NaiveDate> = contexts
        .iter()
        .map(|c| (c.meter.id, c.last_actual_read_on))
        .collect();
    let mut latest = HashMap::new();
    for reading in queries::readings_between(db, &ids, after, period.last_day()).await? {
        if last_read
            .get(&reading.meter_id)
            .is_some_and(|on| reading.read_on > *on)
        {
            let index =
                u64::try_from(reading.index_value).map_err(|e| queries::corrupt("reading", e))?;
            latest.insert(reading.meter_id, (index, reading.read_on));
        }
    }
    Ok(latest)
}

fn meter_snapshot(
    context: &MeterContext,
    reading: Option<&(u64, NaiveDate)>,
) -> Option<MeterSnapshot> {
    let active = context.meter.removed_on.is_none();
    if !active && reading.is_none() {
        return None;
    }
    Some(MeterSnapshot {
        meter_no: context.meter.meter_no.clone(),
        register_digits: u8::try_from(context.meter.register_digits).unwrap_or(9),
        state: context.state,
        last_billed_on: context.last_billed_on,
        new_reading: reading.copied(),
        active,
    })
}
