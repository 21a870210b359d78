//! Finance's resolutions claim first, then act; a payment for an order finance reversed goes
//! to suspense with an item of its own, whichever way the gateway's word arrives.

use std::time::Duration;

use tonic::Code;
use water_billing::gateway::keys::PrivateKey;
use water_billing::grpc::pb;
use water_billing::sandbox::alipay::bill::{BillDay, gbk};
use water_billing::sandbox::faults::Faults;

use crate::helpers::*;
use crate::payments::{alipay_params, post_alipay};
use crate::reconciliation::{
    amount_due, app_paying_yesterday, discrepancies, get, pay, resolve, run, set_clocks, today,
    yesterday,
};

fn resolution(discrepancy_id: i64, action: &str, operator: &str) -> pb::ResolveDiscrepancyRequest {
    pb::ResolveDiscrepancyRequest {
        discrepancy_id,
        action: wire::<pb::DiscrepancyAction>(action),
        note: "duplicate confirmed with the customer".into(),
        operator: operator.into(),
    }
}

async fn prepayment(app: &mut TestApp) -> String {
    app.account("A-1", "").await.prepayment_balance
}

/// Rows of one item's audit trail as (action, operator).
async fn trail(app: &TestApp, discrepancy_id: i64) -> Vec<String> {
    let mut rows = Vec::new();
    let count = app
        .count(
            "discrepancy_actions",
            &format!("discrepancy_id = {discrepancy_id}"),
        )
        .await;
    for action in [
        "REFUND",
        "RELEASE",
        "OPEN",
        "EXPLAIN",
        "WRITE_OFF",
        "POST",
        "REVERSE",
    ] {
        let n = app
            .count(
                "discrepancy_actions",
                &format!("discrepancy_id = {discrepancy_id} AND action = '{action}'"),
            )
            .await;
        rows.extend(std::iter::repeat_n(action.to_owned(), n as usize));
    }
    assert_eq!(
        rows.len() as i64,
        count,
        "an audit row of an unknown action"
    );
    rows
}

#[tokio::test]
async fn two_concurrent_refund_resolutions_of_a_duplicate_refund_it_once() {
    let (mut app, _statements) = app_paying_yesterday().await;
    let first = pay(&mut app, "WECHAT", "", "k-1", false).await;
    let amount = get(&mut app, &first).await.amount;
    // A second later (statement times are to the second), so the later payment is the
    // DUPLICATE: the one whose money is still unapplied prepayment, all a refund may return.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    pay(&mut app, "WECHAT", &amount, "k-2", false).await;
    set_clocks(&app, chrono::Duration::zero());
    let done = run(&mut app, "WECHAT", &yesterday(), "").await.unwrap();
    let item = discrepancies(&mut app, done.run_id).await.remove(0);
    assert_eq!(
        (item.class().short(), item.state().short()),
        ("DUPLICATE", "OPEN")
    );
    let before = prepayment(&mut app).await;
    assert_eq!(before, amount);

    let mut one = app.reconciliation.clone();
    let mut other = app.reconciliation.clone();
    let (a, b) = tokio::join!(
        one.resolve_discrepancy(resolution(item.discrepancy_id, "REFUND", "finance-1")),
        other.resolve_discrepancy(resolution(item.discrepancy_id, "REFUND", "finance-2")),
    );
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won.into_inner(), lost),
        other => panic!("exactly one resolution must win: {other:?}"),
    };
    assert!(
        [Code::FailedPrecondition, Code::Aborted].contains(&lost.code()),
        "{lost:?}"
    );
    assert_eq!(
        (won.state().short(), won.action().short()),
        ("RESOLVED", "REFUND")
    );
    let refund_no = format!("RC-{}", item.discrepancy_id);
    assert_eq!(won.refund_no, refund_no);
    assert_eq!(app.count("refunds", "1 = 1").await, 1);
    assert_eq!(
        app.count(
            "refunds",
            &format!("refund_no = '{refund_no}' AND status = 'SUCCEEDED'")
        )
        .await,
        1
    );
    assert_eq!(prepayment(&mut app).await, "0.00");
    // The claim and the confirmation; a loser that found the refund under way and continued
    // it is recorded too, and nothing else is.
    let rows = trail(&app, item.discrepancy_id).await;
    assert!(
        rows.len() >= 2 && rows.iter().all(|a| a == "REFUND"),
        "{rows:?}"
    );
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);

    let again = resolve(&mut app, item.discrepancy_id, "REFUND").await;
    assert_eq!(again.unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(app.count("refunds", "1 = 1").await, 1);
}

