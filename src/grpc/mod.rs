//! The gRPC adapter: tonic services that turn proto messages into use-case calls and results
//! back into proto messages. No business rule lives here; errors map to status codes once, in
//! `status.rs`, and each proto enum of a closed set maps once, in `enums.rs`.

mod accounts;
mod billing;
mod closures;
mod convert;
mod enums;
mod payments;
mod reconciliation;
mod status;
mod tariffs;

pub mod pb {
    //! Code generated from `proto/waterbilling/v1/billing.proto`.
    #![allow(clippy::all, clippy::unwrap_used, clippy::expect_used)]
    tonic::include_proto!("waterbilling.v1");

    /// The encoded descriptors served by the reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("waterbilling_descriptor");
}

use tonic::service::Routes;

use crate::app::App;
use pb::account_service_server::AccountServiceServer;
use pb::billing_service_server::BillingServiceServer;
use pb::closure_service_server::ClosureServiceServer;
use pb::payment_service_server::PaymentServiceServer;
use pb::reconciliation_service_server::ReconciliationServiceServer;
use pb::tariff_service_server::TariffServiceServer;

/// Largest gRPC request the service decodes.
const REQUEST_BYTES_MAX: usize = 1024 * 1024;

/// Every API service, plus health and reflection, ready to serve.
pub async fn routes(app: App) -> Result<Routes, tonic_reflection::server::Error> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AccountServiceServer<accounts::Accounts>>()
        .await;
    health_reporter
        .set_serving::<TariffServiceServer<tariffs::Tariffs>>()
        .await;
    health_reporter
        .set_serving::<BillingServiceServer<billing::Billing>>()
        .await;
    health_reporter
        .set_serving::<ClosureServiceServer<closures::Closures>>()
        .await;
    health_reporter
        .set_serving::<PaymentServiceServer<payments::Payments>>()
        .await;
    health_reporter
        .set_serving::<ReconciliationServiceServer<reconciliation::Reconciliation>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let routes = Routes::new(health)
        .add_service(reflection)
        .add_service(
            AccountServiceServer::new(accounts::Accounts(app.clone()))
                .max_decoding_message_size(REQUEST_BYTES_MAX),
        )
        .add_service(
            TariffServiceServer::new(tariffs::Tariffs(app.clone()))
                .max_decoding_message_size(REQUEST_BYTES_MAX),
        )
        .add_service(
            BillingServiceServer::new(billing::Billing(app.clone()))
                .max_decoding_message_size(REQUEST_BYTES_MAX),
        )
        .add_service(
            ClosureServiceServer::new(closures::Closures(app.clone()))
                .max_decoding_message_size(REQUEST_BYTES_MAX),
        )
        .add_service(
            PaymentServiceServer::new(payments::Payments(app.clone()))
                .max_decoding_message_size(REQUEST_BYTES_MAX),
        )
        .add_service(
            ReconciliationServiceServer::new(reconciliation::Reconciliation(app))
                .max_decoding_message_size(REQUEST_BYTES_MAX),
        );
    Ok(routes)
}
