//! Tariff versions: published price notices, stored exactly as given and looked up by code.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::{App, AppError, AppResult};
use crate::db::entity::tariff_version;
use crate::domain::tariff::{TariffVersion, encode_tiers};

impl App {
    /// Creates the version `(code, effective_from)` or replaces its prices.
    pub async fn upsert_tariff(&self, version: TariffVersion) -> AppResult<TariffVersion> {
        version.validate()?;
        let existing = tariff_version::Entity::find()
            .filter(tariff_version::Column::Code.eq(&version.code))
            .all(&self.db)
            .await?;
        if let Some(other) = existing
            .iter()
            .find(|v| v.customer_class != version.customer_class.as_str())
        {
            return Err(AppError::FailedPrecondition(format!(
                "tariff {} is for {} customers; a version for {} needs its own code",
                version.code,
                other.customer_class,
                version.customer_class.as_str()
            )));
        }
        let same_date = existing
            .into_iter()
            .find(|v| v.effective_from == version.effective_from);
        let mut row: tariff_version::ActiveModel = match same_date {
            Some(found) => found.into(),
            None => Default::default(),
        };
        row.code = Set(version.code.clone());
        row.customer_class = Set(version.customer_class.as_str().to_owned());
        row.effective_from = Set(version.effective_from);
        row.tiers = Set(encode_tiers(&version.tiers));
        row.sewage_price = Set(version.sewage_price.to_string());
        row.resource_price = Set(version.resource_price.to_string());
        row.base_household_size = Set(to_i32(version.base_household_size)?);
        row.extra_m3_per_person = Set(to_i64(version.extra_m3_per_person)?);
        row.price_change = Set(version.price_change.as_str().to_owned());
        row.save(&self.db).await?;
        Ok(version)
    }

    /// Every version, or the versions of one code, oldest first.
    pub async fn list_tariffs(&self, code: Option<&str>) -> AppResult<Vec<TariffVersion>> {
        let mut query = tariff_version::Entity::find()
            .order_by_asc(tariff_version::Column::Code)
            .order_by_asc(tariff_version::Column::EffectiveFrom);
        if let Some(code) = code {
            query = query.filter(tariff_version::Column::Code.eq(code));
        }
        let rows = query.all(&self.db).await?;
        Ok(rows
            .into_iter()
            .map(crate::db::queries::tariff_from_row)
            .collect::<crate::db::DbResult<_>>()?)
    }
}

pub(crate) fn to_i32(value: u32) -> AppResult<i32> {
    i32::try_from(value).map_err(|_| AppError::InvalidArgument(format!("{value} is too large")))
}

pub(crate) fn to_i64(value: u64) -> AppResult<i64> {
    i64::try_from(value).map_err(|_| AppError::InvalidArgument(format!("{value} is too large")))
}