#[tokio::test]
async fn a_refund_racing_a_write_off_pays_only_if_it_won_the_claim() {
    let (mut app, _statements) = app_paying_yesterday().await;
    let first = pay(&mut app, "WECHAT", "", "k-0", false).await;
    let amount = get(&mut app, &first).await.amount;
    // A second later (statement times are to the second), so the later payment is the
    // DUPLICATE: the one whose money is still unapplied prepayment, all a refund may return.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // Three duplicates of the first payment, raced with the write-off sent later each time.
    let delays_ms = [0, 3, 10];
    for n in 1..=delays_ms.len() {
        pay(&mut app, "WECHAT", &amount, &format!("k-{n}"), false).await;
    }
    set_clocks(&app, chrono::Duration::zero());
    let done = run(&mut app, "WECHAT", &yesterday(), "").await.unwrap();
    let items = discrepancies(&mut app, done.run_id).await;
    assert_eq!(items.len(), delays_ms.len(), "{items:?}");

    for (item, delay_ms) in items.iter().zip(delays_ms) {
        let id = item.discrepancy_id;
        let mut one = app.reconciliation.clone();
        let mut other = app.reconciliation.clone();
        let (refund, write_off) = tokio::join!(
            one.resolve_discrepancy(resolution(id, "REFUND", "finance-1")),
            async {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                other
                    .resolve_discrepancy(resolution(id, "WRITE_OFF", "finance-2"))
                    .await
            },
        );
        assert!(
            refund.is_ok() != write_off.is_ok(),
            "exactly one wins: {refund:?} {write_off:?}"
        );
        let now = discrepancies(&mut app, done.run_id)
            .await
            .into_iter()
            .find(|d| d.discrepancy_id == id)
            .unwrap();
        let refunds = app
            .count("refunds", &format!("refund_no = 'RC-{id}'"))
            .await;
        let rows = trail(&app, id).await;
        if refund.is_ok() {
            assert_eq!((now.action().short(), refunds), ("REFUND", 1));
            assert!(rows.iter().all(|a| a == "REFUND"), "{rows:?}");
        } else {
            // No money moved for the claim that lost, and the trail says only what happened.
            assert_eq!(
                (now.action().short(), refunds),
                ("WRITE_OFF", 0),
                "{delay_ms} ms"
            );
            assert_eq!(rows, ["WRITE_OFF"]);
        }
        assert_eq!(now.state().short(), "RESOLVED");
    }
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}

#[tokio::test]
async fn a_refund_resolution_that_cannot_be_paid_gives_the_claim_back() {
    let (mut app, _statements) = app_paying_yesterday().await;
    let first = pay(&mut app, "WECHAT", "", "k-1", false).await;
    let amount = get(&mut app, &first).await.amount;
    // A second later (statement times are to the second), so the later payment is the
    // DUPLICATE: the one whose money is still unapplied prepayment, all a refund may return.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    pay(&mut app, "WECHAT", &amount, "k-2", false).await;
    set_clocks(&app, chrono::Duration::zero());
    let done = run(&mut app, "WECHAT", &yesterday(), "").await.unwrap();
    let item = discrepancies(&mut app, done.run_id).await.remove(0);
    // The duplicate's money left prepayment meanwhile (a new bill took it): nothing to refund.
    app.execute(&format!(
        "UPDATE payments SET refunded_fen = amount_fen WHERE out_trade_no = '{}'",
        item.out_trade_no
    ))
    .await;

    let refused = resolve(&mut app, item.discrepancy_id, "REFUND").await;
    assert_eq!(refused.unwrap_err().code(), Code::FailedPrecondition);
    let open = discrepancies(&mut app, done.run_id).await.remove(0);
    assert_eq!(open.state().short(), "OPEN");
    assert_eq!(app.count("refunds", "1 = 1").await, 0);
    assert_eq!(
        trail(&app, item.discrepancy_id).await,
        ["REFUND", "RELEASE"]
    );
    // Finance can still decide otherwise.
    let explained = resolve(&mut app, item.discrepancy_id, "EXPLAIN")
        .await
        .unwrap();
    assert_eq!(explained.state().short(), "RESOLVED");
}

