//! Proto enums of the closed sets: every enum-typed request field refuses `..._UNSPECIFIED`
//! (where it has no documented meaning) and an unknown number with INVALID_ARGUMENT naming the
//! field; where UNSPECIFIED means "no filter" or "the default", it keeps that meaning.

use std::future::Future;
use std::pin::Pin;

use tonic::Code;
use water_billing::grpc::pb;

use crate::helpers::*;

const UNKNOWN: i32 = UNKNOWN_ENUM_NUMBER;

type Call<'a> = Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + 'a>>;

/// One request field of an enum type, sent with the value `raw`.
fn call<'a>(app: &'a mut TestApp, field: &str, raw: i32) -> Call<'a> {
    let field = field.to_owned();
    Box::pin(async move {
        match field.as_str() {
            "CreateAccount.customer_class" => app
                .accounts
                .create_account(pb::CreateAccountRequest {
                    account_no: "A-1".into(),
                    holder_name: "张三".into(),
                    address: "1 Water St".into(),
                    customer_class: raw,
                    household_size: 4,
                    tariff_code: "RES".into(),
                })
                .await
                .map(drop),
            "UpsertTariff.customer_class" | "UpsertTariff.price_change" => {
                let mut tariff = residential_tariff();
                if field.ends_with("customer_class") {
                    tariff.customer_class = raw;
                } else {
                    tariff.price_change = raw;
                }
                app.tariffs
                    .upsert_tariff(pb::UpsertTariffRequest {
                        tariff: Some(tariff),
                    })
                    .await
                    .map(drop)
            }
            "RecordReading.source" => app
                .billing
                .record_reading(pb::RecordReadingRequest {
                    meter_no: "M-A-1".into(),
                    index: 10,
                    read_on: "2024-01-31".into(),
                    source: raw,
                    reading_ref: String::new(),
                })
                .await
                .map(drop),
            "ListBills.status" => app
                .billing
                .list_bills(pb::ListBillsRequest {
                    account_no: "A-1".into(),
                    status: raw,
                    page_size: 0,
                    page_token: String::new(),
                })
                .await
                .map(drop),
            "CreatePayment.channel" => app
                .payments
                .create_payment(pb::CreatePaymentRequest {
                    account_no: "A-1".into(),
                    channel: raw,
                    amount: "10.00".into(),
                    idempotency_key: "K-1".into(),
                })
                .await
                .map(drop),
            "ListPayments.channel" => app
                .payments
                .list_payments(pb::ListPaymentsRequest {
                    account_no: String::new(),
                    business_date: "2024-01-31".into(),
                    channel: raw,
                    page_size: 0,
                    page_token: String::new(),
                })
                .await
                .map(drop),
            "RunReconciliation.channel" => app
                .reconciliation
                .run_reconciliation(pb::RunReconciliationRequest {
                    channel: raw,
                    business_date: "2024-01-31".into(),
                    file: String::new(),
                })
                .await
                .map(drop),
            "ListDiscrepancies.class" | "ListDiscrepancies.state" => {
                let (class, state) = if field.ends_with("class") {
                    (raw, 0)
                } else {
                    (0, raw)
                };
                app.reconciliation
                    .list_discrepancies(pb::ListDiscrepanciesRequest {
                        run_id: 1,
                        class,
                        state,
                    })
                    .await
                    .map(drop)
            }
            "ResolveDiscrepancy.action" => app
                .reconciliation
                .resolve_discrepancy(pb::ResolveDiscrepancyRequest {
                    discrepancy_id: 1,
                    action: raw,
                    note: "checked".into(),
                    operator: "finance-1".into(),
                })
                .await
                .map(drop),
            other => panic!("no request builder for {other}"),
        }
    })
}

/// Every enum-typed request field, and whether UNSPECIFIED is refused (`true`) or has a
/// documented meaning (`false`).
const FIELDS: [(&str, bool); 11] = [
    ("CreateAccount.customer_class", true),
    ("UpsertTariff.customer_class", true),
    ("UpsertTariff.price_change", false),
    ("RecordReading.source", false),
    ("ListBills.status", false),
    ("CreatePayment.channel", true),
    ("ListPayments.channel", true),
    ("RunReconciliation.channel", true),
    ("ListDiscrepancies.class", false),
    ("ListDiscrepancies.state", false),
    ("ResolveDiscrepancy.action", true),
];

