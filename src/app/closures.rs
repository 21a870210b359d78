//! Closures (e.g. an epidemic lockdown): date ranges, inclusive, during which counters are
//! closed and, when finance says so, late fees are waived. Closures are never deleted; ending
//! one early records a new end date beside the scheduled one.

use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, Set};

use super::validate;
use super::{App, AppError, AppResult};
use crate::db::entity::closure;

const REASON_LEN_MAX: usize = 500;

#[derive(Debug, Clone)]
pub struct NewClosure {
    pub starts_on: String,
    pub ends_on: String,
    pub reason: String,
    pub waive_late_fees: bool,
    pub close_counters: bool,
}

impl App {
    pub async fn schedule_closure(&self, new: NewClosure) -> AppResult<closure::Model> {
        let starts_on = validate::date("starts_on", &new.starts_on)?;
        let ends_on = validate::date("ends_on", &new.ends_on)?;
        if ends_on < starts_on {
            return Err(AppError::invalid(
                "ends_on",
                format!("{ends_on} is before starts_on {starts_on}"),
            ));
        }
        let reason = validate::text("reason", &new.reason, REASON_LEN_MAX)?;
        let row = closure::ActiveModel {
            starts_on: Set(starts_on),
            ends_on: Set(ends_on),
            scheduled_ends_on: Set(ends_on),
            reason: Set(reason),
            waive_late_fees: Set(new.waive_late_fees),
            close_counters: Set(new.close_counters),
            ..Default::default()
        };
        Ok(row.insert(&self.db).await?)
    }

    pub async fn end_closure(&self, id: u64, ends_on: &str) -> AppResult<closure::Model> {
        let ends_on = validate::date("ends_on", ends_on)?;
        let id = i64::try_from(id)
            .map_err(|_| AppError::NotFound(format!("closure {id} does not exist")))?;
        let found = closure::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("closure {id} does not exist")))?;
        if ends_on < found.starts_on {
            return Err(AppError::invalid(
                "ends_on",
                format!(
                    "{ends_on} is before the closure's start {}",
                    found.starts_on
                ),
            ));
        }
        if ends_on > found.ends_on {
            return Err(AppError::FailedPrecondition(format!(
                "closure {id} already ends on {}; EndClosure only ends a closure early, schedule a new one to extend it",
                found.ends_on
            )));
        }
        let mut row: closure::ActiveModel = found.into();
        row.ends_on = Set(ends_on);
        Ok(row.update(&self.db).await?)
    }

    pub async fn list_closures(&self) -> AppResult<Vec<closure::Model>> {
        Ok(closure::Entity::find()
            .order_by_asc(closure::Column::StartsOn)
            .all(&self.db)
            .await?)
    }
}
