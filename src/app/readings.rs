//! Meter readings: validated against the register (digits, rollover bound) and the meter's
//! history, idempotent on the caller's `reading_ref`. A reading that implies an implausible
//! rollover is kept for review as REJECTED and the caller gets an error.

use chrono::NaiveDate;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::accounts::digits_of;
use super::tariffs::to_i64;
use super::validate;
use super::{App, AppError, AppResult};
use crate::db::entity::{meter, reading};
use crate::domain::reading::{
    ReadingError, ReadingSource, ReadingStatus, check_index, forward_volume,
};

const READING_REF_LEN_MAX: usize = 64;

#[derive(Debug, Clone)]
pub struct NewReading {
    pub meter_no: String,
    pub index: u64,
    pub read_on: String,
    /// `None`: ACTUAL.
    pub source: Option<ReadingSource>,
    pub reading_ref: String,
}

#[derive(Debug, Clone)]
pub struct ReadingView {
    pub reading: reading::Model,
    pub meter_no: String,
}

impl App {
    pub async fn record_reading(&self, new: NewReading) -> AppResult<ReadingView> {
        let read_on = validate::date("read_on", &new.read_on)?;
        validate::not_future("read_on", read_on, self.today())?;
        let source = new.source.unwrap_or(ReadingSource::Actual);
        let reading_ref = match new.reading_ref.as_str() {
            "" => None,
            r if r.len() > READING_REF_LEN_MAX => {
                return Err(AppError::invalid(
                    "reading_ref",
                    format!("must be at most {READING_REF_LEN_MAX} bytes"),
                ));
            }
            r => Some(r.to_owned()),
        };
        let meter = meter::Entity::find()
            .filter(meter::Column::MeterNo.eq(&new.meter_no))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                AppError::NotFound(format!("meter {:?} does not exist", new.meter_no))
            })?;
        if let Some(existing) = find_by_ref(&self.db, reading_ref.as_deref()).await? {
            return same_reading(existing, &meter, new.index, read_on, source);
        }
        let digits = digits_of(&meter)?;
        check_index(new.index, digits).map_err(|e| AppError::invalid("index", e))?;
        check_in_service(&meter, read_on)?;
        let txn = crate::db::begin_write(&self.db).await?;
        let (previous_index, previous_on) = last_accepted(&txn, &meter).await?;
        if read_on < previous_on {
            return Err(AppError::FailedPrecondition(format!(
                "meter {} already has a reading or installation dated {previous_on}; readings must be recorded in date order",
                meter.meter_no
            )));
        }
        let outcome = forward_volume(
            previous_index,
            new.index,
            digits,
            self.settings.rollover_max_m3,
        );
        let stored = outcome.as_ref().map(|volume| *volume);
        let saved = insert_reading(
            &txn,
            &meter,
            new.index,
            read_on,
            source,
            reading_ref,
            stored,
        )
        .await;
        let saved = match saved {
            Ok(saved) => saved,
            Err(err) if err.is_unique_violation() => {
                return Err(AppError::Conflict(
                    "a reading with this reading_ref was recorded concurrently; retry".into(),
                ));
            }
            Err(err) => return Err(err),
        };
        txn.commit().await?;
        match outcome {
            Ok(_) => Ok(ReadingView {
                reading: saved,
                meter_no: meter.meter_no,
            }),
            Err(err) => Err(rejection(&err)),
        }
    }
}

fn check_in_service(meter: &meter::Model, read_on: NaiveDate) -> AppResult<()> {
    if read_on < meter.installed_on {
        return Err(AppError::FailedPrecondition(format!(
            "meter {} was installed on {}, after read_on {read_on}",
            meter.meter_no, meter.installed_on
        )));
    }
    if let Some(removed_on) = meter.removed_on {
        return Err(AppError::FailedPrecondition(format!(
            "meter {} was removed on {removed_on}; record readings on its replacement",
            meter.meter_no
        )));
    }
    Ok(())
}

fn rejection(err: &ReadingError) -> AppError {
    AppError::InvalidArgument(format!(
        "{err}; the reading was kept for review and not billed"
    ))
}

async fn find_by_ref(
    db: &impl ConnectionTrait,
    reading_ref: Option<&str>,
) -> AppResult<Option<reading::Model>> {
    let Some(reading_ref) = reading_ref else {
        return Ok(None);
    };
    Ok(reading::Entity::find()
        .filter(reading::Column::ReadingRef.eq(reading_ref))
        .one(db)
        .await?)
}

/// A replayed `reading_ref` answers with the stored reading, or says how it differs.
fn same_reading(
    existing: reading::Model,
    meter: &meter::Model,
    index: u64,
    read_on: NaiveDate,
    source: ReadingSource,
) -> AppResult<ReadingView> {
    let stored_source = ReadingSource::parse(&existing.source)
        .map_err(|e| crate::db::queries::corrupt("reading", e))?;
    let stored_status = ReadingStatus::parse(&existing.status)
        .map_err(|e| crate::db::queries::corrupt("reading", e))?;
    let same = existing.meter_id == meter.id
        && u64::try_from(existing.index_value).ok() == Some(index)
        && existing.read_on == read_on
        && stored_source == source;
    if !same {
        return Err(AppError::AlreadyExists(format!(
            "reading_ref {:?} was already used for a different reading (index {} on {})",
            existing.reading_ref.unwrap_or_default(),
            existing.index_value,
            existing.read_on
        )));
    }
    if stored_status == ReadingStatus::Rejected {
        return Err(AppError::InvalidArgument(format!(
            "this reading was rejected earlier and kept for review: {}",
            existing.note.unwrap_or_default()
        )));
    }
    Ok(ReadingView {
        reading: existing,
        meter_no: meter.meter_no.clone(),
    })
}

/// The meter's latest accepted reading (index, date), or its installation.
pub async fn last_accepted(
    db: &impl ConnectionTrait,
    meter: &meter::Model,
) -> AppResult<(u64, NaiveDate)> {
    let latest = reading::Entity::find()
        .filter(reading::Column::MeterId.eq(meter.id))
        .filter(reading::Column::Status.eq(ReadingStatus::Accepted.as_str()))
        .order_by_desc(reading::Column::ReadOn)
        .order_by_desc(reading::Column::Id)
        .one(db)
        .await?;
    let (index, on) = match latest {
        Some(r) => (r.index_value, r.read_on),
        None => (meter.initial_index, meter.installed_on),
    };
    let index = u64::try_from(index).map_err(|e| crate::db::queries::corrupt("reading", e))?;
    Ok((index, on))
}

/// Stores a reading: ACCEPTED with its volume, or REJECTED (kept for review) with the reason.
#[allow(clippy::too_many_arguments)]
pub async fn insert_reading(
    db: &impl ConnectionTrait,
    meter: &meter::Model,
    index: u64,
    read_on: NaiveDate,
    source: ReadingSource,
    reading_ref: Option<String>,
    outcome: Result<u64, &ReadingError>,
) -> AppResult<reading::Model> {
    let (status, note, volume_m3) = match outcome {
        Ok(volume) => (ReadingStatus::Accepted, None, volume),
        Err(err) => (ReadingStatus::Rejected, Some(err.to_string()), 0),
    };
    let row = reading::ActiveModel {
        meter_id: Set(meter.id),
        index_value: Set(to_i64(index)?),
        read_on: Set(read_on),
        source: Set(source.as_str().to_owned()),
        reading_ref: Set(reading_ref),
        status: Set(status.as_str().to_owned()),
        note: Set(note),
        volume_m3: Set(to_i64(volume_m3)?),
        ..Default::default()
    };
    Ok(row.insert(db).await?)
}
