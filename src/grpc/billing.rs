//! `BillingService`: readings, bills and the billing cycle.

use std::pin::Pin;

use futures::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert;
use super::enums::{self, optional};
use super::pb::{self, billing_service_server::BillingService};
use crate::app::App;
use crate::app::readings::NewReading;

pub struct Billing(pub App);

type ProgressStream = Pin<Box<dyn Stream<Item = Result<pb::BillingCycleProgress, Status>> + Send>>;

#[tonic::async_trait]
impl BillingService for Billing {
    type RunBillingCycleStream = ProgressStream;

    async fn record_reading(
        &self,
        request: Request<pb::RecordReadingRequest>,
    ) -> Result<Response<pb::Reading>, Status> {
        let pb::RecordReadingRequest {
            meter_no,
            index,
            read_on,
            source,
            reading_ref,
        } = request.into_inner();
        // UNSPECIFIED is `None`: the use case's default source (ACTUAL).
        let source = optional("source", source, enums::reading_source_from_proto)?;
        let view = self
            .0
            .record_reading(NewReading {
                meter_no,
                index,
                read_on,
                source,
                reading_ref,
            })
            .await?;
        Ok(Response::new(convert::reading(view)?))
    }

    async fn issue_bill(
        &self,
        request: Request<pb::IssueBillRequest>,
    ) -> Result<Response<pb::Bill>, Status> {
        let pb::IssueBillRequest {
            account_no,
            period,
            issued_on,
        } = request.into_inner();
        let view = self.0.issue_bill(&account_no, &period, &issued_on).await?;
        Ok(Response::new(convert::bill(view)?))
    }

    async fn run_billing_cycle(
        &self,
        request: Request<pb::RunBillingCycleRequest>,
    ) -> Result<Response<Self::RunBillingCycleStream>, Status> {
        let pb::RunBillingCycleRequest { period, issued_on } = request.into_inner();
        let receiver = self.0.start_billing_cycle(&period, &issued_on)?;
        let stream = ReceiverStream::new(receiver)
            .map(|item| item.map(convert::progress).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_bill(
        &self,
        request: Request<pb::GetBillRequest>,
    ) -> Result<Response<pb::Bill>, Status> {
        let pb::GetBillRequest { bill_no } = request.into_inner();
        let view = self.0.get_bill(&bill_no).await?;
        Ok(Response::new(convert::bill(view)?))
    }

    async fn list_bills(
        &self,
        request: Request<pb::ListBillsRequest>,
    ) -> Result<Response<pb::ListBillsResponse>, Status> {
        let pb::ListBillsRequest {
            account_no,
            status,
            page_size,
            page_token,
        } = request.into_inner();
        // UNSPECIFIED is the empty text: no status filter.
        let status = optional("status", status, enums::bill_status_from_proto)?.unwrap_or_default();
        let (bills, next_page_token) = self
            .0
            .list_bills(&account_no, status, page_size, &page_token)
            .await?;
        let bills = bills
            .into_iter()
            .map(convert::bill)
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListBillsResponse {
            bills,
            next_page_token,
        }))
    }
}
