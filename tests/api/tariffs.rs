//! TariffService: versions, validation.

use tonic::Code;
use water_billing::grpc::pb;

use crate::helpers::*;

#[tokio::test]
async fn a_tariff_version_round_trips_exactly() {
    let mut app = spawn_app().await;
    let saved = app.upsert_tariff(residential_tariff()).await;
    assert_eq!(saved, residential_tariff());
    let listed = app
        .tariffs
        .list_tariffs(pb::ListTariffsRequest { code: "RES".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.tariffs, vec![residential_tariff()]);
}

#[tokio::test]
async fn upserting_the_same_version_replaces_its_prices() {
    let mut app = spawn_app().await;
    app.upsert_tariff(non_residential_tariff()).await;
    let mut changed = non_residential_tariff();
    changed.tiers = vec![tier("", "3.45")];
    app.upsert_tariff(changed.clone()).await;
    let listed = app
        .tariffs
        .list_tariffs(pb::ListTariffsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.tariffs, vec![changed]);
}

#[tokio::test]
async fn malformed_tariffs_are_rejected_with_invalid_argument() {
    let mut app = spawn_app().await;
    type Mutation = Box<dyn Fn(&mut pb::Tariff)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "price with 5 decimals",
            Box::new(|t| t.sewage_price = "0.12345".into()),
        ),
        ("NaN price", Box::new(|t| t.resource_price = "NaN".into())),
        (
            "exponent price",
            Box::new(|t| t.tiers[0].water_price = "1e3".into()),
        ),
        (
            "negative price",
            Box::new(|t| t.tiers[0].water_price = "-2.40".into()),
        ),
        (
            "unbounded middle tier",
            Box::new(|t| t.tiers[1].up_to_m3 = String::new()),
        ),
        (
            "bounded last tier",
            Box::new(|t| t.tiers[2].up_to_m3 = "400".into()),
        ),
        (
            "decreasing thresholds",
            Box::new(|t| t.tiers[1].up_to_m3 = "100".into()),
        ),
        (
            "fractional threshold",
            Box::new(|t| t.tiers[0].up_to_m3 = "216.5".into()),
        ),
        ("unknown class", Box::new(|t| t.customer_class = 999)),
        (
            "bad date",
            Box::new(|t| t.effective_from = "2024-02-30".into()),
        ),
        ("unknown price change", Box::new(|t| t.price_change = 999)),
        ("no tiers", Box::new(|t| t.tiers.clear())),
        ("empty code", Box::new(|t| t.code = String::new())),
    ];
    for (name, mutate) in cases {
        let mut tariff = residential_tariff();
        mutate(&mut tariff);
        let result = app
            .tariffs
            .upsert_tariff(pb::UpsertTariffRequest {
                tariff: Some(tariff),
            })
            .await;
        let status = result.expect_err(name);
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
    }
    let listed = app
        .tariffs
        .list_tariffs(pb::ListTariffsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.tariffs.is_empty(),
        "nothing may be stored by a rejected request"
    );
}
