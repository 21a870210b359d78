//! RecordReading: rollover, plausibility, idempotency, bad input.

use tonic::Code;
use water_billing::grpc::pb;

use crate::helpers::*;

async fn app_with_meter(digits: u32, initial: u64) -> TestApp {
    let mut app = spawn_app().await;
    app.upsert_tariff(flat_tariff()).await;
    app.create_account("A-1", "FLAT", "RESIDENTIAL", 4).await;
    app.install_meter("A-1", "M1", digits, initial, "2024-01-01")
        .await;
    app
}

#[tokio::test]
async fn example_7_9_a_five_digit_register_rolls_over_by_its_modulus() {
    let mut app = app_with_meter(5, 99_900).await;
    app.read("M1", 99_962, "2024-01-15").await.unwrap();
    let rolled = app.read("M1", 17, "2024-01-31").await.unwrap();
    assert_eq!(rolled.volume_m3, 55);
}

#[tokio::test]
async fn example_7_9_a_four_digit_register_rolls_over_by_its_modulus() {
    let mut app = app_with_meter(4, 9_987).await;
    let rolled = app.read("M1", 12, "2024-01-31").await.unwrap();
    assert_eq!(rolled.volume_m3, 25);
}

#[tokio::test]
async fn example_7_9_an_implausible_rollover_is_rejected_and_never_billed() {
    let mut app = app_with_meter(5, 0).await;
    app.read("M1", 500, "2024-01-15").await.unwrap();
    let message = assert_code(
        app.read("M1", 400, "2024-01-31").await,
        Code::InvalidArgument,
    );
    assert!(message.contains("kept for review"), "{message}");
    let bill = app.issue("A-1", "2024-01", "2024-02-01").await.unwrap();
    assert_eq!(bill.volume_m3, 500, "the rejected reading is not billed");
}

#[tokio::test]
async fn a_reading_ref_makes_recording_idempotent() {
    let mut app = app_with_meter(5, 0).await;
    let request = pb::RecordReadingRequest {
        meter_no: "M1".into(),
        index: 42,
        read_on: "2024-01-31".into(),
        source: pb::ReadingSource::SmartMeter.into(),
        reading_ref: "smart-1".into(),
    };
    let first = app
        .billing
        .record_reading(request.clone())
        .await
        .unwrap()
        .into_inner();
    let again = app
        .billing
        .record_reading(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    let mut different = request;
    different.index = 43;
    let message = assert_code(
        app.billing.record_reading(different).await,
        Code::AlreadyExists,
    );
    assert!(message.contains("smart-1"), "{message}");
}

/// A replayed `reading_ref` reads the stored row back: a source or status none of ours is a
/// corrupt row (INTERNAL), never "a different reading" nor, for the status, "accepted".
#[tokio::test]
async fn a_replayed_reading_with_a_corrupt_stored_source_or_status_is_an_internal_error() {
    let mut app = app_with_meter(5, 0).await;
    let request = pb::RecordReadingRequest {
        meter_no: "M1".into(),
        index: 42,
        read_on: "2024-01-31".into(),
        source: pb::ReadingSource::SmartMeter.into(),
        reading_ref: "smart-1".into(),
    };
    app.billing.record_reading(request.clone()).await.unwrap();
    app.execute("UPDATE readings SET source = 'MANUAL' WHERE reading_ref = 'smart-1'")
        .await;
    assert_code(
        app.billing.record_reading(request.clone()).await,
        Code::Internal,
    );
    app.execute(
        "UPDATE readings SET source = 'SMART_METER', status = 'PENDING' \
         WHERE reading_ref = 'smart-1'",
    )
    .await;
    assert_code(app.billing.record_reading(request).await, Code::Internal);
}

#[tokio::test]
async fn bad_readings_get_clear_errors() {
    let mut app = app_with_meter(5, 100).await;
    assert_code(
        app.read("M1", 100_000, "2024-01-31").await,
        Code::InvalidArgument,
    );
    assert_code(app.read("NOPE", 1, "2024-01-31").await, Code::NotFound);
    assert_code(
        app.read("M1", 150, "2024-02-30").await,
        Code::InvalidArgument,
    );
    assert_code(
        app.read("M1", 150, "2999-01-01").await,
        Code::InvalidArgument,
    );
    assert_code(
        app.read("M1", 150, "2023-12-31").await,
        Code::FailedPrecondition,
    );
    let mut bad_source = pb::RecordReadingRequest {
        meter_no: "M1".into(),
        index: 150,
        read_on: "2024-01-31".into(),
        ..Default::default()
    };
    bad_source.source = 999;
    assert_code(
        app.billing.record_reading(bad_source).await,
        Code::InvalidArgument,
    );
    app.read("M1", 150, "2024-01-31").await.unwrap();
    assert_code(
        app.read("M1", 160, "2024-01-30").await,
        Code::FailedPrecondition,
    );
}