/// Every enum-typed field of every request message (and of the messages a request carries,
/// such as `UpsertTariffRequest.tariff`), named as in [`FIELDS`], from the served descriptors.
fn enum_request_fields() -> Vec<String> {
    use prost::Message;
    use prost_types::field_descriptor_proto::Type;
    let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
    let messages: Vec<_> = set
        .file
        .iter()
        .flat_map(|f| f.message_type.iter())
        .collect();
    let by_name = |type_name: &str| {
        let short = type_name.rsplit('.').next().unwrap();
        messages.iter().find(|m| m.name() == short).copied()
    };
    let mut found = Vec::new();
    for request in messages.iter().filter(|m| m.name().ends_with("Request")) {
        let rpc = request.name().trim_end_matches("Request");
        let mut pending = vec![*request];
        while let Some(message) = pending.pop() {
            for field in &message.field {
                match field.r#type() {
                    Type::Enum => found.push(format!("{rpc}.{}", field.name())),
                    Type::Message => pending.extend(by_name(field.type_name())),
                    _ => {}
                }
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_table_lists_every_enum_field_of_every_request() {
    let mut listed: Vec<String> = FIELDS.iter().map(|(f, _)| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(listed, enum_request_fields());
}

#[tokio::test]
async fn every_enum_request_field_refuses_unspecified_and_unknown_numbers_naming_the_field() {
    let mut app = spawn_app().await;
    for (field, unspecified_refused) in FIELDS {
        let name = field.split('.').nth(1).unwrap();
        let mut values = vec![UNKNOWN];
        if unspecified_refused {
            values.push(0);
        }
        for raw in values {
            let message = assert_code(call(&mut app, field, raw).await, Code::InvalidArgument);
            assert!(
                message.starts_with(&format!("{name}: ")),
                "{field} = {raw}: the message must name the field: {message}"
            );
        }
    }
}

#[tokio::test]
async fn unspecified_keeps_its_documented_meaning_where_it_has_one() {
    let mut app = spawn_app().await;
    let mut tariff = residential_tariff();
    tariff.price_change = pb::PriceChange::Unspecified.into();
    let saved = app.upsert_tariff(tariff).await;
    assert_eq!(saved.price_change(), pb::PriceChange::ReadingDate);
    assert_eq!(saved.customer_class(), pb::CustomerClass::Residential);
    app.residential_account("A-1", "RES", 4, 0, "2024-01-01")
        .await;

    let reading = app
        .billing
        .record_reading(pb::RecordReadingRequest {
            meter_no: "M-A-1".into(),
            index: 10,
            read_on: "2024-01-31".into(),
            source: pb::ReadingSource::Unspecified.into(),
            reading_ref: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reading.source(), pb::ReadingSource::Actual);

    let bill = app.issue("A-1", "2024-01", "2024-02-01").await.unwrap();
    assert_eq!(bill.status(), pb::BillStatus::Unpaid);
    let water = &bill.lines[0];
    assert_eq!((water.kind(), water.tier), (pb::BillLineKind::Water, 1));
    assert!(
        bill.lines
            .iter()
            .filter(|l| l.kind() != pb::BillLineKind::Water)
            .all(|l| l.tier == 0),
        "{bill:?}"
    );
    let every = |status: pb::BillStatus| pb::ListBillsRequest {
        account_no: "A-1".into(),
        status: status.into(),
        page_size: 0,
        page_token: String::new(),
    };
    let all = app
        .billing
        .list_bills(every(pb::BillStatus::Unspecified))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.bills.len(), 1, "UNSPECIFIED lists every status");
    let paid = app
        .billing
        .list_bills(every(pb::BillStatus::Paid))
        .await
        .unwrap()
        .into_inner();
    assert!(paid.bills.is_empty(), "{paid:?}");

    let account = app.account("A-1", "").await;
    assert_eq!(
        (account.customer_class(), account.status()),
        (pb::CustomerClass::Residential, pb::AccountStatus::Active)
    );
}

#[tokio::test]
async fn an_unknown_stored_value_is_an_internal_error_never_a_default() {
    let mut app = spawn_app().await;
    app.upsert_tariff(residential_tariff()).await;
    app.residential_account("A-1", "RES", 4, 0, "2024-01-01")
        .await;
    app.execute("UPDATE accounts SET customer_class = 'ALIEN'")
        .await;
    assert_code(
        app.accounts
            .get_account(pb::GetAccountRequest {
                account_no: "A-1".into(),
                as_of: String::new(),
            })
            .await,
        Code::Internal,
    );
}
