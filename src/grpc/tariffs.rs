//! `TariffService`: published tariff versions.

use tonic::{Request, Response, Status};

use super::convert;
use super::pb::{self, tariff_service_server::TariffService};
use crate::app::App;

pub struct Tariffs(pub App);

#[tonic::async_trait]
impl TariffService for Tariffs {
    async fn upsert_tariff(
        &self,
        request: Request<pb::UpsertTariffRequest>,
    ) -> Result<Response<pb::Tariff>, Status> {
        let pb::UpsertTariffRequest { tariff } = request.into_inner();
        let version = convert::tariff_from_proto(tariff)?;
        let saved = self.0.upsert_tariff(version).await?;
        Ok(Response::new(convert::tariff(saved)))
    }

    async fn list_tariffs(
        &self,
        request: Request<pb::ListTariffsRequest>,
    ) -> Result<Response<pb::ListTariffsResponse>, Status> {
        let pb::ListTariffsRequest { code } = request.into_inner();
        let filter = if code.is_empty() {
            None
        } else {
            Some(code.as_str())
        };
        let tariffs = self
            .0
            .list_tariffs(filter)
            .await?
            .into_iter()
            .map(convert::tariff)
            .collect();
        Ok(Response::new(pb::ListTariffsResponse { tariffs }))
    }
}
