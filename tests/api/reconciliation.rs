//! ReconciliationService through the loopback gateways: trades land on yesterday (the
//! simulators' clock is moved back a day while customers pay), so yesterday's statement is
//! ready to download, and our payments carry yesterday's business date.

use std::time::Duration;

use tonic::Code;
use water_billing::config::PaymentsConfig;
use water_billing::grpc::pb;
use water_billing::sandbox::faults::Faults;

use crate::helpers::*;

pub(crate) fn today() -> chrono::NaiveDate {
    water_billing::gateway::beijing::beijing_date(chrono::Utc::now())
}

pub(crate) fn yesterday() -> String {
    (today() - chrono::Days::new(1)).to_string()
}

/// An account owing one bill, with both simulators' clocks a day behind, and the directory
/// the API may import statement files from.
pub(crate) async fn app_paying_yesterday() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_sandbox_app(PaymentsConfig {
        statement_dir: Some(dir.path().to_owned()),
        ..Default::default()
    })
    .await;
    owing_one_bill(&mut app).await;
    set_clocks(&app, chrono::Duration::days(-1));
    (app, dir)
}

/// Account A-1 with one bill of this month, open.
async fn owing_one_bill(app: &mut TestApp) {
    let installed = today() - chrono::Days::new(40);
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, &installed.to_string())
        .await;
    app.read("M-A-1", 10, &today().to_string()).await.unwrap();
    let period = today().format("%Y-%m").to_string();
    app.issue("A-1", &period, &today().to_string())
        .await
        .unwrap();
}

pub(crate) fn set_clocks(app: &TestApp, offset: chrono::Duration) {
    let sandbox = app.sandbox.as_ref().unwrap();
    sandbox.alipay.set_clock_offset(offset);
    sandbox.wechat.set_clock_offset(offset);
}

