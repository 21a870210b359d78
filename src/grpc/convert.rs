//! Conversions between proto messages and use-case types. Incoming messages are destructured
//! field by field, so a field added to the proto cannot be silently ignored.

use chrono::NaiveDate;

use super::enums::{self, optional, required};
use super::pb;
use crate::app::accounts::{AccountView, MeterView};
use crate::app::billing::BillView;
use crate::app::cycle::CycleProgress;
use crate::app::readings::ReadingView;
use crate::app::{AppError, AppResult};
use crate::db::entity::closure;
use crate::domain::calendar::parse_date;
use crate::domain::money::{Money, UnitPrice};
use crate::domain::tariff::{PriceChange, TariffVersion, Tier};

/// The large-household base when a tariff does not say.
const BASE_HOUSEHOLD_SIZE_DEFAULT: u32 = 4;

fn money(fen: i64) -> String {
    Money::from_fen(fen).to_string()
}

fn date(value: NaiveDate) -> String {
    value.format("%Y-%m-%d").to_string()
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

pub fn account(view: AccountView) -> AppResult<pb::Account> {
    let AccountView {
        account,
        meters,
        as_of,
        prepayment_balance,
        arrears_principal,
        late_fee,
        amount_due,
    } = view;
    Ok(pb::Account {
        account_no: account.account_no,
        holder_name: account.holder_name,
        address: account.address,
        customer_class: enums::customer_class_stored(&account.customer_class)?,
        household_size: u32::try_from(account.household_size).unwrap_or_default(),
        tariff_code: account.tariff_code,
        status: enums::account_status_stored(&account.status)?,
        prepayment_balance: prepayment_balance.to_string(),
        arrears_principal: arrears_principal.to_string(),
        late_fee: late_fee.to_string(),
        amount_due: amount_due.to_string(),
        as_of: date(as_of),
        meters: meters.into_iter().map(meter).collect(),
    })
}

pub fn meter(view: MeterView) -> pb::Meter {
    let MeterView {
        meter,
        account_no,
        system_index,
    } = view;
    pb::Meter {
        meter_no: meter.meter_no,
        account_no,
        register_digits: u32::try_from(meter.register_digits).unwrap_or_default(),
        initial_index: unsigned(meter.initial_index),
        installed_on: date(meter.installed_on),
        removed_on: meter.removed_on.map(date).unwrap_or_default(),
        system_index,
    }
}

pub fn tariff_from_proto(tariff: Option<pb::Tariff>) -> AppResult<TariffVersion> {
    let tariff = tariff.ok_or_else(|| AppError::invalid("tariff", "is required"))?;
    let pb::Tariff {
        code,
        customer_class,
        effective_from,
        tiers,
        sewage_price,
        resource_price,
        base_household_size,
        extra_m3_per_person,
        price_change,
    } = tariff;
    let tiers = tiers
        .into_iter()
        .enumerate()
        .map(
            |(
                i,
                pb::Tier {
                    up_to_m3,
                    water_price,
                },
            )| {
                let field = format!("tiers[{i}]");
                let up_to_m3 = match up_to_m3.as_str() {
                    "" => None,
                    text => Some(text.parse::<u64>().map_err(|_| {
                        AppError::invalid(
                            &format!("{field}.up_to_m3"),
                            format!("{text:?} is not a whole number of m³"),
                        )
                    })?),
                };
                let water_price = UnitPrice::parse(&water_price)
                    .map_err(|e| AppError::invalid(&format!("{field}.water_price"), e))?;
                Ok(Tier {
                    up_to_m3,
                    water_price,
                })
            },
        )
        .collect::<AppResult<Vec<_>>>()?;
    Ok(TariffVersion {
        code,
        customer_class: required(
            "customer_class",
            customer_class,
            enums::customer_class_from_proto,
        )?,
        effective_from: parse_date(&effective_from)
            .map_err(|e| AppError::invalid("effective_from", e))?,
        tiers,
        sewage_price: UnitPrice::parse(&sewage_price)
            .map_err(|e| AppError::invalid("sewage_price", e))?,
        resource_price: UnitPrice::parse(&resource_price)
            .map_err(|e| AppError::invalid("resource_price", e))?,
        base_household_size: if base_household_size == 0 {
            BASE_HOUSEHOLD_SIZE_DEFAULT
        } else {
            base_household_size
        },
        extra_m3_per_person,
        price_change: optional("price_change", price_change, enums::price_change_from_proto)?
            .unwrap_or(PriceChange::ReadingDate),
    })
}

pub fn tariff(version: TariffVersion) -> pb::Tariff {
    pb::Tariff {
        tiers: version
            .tiers
            .iter()
            .map(|tier| pb::Tier {
                up_to_m3: tier.up_to_m3.map(|v| v.to_string()).unwrap_or_default(),
                water_price: tier.water_price.to_string(),
            })
            .collect(),
        customer_class: enums::customer_class_to_proto(version.customer_class).into(),
        effective_from: date(version.effective_from),
        sewage_price: version.sewage_price.to_string(),
        resource_price: version.resource_price.to_string(),
        base_household_size: version.base_household_size,
        extra_m3_per_person: version.extra_m3_per_person,
        price_change: enums::price_change_to_proto(version.price_change).into(),
        code: version.code,
    }
}

pub fn reading(view: ReadingView) -> AppResult<pb::Reading> {
    let ReadingView { reading, meter_no } = view;
    Ok(pb::Reading {
        reading_id: unsigned(reading.id),
        meter_no,
        index: unsigned(reading.index_value),
        read_on: date(reading.read_on),
        source: enums::reading_source_stored(&reading.source)?,
        reading_ref: reading.reading_ref.unwrap_or_default(),
        volume_m3: unsigned(reading.volume_m3),
    })
}

pub fn bill(view: BillView) -> AppResult<pb::Bill> {
    let BillView {
        bill,
        account_no,
        segments,
        lines,
    } = view;
    let lines = lines
        .into_iter()
        .map(|l| {
            let (kind, tier) = enums::line_kind_stored(&l.kind)?;
            Ok(pb::BillLine {
                kind,
                volume_m3: unsigned(l.volume_m3),
                unit_price: l.unit_price,
                amount: money(l.amount_fen),
                tier,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(pb::Bill {
        bill_no: bill.bill_no,
        account_no,
        period: bill.period,
        segments: segments
            .into_iter()
            .map(|(meter_no, s)| pb::BillSegment {
                meter_no,
                previous_index: unsigned(s.previous_index),
                current_index: unsigned(s.current_index),
                volume_m3: unsigned(s.volume_m3),
            })
            .collect(),
        estimated: bill.estimated,
        lines,
        total_amount: money(bill.total_fen),
        paid_amount: money(bill.principal_paid_fen),
        status: enums::bill_status_stored(&bill.status)?,
        issued_on: date(bill.issued_on),
        due_on: date(bill.due_on),
        volume_m3: unsigned(bill.volume_m3),
        prepayment_applied: money(bill.prepayment_applied_fen),
    })
}

pub fn progress(progress: CycleProgress) -> pb::BillingCycleProgress {
    let CycleProgress {
        total,
        processed,
        issued,
        skipped,
        failed,
        already_billed,
        done,
    } = progress;
    pb::BillingCycleProgress {
        total,
        processed,
        issued,
        skipped,
        failed,
        done,
        already_billed,
    }
}

pub fn closure(row: closure::Model) -> pb::Closure {
    pb::Closure {
        id: unsigned(row.id),
        starts_on: date(row.starts_on),
        ends_on: date(row.ends_on),
        reason: row.reason,
        waive_late_fees: row.waive_late_fees,
        close_counters: row.close_counters,
        scheduled_ends_on: date(row.scheduled_ends_on),
    }
}
