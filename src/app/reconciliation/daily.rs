//! What the daily scheduler (`crate::scheduler`) asks about a channel's day before running it:
//! whether any run of that day is recorded already, by this replica or another, so a day is
//! reconciled once however many replicas schedule it.

use chrono::NaiveDate;

use crate::app::settlement::PaymentChannel;
use crate::app::{App, AppResult};
use crate::db::entity::reconciliation_run;

impl App {
    /// The newest recorded run of `channel` on `date` (any version), if there is one.
    pub async fn latest_reconciliation_run(
        &self,
        channel: PaymentChannel,
        date: NaiveDate,
    ) -> AppResult<Option<reconciliation_run::Model>> {
        super::persist::latest_run(&self.db, channel, date).await
    }
}
