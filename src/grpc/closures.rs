//! `ClosureService`: closures such as an epidemic lockdown.

use tonic::{Request, Response, Status};

use super::convert;
use super::pb::{self, closure_service_server::ClosureService};
use crate::app::App;
use crate::app::closures::NewClosure;

pub struct Closures(pub App);

#[tonic::async_trait]
impl ClosureService for Closures {
    async fn schedule_closure(
        &self,
        request: Request<pb::ScheduleClosureRequest>,
    ) -> Result<Response<pb::Closure>, Status> {
        let pb::ScheduleClosureRequest {
            starts_on,
            ends_on,
            reason,
            waive_late_fees,
            close_counters,
        } = request.into_inner();
        let new = NewClosure {
            starts_on,
            ends_on,
            reason,
            waive_late_fees,
            close_counters: close_counters.unwrap_or(true),
        };
        let row = self.0.schedule_closure(new).await?;
        Ok(Response::new(convert::closure(row)))
    }

    async fn end_closure(
        &self,
        request: Request<pb::EndClosureRequest>,
    ) -> Result<Response<pb::Closure>, Status> {
        let pb::EndClosureRequest { id, ends_on } = request.into_inner();
        let row = self.0.end_closure(id, &ends_on).await?;
        Ok(Response::new(convert::closure(row)))
    }

    async fn list_closures(
        &self,
        _request: Request<pb::ListClosuresRequest>,
    ) -> Result<Response<pb::ListClosuresResponse>, Status> {
        let closures = self
            .0
            .list_closures()
            .await?
            .into_iter()
            .map(convert::closure)
            .collect();
        Ok(Response::new(pb::ListClosuresResponse { closures }))
    }
}
