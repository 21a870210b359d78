//! What the daily scheduler (`crate::scheduler`) asks about a channel's day before running it:
//! whether any run of that day is recorded already, by this replica or another, so a day is
//! reconciled once however many replicas schedule it.

use chrono::NaiveDate;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::RunView;
use crate::app::settlement::PaymentChannel;
use crate::app::{App, AppResult};
use crate::db::entity::reconciliation_run;

impl App {
    /// The newest recorded run of `channel` on `date` (any version), if there is one.
    pub async fn latest_reconciliation_run(
        &self,
        channel: PaymentChannel,
        date: NaiveDate,
    ) -> AppResult<Option<RunView>> {
        let newest = reconciliation_run::Entity::find()
            .filter(reconciliation_run::Column::Channel.eq(channel.as_str()))
            .filter(reconciliation_run::Column::BusinessDate.eq(date))
            .order_by_desc(reconciliation_run::Column::Version)
            .one(&self.db)
            .await?;
        match newest {
            Some(run) => Ok(Some(self.run_view(run).await?)),
            None => Ok(None),
        }
    }
}
