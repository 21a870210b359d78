//! Recording a run: under the channel/date lock, re-check the statement hash, apply the
//! repairs through `settle`, and insert the run, its discrepancies (carrying finance's
//! resolutions over from the previous version) and its statement rows, then settle what the
//! adjacent dates held near midnight; all in one transaction.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter,
    QueryOrder, Set, Statement as SqlStatement,
};
use sha2::{Digest as _, Sha256};

use super::{Repair, SERVICE_OPERATOR, corrupt};
use crate::app::payments::beijing_to_utc;
use crate::app::settlement::{PaymentChannel, SettleOutcome, settle};
use crate::app::{App, AppError, AppResult};
use crate::db::entity::{discrepancy, discrepancy_action, reconciliation_run};
use crate::domain::discrepancy::{Action, Class, Event, Item, State, transition};
use crate::domain::reconcile::{ClassTotal, Discrepancy, GatewayRow, Movement, ReconcileResult};
use crate::gateway::statement::Statement;

pub async fn find_run(
    db: &impl ConnectionTrait,
    channel: PaymentChannel,
    date: NaiveDate,
    sha256: &str,
) -> AppResult<Option<reconciliation_run::Model>> {
    Ok(reconciliation_run::Entity::find()
        .filter(reconciliation_run::Column::Channel.eq(channel.as_str()))
        .filter(reconciliation_run::Column::BusinessDate.eq(date))
        .filter(reconciliation_run::Column::StatementSha256.eq(sha256))
        .one(db)
        .await?)
}

/// The newest recorded run of `channel` on `date` (any version).
pub async fn latest_run(
    db: &impl ConnectionTrait,
    channel: PaymentChannel,
    date: NaiveDate,
) -> AppResult<Option<reconciliation_run::Model>> {
    Ok(reconciliation_run::Entity::find()
        .filter(reconciliation_run::Column::Channel.eq(channel.as_str()))
        .filter(reconciliation_run::Column::BusinessDate.eq(date))
        .order_by_desc(reconciliation_run::Column::Version)
        .one(db)
        .await?)
}

/// PostgreSQL: one recorder per channel/date across replicas, until the transaction ends.
async fn lock_channel_date(
    txn: &impl ConnectionTrait,
    channel: PaymentChannel,
    date: NaiveDate,
) -> AppResult<()> {
    if txn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let digest = Sha256::digest(format!("reconciliation:{}:{date}", channel.as_str()));
    let mut head = [0_u8; 8];
    head.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    let key = i64::from_be_bytes(head);
    txn.execute_raw(SqlStatement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [key.into()],
    ))
    .await?;
    Ok(())
}

/// Yuan as an exact string with the scale the statement gave it; a zero is never "-0.00"
/// (a sum of negated zero fees prints that way).
fn exact_text(mut value: rust_decimal::Decimal) -> String {
    if value.is_zero() {
        value.set_sign_positive(true);
    }
    value.to_string()
}

fn count(total: &ClassTotal) -> i64 {
    i64::try_from(total.count).unwrap_or(i64::MAX)
}

fn run_row(
    channel: PaymentChannel,
    date: NaiveDate,
    version: i32,
    statement: &Statement,
    result: &ReconcileResult,
    now: chrono::DateTime<chrono::Utc>,
) -> reconciliation_run::ActiveModel {
    let t = &result.totals;
    let n = |c: usize| i64::try_from(c).unwrap_or(i64::MAX);
    reconciliation_run::ActiveModel {
        channel: Set(channel.as_str().to_owned()),
        business_date: Set(date),
        version: Set(version),
        status: Set("RECORDED".to_owned()),
        statement_sha256: Set(statement.sha256.clone()),
        ledger_count: Set(n(t.ledger_count)),
        gateway_count: Set(n(t.gateway_count)),
        matched_count: Set(n(t.matched_count)),
        matched_fen: Set(t.matched_fen),
        gateway_only_count: Set(count(&t.gateway_only)),
        gateway_only_fen: Set(t.gateway_only.gateway_fen),
        ledger_only_count: Set(count(&t.ledger_only)),
        ledger_only_fen: Set(t.ledger_only.ledger_fen),
        amount_mismatch_count: Set(count(&t.amount_mismatch)),
        amount_mismatch_fen: Set(t.amount_mismatch.difference_fen),
        status_mismatch_count: Set(count(&t.status_mismatch)),
        status_mismatch_fen: Set(t.status_mismatch.difference_fen),
        duplicate_count: Set(count(&t.duplicate)),
        duplicate_fen: Set(t.duplicate.gateway_fen),
        ledger_total_fen: Set(t.ledger_fen),
        gateway_total_fen: Set(t.gateway_fen),
        gateway_refunds_fen: Set(t.gateway_refunds_fen),
        fee_total: Set(exact_text(t.fee_total)),
        net_settlement: Set(exact_text(t.net_settlement)),
        created_at: Set(now),
        ..Default::default()
    }
}

