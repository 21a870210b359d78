//! Accounts and their meters: opening an account, installing and replacing meters, and the
//! account's standing (prepayment, arrears, late fee) as of a date.

use chrono::NaiveDate;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::tariffs::{to_i32, to_i64};
use super::validate;
use super::{App, AppError, AppResult};
use crate::db::entity::{account, bill, meter, tariff_version};
use crate::db::queries;
use crate::domain::late_fee::late_fee;
use crate::domain::money::Money;
use crate::domain::reading::{check_index, forward_volume};
use crate::domain::tariff::CustomerClass;

pub const ACTIVE: &str = "ACTIVE";
const HOLDER_NAME_LEN_MAX: usize = 200;
const ADDRESS_LEN_MAX: usize = 500;
const HOUSEHOLD_SIZE_MAX: u32 = 99;

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub account_no: String,
    pub holder_name: String,
    pub address: String,
    pub customer_class: String,
    pub household_size: u32,
    pub tariff_code: String,
}

#[derive(Debug, Clone)]
pub struct AccountView {
    pub account: account::Model,
    pub meters: Vec<MeterView>,
    pub as_of: NaiveDate,
    pub prepayment_balance: Money,
    pub arrears_principal: Money,
    pub late_fee: Money,
    pub amount_due: Money,
}

#[derive(Debug, Clone)]
pub struct MeterView {
    pub meter: meter::Model,
    pub account_no: String,
    pub system_index: u64,
}

#[derive(Debug, Clone)]
pub struct NewMeter {
    pub meter_no: String,
    pub register_digits: u32,
    pub initial_index: u64,
    pub installed_on: String,
}

