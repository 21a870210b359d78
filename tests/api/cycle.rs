//! RunBillingCycle: bills every active account, estimates, skips with reasons, resumes.

use water_billing::grpc::pb;

use crate::helpers::*;

async fn run_cycle(
    app: &mut TestApp,
    period: &str,
    issued_on: &str,
) -> Vec<pb::BillingCycleProgress> {
    let mut stream = app
        .billing
        .run_billing_cycle(pb::RunBillingCycleRequest {
            period: period.into(),
            issued_on: issued_on.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut messages = Vec::new();
    while let Some(progress) = stream.message().await.unwrap() {
        messages.push(progress);
    }
    messages
}

#[tokio::test]
async fn a_cycle_bills_read_accounts_estimates_others_and_skips_those_without_history() {
    let mut app = spawn_app_with(water_billing::config::BillingConfig {
        cycle_batch_size: 3,
        ..Default::default()
    })
    .await;
    app.upsert_tariff(flat_tariff()).await;
    for n in 0..7 {
        app.residential_account(&format!("A-{n}"), "FLAT", 4, 0, "2024-01-01")
            .await;
        app.read(&format!("M-A-{n}"), 10 + n, "2024-01-31")
            .await
            .unwrap();
    }
    let january = run_cycle(&mut app, "2024-01", "2024-02-01").await;
    let last = january.last().unwrap();
    assert!(last.done);
    assert_eq!(
        (
            last.total,
            last.processed,
            last.issued,
            last.skipped,
            last.failed
        ),
        (7, 7, 7, 0, 0)
    );
    assert!(
        january.len() >= 3,
        "progress after every batch: {january:?}"
    );
    // One summary entry per batch of three, receivable equal to the bills it issued.
    assert_eq!(
        app.count("journal_entries", "kind = 'BILL_ISSUED'").await,
        3
    );
    let receivable = app
        .query_i64(
            "SELECT CAST(SUM(p.debit_fen) AS BIGINT) AS n FROM journal_postings p \
             JOIN journal_entries e ON e.entry_key = p.entry_key \
             WHERE e.kind = 'BILL_ISSUED' AND p.ledger = 'RECEIVABLE'",
        )
        .await;
    let billed = app
        .query_i64("SELECT CAST(SUM(total_fen) AS BIGINT) AS n FROM bills")
        .await;
    assert!(billed > 0);
    assert_eq!(receivable, billed);
    app.residential_account("NEW", "FLAT", 4, 0, "2024-02-01")
        .await;
    for n in 0..3 {
        app.read(&format!("M-A-{n}"), 30, "2024-02-28")
            .await
            .unwrap();
    }
    let february = run_cycle(&mut app, "2024-02", "2024-03-01").await;
    let last = february.last().unwrap();
    assert_eq!(
        (last.total, last.issued, last.skipped, last.failed),
        (8, 7, 1, 0)
    );
    let estimated = app.issue("A-5", "2024-02", "").await.unwrap();
    assert!(estimated.estimated);
    assert_eq!(estimated.volume_m3, 15);
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}

#[tokio::test]
async fn rerunning_a_cycle_issues_only_what_is_missing() {
    let mut app = spawn_app().await;
    app.upsert_tariff(flat_tariff()).await;
    for n in 0..4 {
        app.residential_account(&format!("A-{n}"), "FLAT", 4, 0, "2024-01-01")
            .await;
        app.read(&format!("M-A-{n}"), 10, "2024-01-31")
            .await
            .unwrap();
    }
    app.issue("A-2", "2024-01", "2024-02-01").await.unwrap();
    let first = run_cycle(&mut app, "2024-01", "2024-02-01").await;
    let last = first.last().unwrap();
    assert_eq!((last.issued, last.already_billed), (3, 1));
    let journal = app.journal_totals().await;
    let again = run_cycle(&mut app, "2024-01", "2024-02-01").await;
    let last = again.last().unwrap();
    assert_eq!(
        (last.issued, last.already_billed, last.processed),
        (0, 4, 4)
    );
    assert_eq!(app.journal_totals().await, journal);
}

#[tokio::test]
async fn a_cycle_for_a_future_period_is_refused() {
    let mut app = spawn_app().await;
    let result = app
        .billing
        .run_billing_cycle(pb::RunBillingCycleRequest {
            period: "2999-01".into(),
            issued_on: String::new(),
        })
        .await;
    assert_code(result.map(|_| ()), tonic::Code::InvalidArgument);
}