pub(crate) async fn get(app: &mut TestApp, out_trade_no: &str) -> pb::Payment {
    app.payments
        .get_payment(pb::GetPaymentRequest {
            out_trade_no: out_trade_no.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Creates an order and pays it at the simulator; waits for the notification unless the
/// channel is set to drop it.
pub(crate) async fn pay(
    app: &mut TestApp,
    channel: &str,
    amount: &str,
    key: &str,
    lost: bool,
) -> String {
    let order = app
        .payments
        .create_payment(pb::CreatePaymentRequest {
            account_no: "A-1".into(),
            channel: wire::<pb::Channel>(channel),
            amount: amount.into(),
            idempotency_key: key.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let sandbox = app.sandbox.as_ref().unwrap();
    let faults = Faults {
        drop_next_notifications: u32::from(lost),
        ..Faults::default()
    };
    match channel {
        "ALIPAY" => {
            sandbox.alipay.set_faults(faults);
            sandbox.alipay.pay(&order.out_trade_no).unwrap();
        }
        _ => {
            sandbox.wechat.set_faults(faults);
            sandbox.wechat.pay(&order.out_trade_no).unwrap();
        }
    }
    if !lost {
        for _ in 0..100 {
            if get(app, &order.out_trade_no).await.status().short() != "PENDING" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let paid = get(app, &order.out_trade_no).await;
        assert_eq!(paid.status().short(), "SUCCEEDED");
        assert_eq!(paid.business_date, yesterday());
    }
    order.out_trade_no
}

pub(crate) async fn run(
    app: &mut TestApp,
    channel: &str,
    date: &str,
    file: &str,
) -> Result<pb::ReconciliationRun, tonic::Status> {
    app.reconciliation
        .run_reconciliation(pb::RunReconciliationRequest {
            channel: wire::<pb::Channel>(channel),
            business_date: date.into(),
            file: file.into(),
        })
        .await
        .map(|r| r.into_inner())
}

pub(crate) async fn discrepancies(app: &mut TestApp, run_id: i64) -> Vec<pb::Discrepancy> {
    app.reconciliation
        .list_discrepancies(pb::ListDiscrepanciesRequest {
            run_id,
            class: pb::DiscrepancyClass::Unspecified.into(),
            state: pb::DiscrepancyState::Unspecified.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .discrepancies
}

#[tokio::test]
async fn a_lost_notification_is_posted_once_by_reconciliation() {
    let (mut app, _statements) = app_paying_yesterday().await;
    pay(&mut app, "ALIPAY", "10.00", "k-1", false).await;
    let lost = pay(&mut app, "ALIPAY", "12.00", "k-2", true).await;
    assert_eq!(get(&mut app, &lost).await.status().short(), "PENDING");
    set_clocks(&app, chrono::Duration::zero());

    let first = run(&mut app, "ALIPAY", &yesterday(), "").await.unwrap();
    assert_eq!(
        (first.matched_count, first.matched_amount.as_str()),
        (1, "10.00")
    );
    assert_eq!(
        (first.gateway_only_count, first.gateway_only_amount.as_str()),
        (1, "12.00")
    );
    assert_eq!(first.gateway_total, "22.00");
    assert_eq!((first.open_count, first.status().short()), (0, "BALANCED"));
    let items = discrepancies(&mut app, first.run_id).await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        (
            items[0].class().short(),
            items[0].state().short(),
            items[0].out_trade_no.as_str()
        ),
        ("GATEWAY_ONLY", "AUTO_RESOLVED", lost.as_str())
    );
    let posted = get(&mut app, &lost).await;
    assert_eq!(
        (posted.status().short(), posted.business_date.clone()),
        ("SUCCEEDED", yesterday())
    );

    // Running the day again posts nothing more: the order is now matched.
    let again = run(&mut app, "ALIPAY", &yesterday(), "").await.unwrap();
    assert_eq!(again.matched_count + again.gateway_only_count, 2);
    assert_eq!(
        app.count_settled_by(EvidenceSource::Reconciliation).await,
        1
    );
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}

#[tokio::test]
async fn an_unknown_order_goes_to_suspense_and_finance_resolves_it_with_an_audit_row() {
    let (mut app, _statements) = app_paying_yesterday().await;
    let stray = pay(&mut app, "WECHAT", "8.00", "k-1", true).await;
    app.execute(&format!(
        "DELETE FROM payments WHERE out_trade_no = '{stray}'"
    ))
    .await;
    set_clocks(&app, chrono::Duration::zero());

    let done = run(&mut app, "WECHAT", &yesterday(), "").await.unwrap();
    assert_eq!((done.gateway_only_count, done.open_count), (1, 1));
    assert_eq!(done.status().short(), "OPEN_EXCEPTIONS");
    assert_eq!(
        app.count_suspense(SuspenseReason::UnknownOrder, "").await,
        1
    );
    let item = discrepancies(&mut app, done.run_id).await.remove(0);
    assert_eq!(
        (item.class().short(), item.state().short()),
        ("GATEWAY_ONLY", "OPEN")
    );

    let resolve = |action: &str| pb::ResolveDiscrepancyRequest {
        discrepancy_id: item.discrepancy_id,
        action: wire::<pb::DiscrepancyAction>(action),
        note: "customer paid a cancelled order; refund requested".into(),
        operator: "finance-1".into(),
    };
    assert_code(
        app.reconciliation
            .resolve_discrepancy(resolve("IGNORE"))
            .await,
        Code::InvalidArgument,
    );
    assert_code(
        app.reconciliation
            .resolve_discrepancy(resolve("POST"))
            .await,
        Code::FailedPrecondition,
    );
    let resolved = app
        .reconciliation
        .resolve_discrepancy(resolve("REFUND"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            resolved.state().short(),
            resolved.action().short(),
            resolved.operator.as_str()
        ),
        ("RESOLVED", "REFUND", "finance-1")
    );
    assert_code(
        app.reconciliation
            .resolve_discrepancy(resolve("EXPLAIN"))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(
        app.count("discrepancy_actions", "action = 'REFUND'").await,
        1
    );
    let after = app
        .reconciliation
        .get_reconciliation_run(pb::GetReconciliationRunRequest {
            run_id: done.run_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((after.open_count, after.status().short()), (0, "BALANCED"));
}

#[tokio::test]
async fn rerunning_the_same_statement_returns_the_same_run() {
    let (mut app, _statements) = app_paying_yesterday().await;
    pay(&mut app, "WECHAT", "10.00", "k-1", false).await;
    set_clocks(&app, chrono::Duration::zero());
    let first = run(&mut app, "WECHAT", &yesterday(), "").await.unwrap();
    let second = run(&mut app, "WECHAT", &yesterday(), "").await.unwrap();
    assert_eq!(first.run_id, second.run_id);
    assert_eq!(first.statement_sha256, second.statement_sha256);
    assert_eq!((first.matched_count, first.version), (1, 1));
    assert_eq!(app.count("reconciliation_runs", "1 = 1").await, 1);
}

#[tokio::test]
async fn a_statement_not_ready_yet_is_a_failed_precondition() {
    let (mut app, _statements) = app_paying_yesterday().await;
    set_clocks(&app, chrono::Duration::zero());
    let message = assert_code(
        run(&mut app, "ALIPAY", &today().to_string(), "").await,
        Code::FailedPrecondition,
    );
    assert!(message.contains("not ready"), "{message}");
}

#[tokio::test]
async fn a_corrupted_statement_file_is_rejected_and_nothing_is_recorded() {
    let (mut app, dir) = app_paying_yesterday().await;
    let path = dir.path().join("bill.csv");
    std::fs::write(&path, "交易时间,公众账号ID\n`2026-01-01,`wx\n").unwrap();
    let message = assert_code(
        run(&mut app, "WECHAT", &yesterday(), path.to_str().unwrap()).await,
        Code::InvalidArgument,
    );
    assert!(message.contains("line"), "{message}");
    assert_eq!(app.count("reconciliation_runs", "1 = 1").await, 0);
    assert_eq!(app.count("discrepancies", "1 = 1").await, 0);
}

#[tokio::test]
async fn the_api_reads_statement_files_only_inside_the_statement_directory() {
    let (mut app, dir) = app_paying_yesterday().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("bill.csv");
    std::fs::write(&outside, "secret\n").unwrap();
    std::fs::write(dir.path().join("bill.csv"), "secret\n").unwrap();
    for name in [
        outside.to_str().unwrap(),
        "../bill.csv",
        "missing.csv",
        "/etc/passwd",
    ] {
        let message = assert_code(
            run(&mut app, "WECHAT", &yesterday(), name).await,
            Code::InvalidArgument,
        );
        assert!(message.contains("statement directory"), "{name}: {message}");
    }
    // Inside the directory the file is read (and rejected here as not a bill).
    assert_code(
        run(&mut app, "WECHAT", &yesterday(), "bill.csv").await,
        Code::InvalidArgument,
    );
    assert_eq!(app.count("reconciliation_runs", "1 = 1").await, 0);
}

#[tokio::test]
async fn a_cashier_close_records_over_and_short_without_touching_accounts() {
    let (mut app, _statements) = app_paying_yesterday().await;
    let counter = |receipt: &str, amount: &str, cashier: &str| pb::RecordCounterPaymentRequest {
        account_no: "A-1".into(),
        amount: amount.into(),
        cashier_id: cashier.into(),
        receipt_no: receipt.into(),
    };
    for (receipt, amount, cashier) in [
        ("R-1", "10.00", "C-1"),
        ("R-2", "5.00", "C-1"),
        ("R-3", "5.00", "C-2"),
    ] {
        app.payments
            .record_counter_payment(counter(receipt, amount, cashier))
            .await
            .unwrap();
    }
    let journal = app.journal_totals().await;
    let close = |cashier: &str, counted: &str| pb::CloseCashierDayRequest {
        cashier_id: cashier.into(),
        business_date: today().to_string(),
        counted_cash: counted.into(),
    };
    let over = app
        .reconciliation
        .close_cashier_day(close("C-1", "16.00"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            over.expected.as_str(),
            over.counted.as_str(),
            over.difference.as_str(),
            over.outcome().short()
        ),
        ("15.00", "16.00", "1.00", "OVER")
    );
    let short = app
        .reconciliation
        .close_cashier_day(close("C-2", "4.50"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (short.difference.as_str(), short.outcome().short()),
        ("-0.50", "SHORT")
    );
    assert_code(
        app.reconciliation
            .close_cashier_day(close("C-1", "15.00"))
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(app.journal_totals().await, journal);
}

/// Yesterday's WeChat bill as the simulator would serve it, built from its trades.
fn wechat_bill_text(app: &TestApp) -> String {
    use water_billing::startup::gateways::{SANDBOX_WECHAT_APP_ID, SANDBOX_WECHAT_MCH_ID};
    let day = today() - chrono::Days::new(1);
    let trades = app.sandbox.as_ref().unwrap().wechat.trades();
    let payments: Vec<_> = trades
        .iter()
        .filter(|t| t.business_date == Some(day))
        .collect();
    water_billing::sandbox::wechat::bill::BillDay {
        app_id: SANDBOX_WECHAT_APP_ID,
        mch_id: SANDBOX_WECHAT_MCH_ID,
        payments: &payments,
        refunds: &[],
    }
    .text()
}

fn reconcile_args(
    app: &TestApp,
    file: &std::path::Path,
    report_dir: &std::path::Path,
) -> water_billing::config::ReconcileArgs {
    water_billing::config::ReconcileArgs {
        channel: "wechat".into(),
        date: yesterday(),
        file: Some(file.to_owned()),
        report_dir: report_dir.to_owned(),
        database: water_billing::config::DatabaseConfig::new(app.database_url.clone()),
        billing: Default::default(),
        alipay: Default::default(),
        wechat: Default::default(),
        payments: PaymentsConfig::default(),
    }
}

/// The XML parts of a written workbook, by name.
fn xlsx_parts(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut parts = std::collections::HashMap::new();
    for index in 0..archive.len() {
        let mut part = archive.by_index(index).unwrap();
        let mut text = String::new();
        part.read_to_string(&mut text).unwrap();
        parts.insert(part.name().unwrap().into_owned(), text);
    }
    parts
}

#[tokio::test]
async fn a_new_statement_file_is_a_new_version_that_keeps_finance_resolutions() {
    let (mut app, dir) = app_paying_yesterday().await;
    pay(&mut app, "WECHAT", "10.00", "k-1", false).await;
    let stray = pay(&mut app, "WECHAT", "8.00", "k-2", true).await;
    app.execute(&format!(
        "DELETE FROM payments WHERE out_trade_no = '{stray}'"
    ))
    .await;
    set_clocks(&app, chrono::Duration::zero());
    let plain = dir.path().join("bill.csv");
    let text = wechat_bill_text(&app);
    std::fs::write(&plain, &text).unwrap();
    let gz = dir.path().join("bill.csv.gz");
    std::fs::write(
        &gz,
        water_billing::sandbox::wechat::bill::gzip(text.as_bytes()).unwrap(),
    )
    .unwrap();

    // The command: one exception open, so it reports failure and writes the report.
    let reports = dir.path().join("reports");
    let balanced = water_billing::cli::reconcile(&reconcile_args(&app, &plain, &reports))
        .await
        .unwrap();
    assert!(!balanced);
    let report_path = reports.join(format!("reconciliation-wechat-{}-v1.csv", yesterday()));
    let report = std::fs::read_to_string(&report_path).unwrap();
    assert!(report.contains("matched count,1"), "{report}");
    assert!(
        report.contains(&format!("GATEWAY_ONLY,OPEN,PAYMENT,{stray}")),
        "{report}"
    );
    let workbook = xlsx_parts(&report_path.with_extension("xlsx"));
    let exceptions = &workbook["xl/worksheets/sheet2.xml"];
    assert!(
        exceptions.contains("<v>8</v>"),
        "8.00 as a number: {exceptions}"
    );
    assert!(workbook["xl/sharedStrings.xml"].contains(&stray));
    assert!(workbook["xl/workbook.xml"].contains(r#"name="Exceptions""#));

    let first = run(&mut app, "WECHAT", &yesterday(), plain.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!((first.version, first.open_count), (1, 1));
    let item = discrepancies(&mut app, first.run_id).await.remove(0);
    app.reconciliation
        .resolve_discrepancy(pb::ResolveDiscrepancyRequest {
            discrepancy_id: item.discrepancy_id,
            action: pb::DiscrepancyAction::Explain.into(),
            note: "test payment by the gateway's support".into(),
            operator: "finance-1".into(),
        })
        .await
        .unwrap();

    let second = run(&mut app, "WECHAT", &yesterday(), gz.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    assert_ne!(second.run_id, first.run_id);
    assert_eq!((second.gateway_only_count, second.open_count), (1, 0));
    let kept = discrepancies(&mut app, second.run_id).await.remove(0);
    assert_eq!(
        (
            kept.state().short(),
            kept.action().short(),
            kept.operator.as_str()
        ),
        ("RESOLVED", "EXPLAIN", "finance-1")
    );
    let trail = format!(
        "action = 'EXPLAIN' AND discrepancy_id = {}",
        kept.discrepancy_id
    );
    assert_eq!(app.count("discrepancy_actions", &trail).await, 1);
    assert!(
        water_billing::cli::reconcile(&reconcile_args(&app, &gz, &reports))
            .await
            .unwrap()
    );
    assert_eq!(app.count("suspense_items", "1 = 1").await, 1);
}

#[tokio::test]
async fn two_concurrent_runs_of_one_day_record_one_run_and_post_once() {
    let (mut app, _statements) = app_paying_yesterday().await;
    let lost = pay(&mut app, "WECHAT", "9.00", "k-1", true).await;
    set_clocks(&app, chrono::Duration::zero());
    let mut a = app.reconciliation.clone();
    let mut b = app.reconciliation.clone();
    let request = || pb::RunReconciliationRequest {
        channel: pb::Channel::Wechat.into(),
        business_date: yesterday(),
        file: String::new(),
    };
    let (first, second) = tokio::join!(
        a.run_reconciliation(request()),
        b.run_reconciliation(request())
    );
    let (first, second) = (first.unwrap().into_inner(), second.unwrap().into_inner());
    assert_eq!(first.run_id, second.run_id);
    assert_eq!(app.count("reconciliation_runs", "1 = 1").await, 1);
    assert_eq!(app.count("discrepancies", "1 = 1").await, 1);
    assert_eq!(
        app.count_settled_by(EvidenceSource::Reconciliation).await,
        1
    );
    assert_eq!(get(&mut app, &lost).await.status().short(), "SUCCEEDED");
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}

#[tokio::test]
async fn an_alipay_statement_file_finance_already_has_is_imported_as_zip_or_csv() {
    use water_billing::sandbox::alipay::bill::{BillDay, gbk};
    let (mut app, dir) = app_paying_yesterday().await;
    pay(&mut app, "ALIPAY", "10.00", "k-1", false).await;
    pay(&mut app, "ALIPAY", "2.50", "k-2", false).await;
    set_clocks(&app, chrono::Duration::zero());
    let day = today() - chrono::Days::new(1);
    let trades = app.sandbox.as_ref().unwrap().alipay.trades();
    let payments: Vec<_> = trades
        .iter()
        .filter(|t| t.business_date == Some(day))
        .collect();
    let bill = BillDay {
        seller_id: water_billing::startup::gateways::SANDBOX_ALIPAY_SELLER_ID,
        day,
        payments: &payments,
        refunds: &[],
        exported_at: chrono::Utc::now(),
    };
    let zip = dir.path().join("bill.csv.zip");
    std::fs::write(&zip, bill.zip().unwrap()).unwrap();
    let csv = dir.path().join("bill.csv");
    std::fs::write(&csv, gbk(&bill.detail_csv())).unwrap();

    let from_zip = run(&mut app, "ALIPAY", &yesterday(), zip.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (from_zip.matched_count, from_zip.matched_amount.as_str()),
        (2, "12.50")
    );
    assert_eq!((from_zip.open_count, from_zip.version), (0, 1));
    let from_csv = run(&mut app, "ALIPAY", &yesterday(), csv.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!((from_csv.matched_count, from_csv.version), (2, 2));
    assert_eq!(from_csv.net_settlement, "12.50");
    assert_eq!(from_csv.fee_total, "0.00");
}

#[tokio::test]
async fn a_payment_missing_from_the_statement_is_queried_and_never_reversed_automatically() {
    use water_billing::startup::gateways::{SANDBOX_WECHAT_APP_ID, SANDBOX_WECHAT_MCH_ID};
    let (mut app, dir) = app_paying_yesterday().await;
    let paid = pay(&mut app, "WECHAT", "10.00", "k-1", false).await;
    set_clocks(&app, chrono::Duration::zero());
    let empty = water_billing::sandbox::wechat::bill::BillDay {
        app_id: SANDBOX_WECHAT_APP_ID,
        mch_id: SANDBOX_WECHAT_MCH_ID,
        payments: &[],
        refunds: &[],
    }
    .text();
    std::fs::write(dir.path().join("empty.csv"), empty).unwrap();

    let done = run(&mut app, "WECHAT", &yesterday(), "empty.csv")
        .await
        .unwrap();
    assert_eq!(
        (done.ledger_only_count, done.ledger_only_amount.as_str()),
        (1, "10.00")
    );
    assert_eq!((done.open_count, done.gateway_total.as_str()), (1, "0.00"));
    let item = discrepancies(&mut app, done.run_id).await.remove(0);
    assert_eq!(
        (
            item.class().short(),
            item.state().short(),
            item.out_trade_no.as_str()
        ),
        ("LEDGER_ONLY", "OPEN", paid.as_str())
    );
    assert!(item.note.contains("reports it paid"), "{}", item.note);
    // Finance cannot reverse money the gateway says it took.
    let refused = resolve(&mut app, item.discrepancy_id, "REVERSE").await;
    assert_eq!(refused.unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(get(&mut app, &paid).await.status().short(), "SUCCEEDED");
}

#[tokio::test]
async fn a_day_without_trades_is_an_empty_statement_not_an_error() {
    let (mut app, _statements) = app_paying_yesterday().await;
    set_clocks(&app, chrono::Duration::zero());
    // Two days back: Alipay's "no bill" for yesterday means "not ready" until 10:00 Beijing.
    let quiet_day = (today() - chrono::Days::new(2)).to_string();
    for channel in ["ALIPAY", "WECHAT"] {
        let done = run(&mut app, channel, &quiet_day, "").await.unwrap();
        assert_eq!(
            (done.gateway_count, done.ledger_count, done.status().short()),
            (0, 0, "BALANCED"),
            "{channel}"
        );
        assert_eq!(done.gateway_total, "0.00");
    }
}

/// Moves the simulators' clocks so the next payment lands at `hh:mm` Beijing time yesterday.
fn pay_yesterday_at(app: &TestApp, hour: u32, minute: u32) {
    let local = (today() - chrono::Days::new(1))
        .and_hms_opt(hour, minute, 0)
        .unwrap();
    let at = water_billing::app::payments::beijing_to_utc(local).unwrap();
    set_clocks(app, at - chrono::Utc::now());
}

#[tokio::test]
async fn items_held_near_midnight_are_settled_by_the_next_days_statement() {
    use water_billing::sandbox::wechat::bill::BillDay;
    use water_billing::startup::gateways::{SANDBOX_WECHAT_APP_ID, SANDBOX_WECHAT_MCH_ID};
    let (mut app, dir) = app_paying_yesterday().await;
    pay_yesterday_at(&app, 23, 57);
    let late = pay(&mut app, "WECHAT", "3.00", "k-1", false).await;
    pay_yesterday_at(&app, 23, 58);
    let missing = pay(&mut app, "WECHAT", "4.00", "k-2", false).await;
    set_clocks(&app, chrono::Duration::zero());
    let trades = app.sandbox.as_ref().unwrap().wechat.trades();
    let late_trade: Vec<_> = trades.iter().filter(|t| t.out_trade_no == late).collect();
    let bill = |payments| {
        BillDay {
            app_id: SANDBOX_WECHAT_APP_ID,
            mch_id: SANDBOX_WECHAT_MCH_ID,
            payments,
            refunds: &[],
        }
        .text()
    };
    // The gateway dated both payments today: yesterday's statement has neither, today's
    // has the first only.
    std::fs::write(dir.path().join("yesterday.csv"), bill(&[])).unwrap();
    std::fs::write(dir.path().join("today.csv"), bill(&late_trade)).unwrap();

    let first = run(&mut app, "WECHAT", &yesterday(), "yesterday.csv")
        .await
        .unwrap();
    assert_eq!((first.ledger_only_count, first.open_count), (2, 2));
    let held = discrepancies(&mut app, first.run_id).await;
    assert!(held.iter().all(|d| d.state().short() == "HELD"), "{held:?}");

    let next = run(&mut app, "WECHAT", &today().to_string(), "today.csv")
        .await
        .unwrap();
    // Today's row is our payment of yesterday: explained, not money we lack.
    assert_eq!((next.gateway_only_count, next.open_count), (1, 0));
    let settled = discrepancies(&mut app, first.run_id).await;
    let state = |number: &str| {
        let item = settled.iter().find(|d| d.out_trade_no == number).unwrap();
        (item.state().short(), item.note.clone(), item.discrepancy_id)
    };
    let (found, note, found_id) = state(&late);
    assert_eq!(found, "AUTO_RESOLVED");
    assert!(note.contains(&today().to_string()), "{note}");
    let (open, note, _) = state(&missing);
    assert_eq!(open, "OPEN");
    assert!(note.contains("not on the"), "{note}");
    let audit = format!("discrepancy_id = {found_id} AND operator = 'reconciliation'");
    assert_eq!(app.count("discrepancy_actions", &audit).await, 1);
    let again = app
        .reconciliation
        .get_reconciliation_run(pb::GetReconciliationRunRequest {
            run_id: first.run_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.open_count, 1);
    assert_eq!(app.count("statement_rows", "1 = 1").await, 1);
}

pub(crate) async fn resolve(
    app: &mut TestApp,
    discrepancy_id: i64,
    action: &str,
) -> Result<pb::Discrepancy, tonic::Status> {
    app.reconciliation
        .resolve_discrepancy(pb::ResolveDiscrepancyRequest {
            discrepancy_id,
            action: wire::<pb::DiscrepancyAction>(action),
            note: "checked with the gateway".into(),
            operator: "finance-1".into(),
        })
        .await
        .map(|r| r.into_inner())
}

pub(crate) async fn amount_due(app: &mut TestApp) -> String {
    app.accounts
        .get_account(pb::GetAccountRequest {
            account_no: "A-1".into(),
            as_of: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .amount_due
}

#[tokio::test]
async fn finance_reverses_a_posted_payment_the_gateway_never_took() {
    use water_billing::gateway::keys::PrivateKey;
    use water_billing::sandbox::alipay::bill::{BillDay, gbk};
    let (mut app, dir) = app_paying_yesterday().await;
    set_clocks(&app, chrono::Duration::zero());
    let owed = amount_due(&mut app).await;
    let order = app
        .payments
        .create_payment(pb::CreatePaymentRequest {
            account_no: "A-1".into(),
            channel: pb::Channel::Alipay.into(),
            amount: "50.00".into(),
            idempotency_key: "k-forged".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // A validly signed notification for a trade the gateway never completed (a leaked key,
    // a gateway bug): we post it, the statement does not have it.
    let mut params = crate::payments::alipay_params(&order.out_trade_no, "50.00");
    let paid_at = (today() - chrono::Days::new(1))
        .and_hms_opt(15, 0, 0)
        .unwrap();
    params.insert("gmt_payment".into(), paid_at.to_string());
    let key = PrivateKey::parse(&fixture("gateway_pkcs8.pem")).unwrap();
    assert_eq!(
        crate::payments::post_alipay(&app, &params, &key).await.0,
        200
    );
    assert_eq!(
        get(&mut app, &order.out_trade_no).await.status().short(),
        "SUCCEEDED"
    );
    assert_ne!(amount_due(&mut app).await, owed);
    let bill = BillDay {
        seller_id: water_billing::startup::gateways::SANDBOX_ALIPAY_SELLER_ID,
        day: today() - chrono::Days::new(1),
        payments: &[],
        refunds: &[],
        exported_at: chrono::Utc::now(),
    };
    std::fs::write(dir.path().join("empty.csv"), gbk(&bill.detail_csv())).unwrap();

    let done = run(&mut app, "ALIPAY", &yesterday(), "empty.csv")
        .await
        .unwrap();
    let item = discrepancies(&mut app, done.run_id).await.remove(0);
    assert_eq!(
        (item.class().short(), item.state().short()),
        ("LEDGER_ONLY", "OPEN")
    );
    assert!(item.note.contains("REVERSE proposed"), "{}", item.note);
    let refused = resolve(&mut app, item.discrepancy_id, "REFUND").await;
    assert_eq!(refused.unwrap_err().code(), Code::FailedPrecondition);

    let reversed = resolve(&mut app, item.discrepancy_id, "REVERSE")
        .await
        .unwrap();
    assert_eq!(
        (reversed.state().short(), reversed.action().short()),
        ("RESOLVED", "REVERSE")
    );
    assert!(
        reversed.note.contains("payment reversed"),
        "{}",
        reversed.note
    );
    assert_eq!(
        get(&mut app, &order.out_trade_no).await.status().short(),
        "REVERSED"
    );
    assert_eq!(amount_due(&mut app).await, owed);
    assert_eq!(
        app.count("journal_entries", "kind = 'PAYMENT_REVERSED'")
            .await,
        1
    );
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
    let again = resolve(&mut app, item.discrepancy_id, "REVERSE").await;
    assert_eq!(again.unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(
        app.count("journal_entries", "kind = 'PAYMENT_REVERSED'")
            .await,
        1
    );
}

#[tokio::test]
async fn finance_refunds_a_duplicate_payment_once() {
    let (mut app, _statements) = app_paying_yesterday().await;
    let first = pay(&mut app, "WECHAT", "", "k-1", false).await;
    let amount = get(&mut app, &first).await.amount;
    // A second later (statement times are to the second): the later payment is the
    // DUPLICATE, and it is the one whose money is still unapplied prepayment, which is all a
    // refund of it may return (the first paid the bill).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let second = pay(&mut app, "WECHAT", &amount, "k-2", false).await;
    set_clocks(&app, chrono::Duration::zero());
    let done = run(&mut app, "WECHAT", &yesterday(), "").await.unwrap();
    assert_eq!((done.duplicate_count, done.open_count), (1, 1));
    let item = discrepancies(&mut app, done.run_id).await.remove(0);
    assert_eq!(item.class().short(), "DUPLICATE");
    assert_eq!(item.out_trade_no, second);
    let kept = &first;
    let refused = resolve(&mut app, item.discrepancy_id, "REVERSE").await;
    assert_eq!(refused.unwrap_err().code(), Code::FailedPrecondition);

    let refunded = resolve(&mut app, item.discrepancy_id, "REFUND")
        .await
        .unwrap();
    assert_eq!(refunded.state().short(), "RESOLVED");
    let refund_no = format!("RC-{}", item.discrepancy_id);
    assert!(refunded.note.contains(&refund_no), "{}", refunded.note);
    assert_eq!(
        app.count("refunds", &format!("refund_no = '{refund_no}'"))
            .await,
        1
    );
    let again = resolve(&mut app, item.discrepancy_id, "REFUND").await;
    assert_eq!(again.unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(app.count("refunds", "1 = 1").await, 1);
    assert_eq!(get(&mut app, kept).await.status().short(), "SUCCEEDED");
}

/// The scheduler's run of `channel` for yesterday, once it is recorded (bounded wait).
async fn scheduled_run(app: &mut TestApp, channel: &str) -> pb::ReconciliationRun {
    let condition = format!(
        "channel = '{channel}' AND business_date = '{}'",
        yesterday()
    );
    for _ in 0..300 {
        if app.count("reconciliation_runs", &condition).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run_id = app
        .query_i64(&format!(
            "SELECT MAX(id) AS n FROM reconciliation_runs WHERE {condition}"
        ))
        .await;
    app.reconciliation
        .get_reconciliation_run(pb::GetReconciliationRunRequest { run_id })
        .await
        .unwrap_or_else(|e| panic!("no scheduled {channel} run for {}: {e}", yesterday()))
        .into_inner()
}

#[tokio::test]
async fn the_scheduler_reconciles_yesterday_once_the_statements_are_published() {
    let reports = tempfile::tempdir().unwrap();
    let schedule = water_billing::config::ReconcileScheduleConfig {
        reconcile_schedule: true,
        reconcile_at: "00:00".parse().unwrap(),
        reconcile_deadline: "23:59".parse().unwrap(),
        reconcile_retry_every_s: 1,
        reconcile_report_dir: reports.path().to_owned(),
    };
    // Customers pay "yesterday": until the simulators' clocks come back to today, yesterday's
    // statements are not published and every scheduled attempt is retried.
    let mut app = spawn_scheduled_sandbox_app(schedule, chrono::Duration::days(-1)).await;
    owing_one_bill(&mut app).await;
    pay(&mut app, "WECHAT", "10.00", "k-1", false).await;
    pay(&mut app, "ALIPAY", "2.50", "k-2", false).await;
    assert_eq!(app.count("reconciliation_runs", "1 = 1").await, 0);
    set_clocks(&app, chrono::Duration::zero());

    let wechat = scheduled_run(&mut app, "WECHAT").await;
    assert_eq!(
        (wechat.matched_count, wechat.matched_amount.as_str()),
        (1, "10.00")
    );
    assert_eq!((wechat.version, wechat.status().short()), (1, "BALANCED"));
    let alipay = scheduled_run(&mut app, "ALIPAY").await;
    assert_eq!(
        (alipay.matched_count, alipay.matched_amount.as_str()),
        (1, "2.50")
    );
    let xlsx = reports
        .path()
        .join(format!("reconciliation-wechat-{}-v1.xlsx", yesterday()));
    for _ in 0..100 {
        if xlsx.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(xlsx.with_extension("csv").exists(), "{}", xlsx.display());
    assert!(xlsx_parts(&xlsx)["xl/workbook.xml"].contains(r#"name="Summary""#));
}
