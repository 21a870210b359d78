//! AccountService: accounts, meters, standing.

use tonic::Code;
use water_billing::grpc::pb;

use crate::helpers::*;

fn new_account(account_no: &str) -> pb::CreateAccountRequest {
    pb::CreateAccountRequest {
        account_no: account_no.into(),
        holder_name: "李四".into(),
        address: "2 River Rd".into(),
        customer_class: pb::CustomerClass::Residential.into(),
        household_size: 4,
        tariff_code: "RES".into(),
    }
}

#[tokio::test]
async fn a_new_account_owes_nothing() {
    let mut app = spawn_app().await;
    app.upsert_tariff(residential_tariff()).await;
    let account = app
        .accounts
        .create_account(new_account("A-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(account.account_no, "A-1");
    assert_eq!(account.status().short(), "ACTIVE");
    assert_eq!(
        (
            account.prepayment_balance.as_str(),
            account.arrears_principal.as_str()
        ),
        ("0.00", "0.00")
    );
    assert_eq!(
        (account.late_fee.as_str(), account.amount_due.as_str()),
        ("0.00", "0.00")
    );
}

#[tokio::test]
async fn bad_account_requests_get_clear_errors_and_change_nothing() {
    let mut app = spawn_app().await;
    app.upsert_tariff(residential_tariff()).await;
    app.accounts
        .create_account(new_account("A-1"))
        .await
        .unwrap();
    assert_code(
        app.accounts.create_account(new_account("A-1")).await,
        Code::AlreadyExists,
    );
    let mut unknown_tariff = new_account("A-2");
    unknown_tariff.tariff_code = "NOPE".into();
    assert_code(
        app.accounts.create_account(unknown_tariff).await,
        Code::NotFound,
    );
    let mut bad_no = new_account("A 3!");
    bad_no.account_no = "A 3!".into();
    assert_code(
        app.accounts.create_account(bad_no).await,
        Code::InvalidArgument,
    );
    let mut zero_household = new_account("A-4");
    zero_household.household_size = 0;
    assert_code(
        app.accounts.create_account(zero_household).await,
        Code::InvalidArgument,
    );
    let mut wrong_class = new_account("A-5");
    wrong_class.customer_class = pb::CustomerClass::NonResidential.into();
    assert_code(
        app.accounts.create_account(wrong_class).await,
        Code::InvalidArgument,
    );
    let missing = app
        .accounts
        .get_account(pb::GetAccountRequest {
            account_no: "A-2".into(),
            as_of: String::new(),
        })
        .await;
    assert_code(missing, Code::NotFound);
    let bad_date = app
        .accounts
        .get_account(pb::GetAccountRequest {
            account_no: "A-1".into(),
            as_of: "2024-13-01".into(),
        })
        .await;
    assert_code(bad_date, Code::InvalidArgument);
}

#[tokio::test]
async fn meters_are_validated_against_their_register() {
    let mut app = spawn_app().await;
    app.upsert_tariff(residential_tariff()).await;
    app.accounts
        .create_account(new_account("A-1"))
        .await
        .unwrap();
    let install = |meter_no: &str, digits: u32, initial: u64, on: &str| pb::InstallMeterRequest {
        account_no: "A-1".into(),
        meter_no: meter_no.into(),
        register_digits: digits,
        initial_index: initial,
        installed_on: on.into(),
    };
    assert_code(
        app.accounts
            .install_meter(install("M1", 4, 10_000, "2024-01-01"))
            .await,
        Code::InvalidArgument,
    );
    assert_code(
        app.accounts
            .install_meter(install("M1", 0, 0, "2024-01-01"))
            .await,
        Code::InvalidArgument,
    );
    assert_code(
        app.accounts
            .install_meter(install("M1", 5, 0, "2999-01-01"))
            .await,
        Code::InvalidArgument,
    );
    let mut no_account = install("M1", 5, 0, "2024-01-01");
    no_account.account_no = "NOPE".into();
    assert_code(app.accounts.install_meter(no_account).await, Code::NotFound);
    let meter = app
        .accounts
        .install_meter(install("M1", 5, 1234, "2024-01-01"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((meter.system_index, meter.register_digits), (1234, 5));
    assert_code(
        app.accounts
            .install_meter(install("M2", 5, 0, "2024-01-01"))
            .await,
        Code::FailedPrecondition,
    );
}

#[tokio::test]
async fn a_replaced_meter_and_its_successor_bill_as_one_account() {
    let mut app = spawn_app().await;
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 100, "2024-01-01")
        .await;
    app.read("M-A-1", 130, "2024-01-31").await.unwrap();
    app.issue("A-1", "2024-01", "2024-02-01").await.unwrap();
    let replace = pb::ReplaceMeterRequest {
        account_no: "A-1".into(),
        old_meter_no: "M-A-1".into(),
        old_final_index: 150,
        new_meter_no: "M-NEW".into(),
        new_register_digits: 4,
        new_initial_index: 0,
        replaced_on: "2024-02-10".into(),
    };
    app.accounts.replace_meter(replace.clone()).await.unwrap();
    assert_code(
        app.accounts.replace_meter(replace).await,
        Code::FailedPrecondition,
    );
    app.read("M-NEW", 12, "2024-02-28").await.unwrap();
    assert_code(
        app.read("M-A-1", 160, "2024-02-28").await,
        Code::FailedPrecondition,
    );
    let bill = app.issue("A-1", "2024-02", "2024-03-01").await.unwrap();
    let mut segments: Vec<(String, u64, u64, u64)> = bill
        .segments
        .iter()
        .map(|s| {
            (
                s.meter_no.clone(),
                s.previous_index,
                s.current_index,
                s.volume_m3,
            )
        })
        .collect();
    segments.sort();
    assert_eq!(
        segments,
        vec![("M-A-1".into(), 130, 150, 20), ("M-NEW".into(), 0, 12, 12)]
    );
    assert_eq!(bill.volume_m3, 32);
    assert_eq!(bill.total_amount, "113.60"); // 32 × 3.55
    let account = app.account("A-1", "2024-03-01").await;
    assert_eq!(account.meters.len(), 2);
}