type ItemKey = (Class, Movement, String, Option<String>);

/// Which item of an earlier version an item is. A payment's `refund_no` is the refund a
/// REFUND resolution requested, not part of what the statement said, so it is not compared.
fn key_of(
    class: Class,
    movement: Movement,
    out_trade_no: &str,
    refund_no: Option<&str>,
) -> ItemKey {
    let refund_no = match movement {
        Movement::Refund => refund_no.map(str::to_owned),
        Movement::Payment => None,
    };
    (class, movement, out_trade_no.to_owned(), refund_no)
}

/// The class of a matcher's discrepancy (a matched pair never is one).
fn class_of(item: &Discrepancy) -> AppResult<Class> {
    Class::of_match(item.class).ok_or_else(|| {
        AppError::Database(sea_orm::DbErr::Custom(format!(
            "matched pair {} reported as a discrepancy",
            item.out_trade_no
        )))
    })
}

fn utc(at: Option<NaiveDateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    at.and_then(beijing_to_utc)
}

/// Records the run; returns the existing one if a concurrent recorder got there first.
pub async fn record(
    app: &App,
    channel: PaymentChannel,
    date: NaiveDate,
    (statement, rows): (&Statement, &[GatewayRow<'_>]),
    result: &ReconcileResult,
    repairs: &[(usize, Repair)],
) -> AppResult<reconciliation_run::Model> {
    let txn = crate::db::begin_write(&app.db).await?;
    lock_channel_date(&txn, channel, date).await?;
    if let Some(existing) = find_run(&txn, channel, date, &statement.sha256).await? {
        txn.rollback().await?;
        return Ok(existing);
    }
    let previous = latest_run(&txn, channel, date).await?;
    let resolved = match &previous {
        Some(run) => resolved_items(&txn, run.id).await?,
        None => HashMap::new(),
    };
    let version = previous.map_or(1, |run| run.version.saturating_add(1));
    let now = app.now();
    let run = run_row(channel, date, version, statement, result, now)
        .insert(&txn)
        .await?;
    let outcomes = apply_repairs(app, &txn, channel, repairs).await?;
    for (index, item) in result.discrepancies.iter().enumerate() {
        let class = class_of(item)?;
        let mut row = discrepancy_row(run.id, item, class);
        if let Some(note) = outcomes.get(&index) {
            apply_outcome(&mut row, item, class, note, now)?;
        }
        let key = key_of(
            class,
            item.movement,
            &item.out_trade_no,
            item.refund_no.as_deref(),
        );
        let earlier = resolved.get(&key);
        if let Some(earlier) = earlier {
            row.state = Set(earlier.state.clone());
            row.action = Set(earlier.action.clone());
            row.operator = Set(earlier.operator.clone());
            row.note = Set(earlier.note.clone());
            row.resolved_at = Set(earlier.resolved_at);
            if item.movement == Movement::Payment {
                row.refund_no = Set(earlier.refund_no.clone());
            }
        }
        let inserted = row.insert(&txn).await?;
        if let Some(earlier) = earlier {
            copy_audit_trail(&txn, earlier.id, inserted.id).await?;
        }
    }
    super::adjacent::store_rows(&txn, run.id, statement).await?;
    super::adjacent::settle_held(&txn, channel, date, rows, now).await?;
    txn.commit().await?;
    Ok(run)
}

async fn resolved_items(
    txn: &impl ConnectionTrait,
    run_id: i64,
) -> AppResult<HashMap<ItemKey, discrepancy::Model>> {
    // A refund in progress carries over too: its retry continues the same refund.
    let rows = discrepancy::Entity::find()
        .filter(discrepancy::Column::RunId.eq(run_id))
        .filter(
            discrepancy::Column::State.is_in([State::Resolved.as_str(), State::Resolving.as_str()]),
        )
        .all(txn)
        .await?;
    let mut items = HashMap::with_capacity(rows.len());
    for d in rows {
        let item = d.item().map_err(corrupt)?;
        let key = key_of(
            item.class,
            item.movement,
            &d.out_trade_no,
            d.refund_no.as_deref(),
        );
        items.insert(key, d);
    }
    Ok(items)
}

/// The new version's item carries the earlier item's audit rows (copies; the originals stay).
async fn copy_audit_trail(txn: &impl ConnectionTrait, from: i64, to: i64) -> AppResult<()> {
    let actions = discrepancy_action::Entity::find()
        .filter(discrepancy_action::Column::DiscrepancyId.eq(from))
        .order_by_asc(discrepancy_action::Column::Id)
        .all(txn)
        .await?;
    for action in actions {
        discrepancy_action::ActiveModel {
            discrepancy_id: Set(to),
            action: Set(action.action),
            operator: Set(action.operator),
            note: Set(action.note),
            created_at: Set(action.created_at),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

/// What a repair did, by discrepancy index.
enum Outcome {
    Posted,
    /// The order had been reversed: the money is in suspense under its own item.
    PaidAfterReversal {
        discrepancy_id: i64,
    },
    Note(String),
}

async fn apply_repairs(
    app: &App,
    txn: &impl ConnectionTrait,
    channel: PaymentChannel,
    repairs: &[(usize, Repair)],
) -> AppResult<HashMap<usize, Outcome>> {
    let mut outcomes = HashMap::with_capacity(repairs.len());
    for (index, repair) in repairs {
        let evidence = match repair {
            Repair::Confirmed(evidence) | Repair::Unknown(evidence) => evidence,
            Repair::Note(note) => {
                outcomes.insert(*index, Outcome::Note(note.clone()));
                continue;
            }
        };
        let outcome = match settle(txn, channel, evidence, &app.settings).await? {
            SettleOutcome::Posted | SettleOutcome::AlreadyPosted => Outcome::Posted,
            SettleOutcome::PaidAfterReversal { discrepancy_id } => {
                Outcome::PaidAfterReversal { discrepancy_id }
            }
            SettleOutcome::UnknownOrder => {
                Outcome::Note("unknown order: held in suspense for finance".to_owned())
            }
            SettleOutcome::AmountMismatch {
                ours_fen,
                theirs_fen,
            } => Outcome::Note(format!(
                "order is for {ours_fen} fen, the gateway took {theirs_fen} fen: held in suspense"
            )),
        };
        outcomes.insert(*index, outcome);
    }
    Ok(outcomes)
}

fn apply_outcome(
    row: &mut discrepancy::ActiveModel,
    item: &Discrepancy,
    class: Class,
    outcome: &Outcome,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    let (action, note) = match outcome {
        Outcome::Note(note) => {
            row.note = Set(Some(note.clone()));
            return Ok(());
        }
        Outcome::Posted => (
            Action::Post,
            "the gateway confirmed the payment; posted as a late notification".to_owned(),
        ),
        Outcome::PaidAfterReversal { discrepancy_id } => (
            Action::Explain,
            format!(
                "the order had been reversed: the payment is held in suspense, \
                 discrepancy {discrepancy_id} is open for finance"
            ),
        ),
    };
    let current = Item {
        state: item.state.into(),
        class,
        movement: item.movement,
        action: None,
    };
    let step = transition(current, Event::Repaired)
        .map_err(|refusal| AppError::FailedPrecondition(refusal.to_string()))?;
    row.state = Set(step.state.as_str().to_owned());
    row.action = Set(Some(action.as_str().to_owned()));
    row.operator = Set(Some(SERVICE_OPERATOR.to_owned()));
    row.note = Set(Some(note));
    row.resolved_at = Set(Some(now));
    Ok(())
}

fn discrepancy_row(run_id: i64, item: &Discrepancy, class: Class) -> discrepancy::ActiveModel {
    discrepancy::ActiveModel {
        run_id: Set(Some(run_id)),
        class: Set(class.as_str().to_owned()),
        state: Set(State::from(item.state).as_str().to_owned()),
        movement: Set(item.movement.as_str().to_owned()),
        out_trade_no: Set(item.out_trade_no.clone()),
        gateway_trade_no: Set(item.gateway_trade_no.clone()),
        refund_no: Set(item.refund_no.clone()),
        account_no: Set(item.account_no.clone()),
        ledger_fen: Set(item.ledger_fen),
        gateway_fen: Set(item.gateway_fen),
        difference_fen: Set(item.difference_fen),
        ledger_time: Set(utc(item.ledger_time)),
        gateway_time: Set(utc(item.gateway_time)),
        action: Set(None),
        operator: Set(None),
        note: Set(None),
        resolved_at: Set(None),
        ..Default::default()
    }
}