/// Account A-1 pays 50.00 by Alipay through a signed notification for a trade the gateway
/// never completed; yesterday's (empty) statement shows it LEDGER_ONLY and finance reverses
/// it. Returns the order number.
async fn reversed_order(app: &mut TestApp, dir: &std::path::Path, key: &PrivateKey) -> String {
    set_clocks(app, chrono::Duration::zero());
    let order = app
        .payments
        .create_payment(pb::CreatePaymentRequest {
            account_no: "A-1".into(),
            channel: wire::<pb::Channel>("ALIPAY"),
            amount: "50.00".into(),
            idempotency_key: "k-forged".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut params = alipay_params(&order.out_trade_no, "50.00");
    let paid_at = (today() - chrono::Days::new(1))
        .and_hms_opt(15, 0, 0)
        .unwrap();
    params.insert("gmt_payment".into(), paid_at.to_string());
    assert_eq!(post_alipay(app, &params, key).await.0, 200);
    let bill = BillDay {
        seller_id: water_billing::startup::gateways::SANDBOX_ALIPAY_SELLER_ID,
        day: today() - chrono::Days::new(1),
        payments: &[],
        refunds: &[],
        exported_at: chrono::Utc::now(),
    };
    std::fs::write(dir.join("empty.csv"), gbk(&bill.detail_csv())).unwrap();
    let done = run(app, "ALIPAY", &yesterday(), "empty.csv").await.unwrap();
    let item = discrepancies(app, done.run_id).await.remove(0);
    assert_eq!(item.class().short(), "LEDGER_ONLY");
    let reversed = resolve(app, item.discrepancy_id, "REVERSE").await.unwrap();
    assert_eq!(reversed.state().short(), "RESOLVED");
    assert_eq!(
        get(app, &order.out_trade_no).await.status().short(),
        "REVERSED"
    );
    order.out_trade_no
}

#[tokio::test]
async fn a_verified_notification_for_a_reversed_order_goes_to_suspense_once() {
    let (mut app, dir) = app_paying_yesterday().await;
    let key = PrivateKey::parse(&fixture("gateway_pkcs8.pem")).unwrap();
    let out_trade_no = reversed_order(&mut app, dir.path(), &key).await;
    let owed = amount_due(&mut app).await;
    let held = prepayment(&mut app).await;

    // The gateway now says the order was paid after all: a new notification of the trade.
    let mut params = alipay_params(&out_trade_no, "50.00");
    params.insert(
        "notify_id".into(),
        "2025010100222100021000000000000002".into(),
    );
    params.insert("notify_time".into(), "2025-01-02 09:00:00".into());
    for _ in 0..2 {
        let (status, body) = post_alipay(&app, &params, &key).await;
        assert_eq!((status, body.as_str()), (200, "success"));
    }

    assert_eq!(
        get(&mut app, &out_trade_no).await.status().short(),
        "REVERSED"
    );
    assert_eq!(amount_due(&mut app).await, owed);
    assert_eq!(prepayment(&mut app).await, held);
    assert_eq!(
        app.count_suspense(SuspenseReason::ReversedOrder, "").await,
        1
    );
    let items = discrepancies(&mut app, 0).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(
        (
            item.class().short(),
            item.state().short(),
            item.run_id,
            item.out_trade_no.as_str(),
            item.gateway_amount.as_str(),
        ),
        (
            "PAID_AFTER_REVERSAL",
            "OPEN",
            0,
            out_trade_no.as_str(),
            "50.00"
        )
    );
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);

    // Finance decides; the item cannot be posted or reversed.
    for action in ["POST", "REVERSE"] {
        let refused = resolve(&mut app, item.discrepancy_id, action).await;
        assert_eq!(
            refused.unwrap_err().code(),
            Code::FailedPrecondition,
            "{action}"
        );
    }
    let explained = resolve(&mut app, item.discrepancy_id, "EXPLAIN")
        .await
        .unwrap();
    assert_eq!(explained.state().short(), "RESOLVED");
    assert_eq!(trail(&app, item.discrepancy_id).await, ["OPEN", "EXPLAIN"]);
}

#[tokio::test]
async fn reconciliation_holds_a_reversed_order_the_gateway_took_later_in_suspense() {
    let (mut app, dir) = app_paying_yesterday().await;
    let key = PrivateKey::parse(&fixture("gateway_pkcs8.pem")).unwrap();
    let out_trade_no = reversed_order(&mut app, dir.path(), &key).await;
    let owed = amount_due(&mut app).await;
    let held = prepayment(&mut app).await;
    // The customer pays the order at the gateway yesterday; the notification is lost.
    set_clocks(&app, chrono::Duration::days(-1));
    let sandbox = app.sandbox.as_ref().unwrap();
    sandbox.alipay.set_faults(Faults {
        drop_next_notifications: 1,
        ..Faults::default()
    });
    sandbox.alipay.pay(&out_trade_no).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    set_clocks(&app, chrono::Duration::zero());

    let done = run(&mut app, "ALIPAY", &yesterday(), "").await.unwrap();
    let items = discrepancies(&mut app, done.run_id).await;
    let found = items
        .iter()
        .find(|d| d.class().short() == "GATEWAY_ONLY" && d.out_trade_no == out_trade_no)
        .unwrap_or_else(|| panic!("{items:?}"));
    let standalone = discrepancies(&mut app, 0).await;
    assert_eq!(standalone.len(), 1, "{standalone:?}");
    assert_eq!(standalone[0].class().short(), "PAID_AFTER_REVERSAL");
    assert_eq!(found.state().short(), "AUTO_RESOLVED");
    assert!(
        found
            .note
            .contains(&format!("discrepancy {}", standalone[0].discrepancy_id)),
        "{}",
        found.note
    );
    assert_eq!(
        get(&mut app, &out_trade_no).await.status().short(),
        "REVERSED"
    );
    assert_eq!(amount_due(&mut app).await, owed);
    assert_eq!(prepayment(&mut app).await, held);
    assert_eq!(
        app.count_suspense(SuspenseReason::ReversedOrder, "").await,
        1
    );
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}

#[tokio::test]
async fn a_discrepancy_with_a_corrupt_state_is_an_internal_error_not_a_default() {
    let (mut app, _statements) = app_paying_yesterday().await;
    app.execute(
        "INSERT INTO discrepancies (run_id, class, state, movement, out_trade_no, difference_fen) \
         VALUES (NULL, 'GATEWAY_ONLY', 'CLOSED', 'PAYMENT', 'WB-X', 0)",
    )
    .await;
    let id = app
        .query_i64("SELECT MAX(id) AS n FROM discrepancies")
        .await;
    let refused = resolve(&mut app, id, "EXPLAIN").await;
    assert_eq!(refused.unwrap_err().code(), Code::Internal);
    assert_eq!(app.count("discrepancy_actions", "1 = 1").await, 0);
    let unknown = app
        .reconciliation
        .list_discrepancies(pb::ListDiscrepanciesRequest {
            run_id: 0,
            class: 0,
            state: UNKNOWN_ENUM_NUMBER,
        })
        .await;
    assert_eq!(unknown.unwrap_err().code(), Code::InvalidArgument);
}

/// Migration 8: items without a run, and back (its `down` drops them, their money stays in
/// suspense).
#[tokio::test]
async fn discrepancies_without_a_run_come_with_migration_8_and_go_with_its_down() {
    use ::migrations::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    let (url, _dir) = fresh_database().await;
    let db = water_billing::db::connect(&water_billing::config::DatabaseConfig::new(url))
        .await
        .unwrap();
    Migrator::up(&db, None).await.unwrap();
    let insert = |run_id: &str, no: &str| {
        format!(
            "INSERT INTO discrepancies (run_id, class, state, movement, out_trade_no, \
             difference_fen) VALUES ({run_id}, 'PAID_AFTER_REVERSAL', 'OPEN', 'PAYMENT', '{no}', 5000)"
        )
    };
    db.execute_unprepared(&insert("NULL", "WB-1"))
        .await
        .unwrap();
    db.execute_unprepared(&insert("7", "WB-2")).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO discrepancy_actions (discrepancy_id, action, operator, note, created_at) \
         SELECT id, 'OPEN', 'reconciliation', '', CURRENT_TIMESTAMP FROM discrepancies",
    )
    .await
    .unwrap();

    Migrator::down(&db, Some(1)).await.unwrap();
    let count = |sql: &'static str| {
        let db = &db;
        async move {
            db.query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap()
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM discrepancies WHERE run_id = 7").await,
        1
    );
    assert_eq!(count("SELECT COUNT(*) FROM discrepancies").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM discrepancy_actions").await, 1);
    let refused = db.execute_unprepared(&insert("NULL", "WB-3")).await;
    assert!(refused.is_err(), "run_id is required again: {refused:?}");

    Migrator::up(&db, None).await.unwrap();
    db.execute_unprepared(&insert("NULL", "WB-3"))
        .await
        .unwrap();
    assert_eq!(
        count("SELECT COUNT(*) FROM discrepancies WHERE run_id IS NULL").await,
        1
    );
}

#[tokio::test]
async fn a_refund_claimed_before_a_crash_is_continued_by_the_next_refund_request() {
    let (mut app, _statements) = app_paying_yesterday().await;
    let first = pay(&mut app, "WECHAT", "", "k-1", false).await;
    let amount = get(&mut app, &first).await.amount;
    // A second later (statement times are to the second), so the later payment is the
    // DUPLICATE: the one whose money is still unapplied prepayment, all a refund may return.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    pay(&mut app, "WECHAT", &amount, "k-2", false).await;
    set_clocks(&app, chrono::Duration::zero());
    let done = run(&mut app, "WECHAT", &yesterday(), "").await.unwrap();
    let item = discrepancies(&mut app, done.run_id).await.remove(0);
    let refund_no = format!("RC-{}", item.discrepancy_id);
    // The claim was committed, then the process died before the refund was asked for.
    app.execute(&format!(
        "UPDATE discrepancies SET state = 'RESOLVING', action = 'REFUND', \
         operator = 'finance-1', refund_no = '{refund_no}' WHERE id = {}",
        item.discrepancy_id
    ))
    .await;

    let blocked = resolve(&mut app, item.discrepancy_id, "WRITE_OFF").await;
    assert_eq!(blocked.unwrap_err().code(), Code::FailedPrecondition);
    let mut other = app.reconciliation.clone();
    let continued = other
        .resolve_discrepancy(resolution(item.discrepancy_id, "REFUND", "finance-2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (continued.state().short(), continued.refund_no.as_str()),
        ("RESOLVED", refund_no.as_str())
    );
    assert_eq!(app.count("refunds", "1 = 1").await, 1);
    assert_eq!(
        app.count("refunds", &format!("refund_no = '{refund_no}'"))
            .await,
        1
    );
    assert_eq!(prepayment(&mut app).await, "0.00");
    // The continuation and the confirmation.
    assert_eq!(trail(&app, item.discrepancy_id).await, ["REFUND", "REFUND"]);
}
