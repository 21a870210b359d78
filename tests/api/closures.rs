//! ClosureService: scheduling, ending early, validation.

use tonic::Code;
use water_billing::grpc::pb;

use crate::helpers::*;

fn lockdown(starts_on: &str, ends_on: &str) -> pb::ScheduleClosureRequest {
    pb::ScheduleClosureRequest {
        starts_on: starts_on.into(),
        ends_on: ends_on.into(),
        reason: "epidemic lockdown".into(),
        waive_late_fees: true,
        close_counters: None,
    }
}

#[tokio::test]
async fn a_closure_can_end_early_and_keeps_its_scheduled_end() {
    let mut app = spawn_app().await;
    let closure = app
        .closures
        .schedule_closure(lockdown("2022-05-01", "2022-06-30"))
        .await
        .unwrap()
        .into_inner();
    assert!(closure.close_counters, "counters close by default");
    let ended = app
        .closures
        .end_closure(pb::EndClosureRequest {
            id: closure.id,
            ends_on: "2022-05-20".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (ended.ends_on.as_str(), ended.scheduled_ends_on.as_str()),
        ("2022-05-20", "2022-06-30")
    );
    let listed = app
        .closures
        .list_closures(pb::ListClosuresRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.closures, vec![ended]);
}

#[tokio::test]
async fn bad_closures_get_clear_errors_and_change_nothing() {
    let mut app = spawn_app().await;
    assert_code(
        app.closures
            .schedule_closure(lockdown("2022-05-01", "2022-04-30"))
            .await,
        Code::InvalidArgument,
    );
    let mut no_reason = lockdown("2022-05-01", "2022-05-02");
    no_reason.reason = "  ".into();
    assert_code(
        app.closures.schedule_closure(no_reason).await,
        Code::InvalidArgument,
    );
    assert_code(
        app.closures
            .schedule_closure(lockdown("2022-5-1", "2022-05-02"))
            .await,
        Code::InvalidArgument,
    );
    assert_code(
        app.closures
            .end_closure(pb::EndClosureRequest {
                id: 99,
                ends_on: "2022-05-02".into(),
            })
            .await,
        Code::NotFound,
    );
    let closure = app
        .closures
        .schedule_closure(lockdown("2022-05-01", "2022-05-31"))
        .await
        .unwrap()
        .into_inner();
    let before_start = pb::EndClosureRequest {
        id: closure.id,
        ends_on: "2022-04-30".into(),
    };
    assert_code(
        app.closures.end_closure(before_start).await,
        Code::InvalidArgument,
    );
    let extension = pb::EndClosureRequest {
        id: closure.id,
        ends_on: "2022-06-30".into(),
    };
    assert_code(
        app.closures.end_closure(extension).await,
        Code::FailedPrecondition,
    );
    let listed = app
        .closures
        .list_closures(pb::ListClosuresRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.closures, vec![closure]);
}