impl App {
    pub async fn create_account(&self, new: NewAccount) -> AppResult<account::Model> {
        let account_no = validate::identifier("account_no", &new.account_no)?;
        let holder_name = validate::text("holder_name", &new.holder_name, HOLDER_NAME_LEN_MAX)?;
        let address = validate::text("address", &new.address, ADDRESS_LEN_MAX)?;
        let class = CustomerClass::parse(&new.customer_class)?;
        if !(1..=HOUSEHOLD_SIZE_MAX).contains(&new.household_size) {
            return Err(AppError::invalid(
                "household_size",
                format!("must be 1 to {HOUSEHOLD_SIZE_MAX}"),
            ));
        }
        let tariff_code = validate::identifier("tariff_code", &new.tariff_code)?;
        let tariff = tariff_version::Entity::find()
            .filter(tariff_version::Column::Code.eq(&tariff_code))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                AppError::NotFound(format!(
                    "tariff {tariff_code} does not exist; create it with UpsertTariff first"
                ))
            })?;
        if tariff.customer_class != class.as_str() {
            return Err(AppError::invalid(
                "tariff_code",
                format!(
                    "tariff {tariff_code} is for {} customers, not {}",
                    tariff.customer_class,
                    class.as_str()
                ),
            ));
        }
        let row = account::ActiveModel {
            account_no: Set(account_no.clone()),
            holder_name: Set(holder_name),
            address: Set(address),
            customer_class: Set(class.as_str().to_owned()),
            household_size: Set(to_i32(new.household_size)?),
            tariff_code: Set(tariff_code),
            status: Set(ACTIVE.to_owned()),
            prepayment_fen: Set(0),
            ..Default::default()
        };
        row.insert(&self.db).await.map_err(|err| {
            crate::app::error::unique_or(err, || {
                AppError::AlreadyExists(format!("account {account_no} already exists"))
            })
        })
    }

    pub async fn get_account(&self, account_no: &str, as_of: &str) -> AppResult<AccountView> {
        let as_of = validate::date_or("as_of", as_of, self.today())?;
        let account = find_account(&self.db, account_no).await?;
        let meters = self.meter_views(&account).await?;
        let balances = queries::prepayment_balances(&self.db, &[account.id]).await?;
        let prepayment_balance = balances.get(&account.id).copied().unwrap_or(Money::ZERO);
        let waivers = queries::late_fee_waivers(&self.db).await?;
        let bills = bill::Entity::find()
            .filter(bill::Column::AccountId.eq(account.id))
            .filter(
                bill::Column::Status
                    .is_in([super::billing::UNPAID, super::billing::PARTIALLY_PAID]),
            )
            .all(&self.db)
            .await?;
        let mut arrears_principal = Money::ZERO;
        let mut fee_total = Money::ZERO;
        for bill in &bills {
            let unpaid = Money::from_fen(bill.total_fen - bill.principal_paid_fen);
            arrears_principal += unpaid;
            let fee = late_fee(
                unpaid,
                bill.due_on,
                as_of,
                &waivers,
                &self.settings.late_fee,
            );
            let fee_unpaid = fee - Money::from_fen(bill.late_fee_paid_fen);
            if fee_unpaid.is_positive() {
                fee_total += fee_unpaid;
            }
        }
        let owed = arrears_principal + fee_total - prepayment_balance;
        let amount_due = if owed.is_positive() {
            owed
        } else {
            Money::ZERO
        };
        Ok(AccountView {
            account,
            meters,
            as_of,
            prepayment_balance,
            arrears_principal,
            late_fee: fee_total,
            amount_due,
        })
    }

    async fn meter_views(&self, account: &account::Model) -> AppResult<Vec<MeterView>> {
        let meters = meter::Entity::find()
            .filter(meter::Column::AccountId.eq(account.id))
            .order_by_asc(meter::Column::Id)
            .all(&self.db)
            .await?;
        let ids: Vec<i64> = meters.iter().map(|m| m.id).collect();
        let segments = queries::last_segments(&self.db, &ids).await?;
        meters
            .into_iter()
            .map(|meter| {
                let system = segments
                    .get(&meter.id)
                    .map_or(meter.initial_index, |s| s.current_index);
                let system_index =
                    u64::try_from(system).map_err(|e| queries::corrupt("meter", e))?;
                Ok(MeterView {
                    meter,
                    account_no: account.account_no.clone(),
                    system_index,
                })
            })
            .collect()
    }

    pub async fn install_meter(&self, account_no: &str, new: NewMeter) -> AppResult<MeterView> {
        let account = find_account(&self.db, account_no).await?;
        let meter_row = self.validated_meter(&account, &new)?;
        let txn = crate::db::begin_write(&self.db).await?;
        if let Some(active) = active_meter(&txn, account.id).await? {
            return Err(AppError::FailedPrecondition(format!(
                "account {account_no} already has meter {} in service; use ReplaceMeter to change it",
                active.meter_no
            )));
        }
        let meter = insert_meter(&txn, meter_row, &new.meter_no).await?;
        txn.commit().await?;
        Ok(MeterView {
            system_index: new.initial_index,
            account_no: account.account_no,
            meter,
        })
    }

    /// Closes the old meter at its final index (a reading billed with the next bill) and puts
    /// the new one in service, in one transaction.
    pub async fn replace_meter(
        &self,
        account_no: &str,
        old_meter_no: &str,
        old_final_index: u64,
        new: NewMeter,
    ) -> AppResult<MeterView> {
        let account = find_account(&self.db, account_no).await?;
        let meter_row = self.validated_meter(&account, &new)?;
        let replaced_on = validate::date("replaced_on", &new.installed_on)?;
        let txn = crate::db::begin_write(&self.db).await?;
        let old = meter::Entity::find()
            .filter(meter::Column::MeterNo.eq(old_meter_no))
            .one(&txn)
            .await?
            .filter(|m| m.account_id == account.id)
            .ok_or_else(|| {
                AppError::NotFound(format!(
                    "meter {old_meter_no} is not a meter of account {account_no}"
                ))
            })?;
        if let Some(removed_on) = old.removed_on {
            return Err(AppError::FailedPrecondition(format!(
                "meter {old_meter_no} was already removed on {removed_on}"
            )));
        }
        let digits = digits_of(&old)?;
        check_index(old_final_index, digits)
            .map_err(|e| AppError::invalid("old_final_index", e))?;
        let (previous_index, previous_on) = super::readings::last_accepted(&txn, &old).await?;
        if replaced_on < previous_on {
            return Err(AppError::FailedPrecondition(format!(
                "replaced_on {replaced_on} is before meter {old_meter_no}'s last reading or installation on {previous_on}"
            )));
        }
        let volume = forward_volume(
            previous_index,
            old_final_index,
            digits,
            self.settings.rollover_max_m3,
        )
        .map_err(|e| AppError::invalid("old_final_index", e))?;
        super::readings::insert_reading(
            &txn,
            &old,
            old_final_index,
            replaced_on,
            crate::domain::reading::ReadingSource::Actual,
            None,
            Ok(volume),
        )
        .await?;
        let mut closing: meter::ActiveModel = old.into();
        closing.removed_on = Set(Some(replaced_on));
        closing.update(&txn).await?;
        let meter = insert_meter(&txn, meter_row, &new.meter_no).await?;
        txn.commit().await?;
        Ok(MeterView {
            system_index: new.initial_index,
            account_no: account.account_no,
            meter,
        })
    }

    fn validated_meter(
        &self,
        account: &account::Model,
        new: &NewMeter,
    ) -> AppResult<meter::ActiveModel> {
        let meter_no = validate::identifier("meter_no", &new.meter_no)?;
        let digits = u8::try_from(new.register_digits)
            .ok()
            .filter(|d| (1..=9).contains(d))
            .ok_or_else(|| AppError::invalid("register_digits", "must be 1 to 9"))?;
        check_index(new.initial_index, digits)
            .map_err(|e| AppError::invalid("initial_index", e))?;
        let installed_on = validate::date("installed_on", &new.installed_on)?;
        validate::not_future("installed_on", installed_on, self.today())?;
        Ok(meter::ActiveModel {
            meter_no: Set(meter_no),
            account_id: Set(account.id),
            register_digits: Set(i16::from(digits)),
            initial_index: Set(to_i64(new.initial_index)?),
            installed_on: Set(installed_on),
            removed_on: Set(None),
            ..Default::default()
        })
    }
}

pub async fn find_account(
    db: &impl ConnectionTrait,
    account_no: &str,
) -> AppResult<account::Model> {
    account::Entity::find()
        .filter(account::Column::AccountNo.eq(account_no))
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("account {account_no:?} does not exist")))
}

async fn active_meter(
    db: &impl ConnectionTrait,
    account_id: i64,
) -> AppResult<Option<meter::Model>> {
    Ok(meter::Entity::find()
        .filter(meter::Column::AccountId.eq(account_id))
        .filter(meter::Column::RemovedOn.is_null())
        .one(db)
        .await?)
}

async fn insert_meter(
    db: &impl ConnectionTrait,
    row: meter::ActiveModel,
    meter_no: &str,
) -> AppResult<meter::Model> {
    row.insert(db).await.map_err(|err| {
        crate::app::error::unique_or(err, || {
            AppError::AlreadyExists(format!("meter {meter_no} already exists"))
        })
    })
}

pub fn digits_of(meter: &meter::Model) -> AppResult<u8> {
    Ok(u8::try_from(meter.register_digits)
        .map_err(|e| queries::corrupt("meter register digits", e))?)
}
