//! Payments: QR orders through Alipay and WeChat Pay, counter payments, and keeping PENDING
//! orders honest by querying the gateway (on read when stale, and from the sweeper).
//!
//! An order row is committed before the gateway is asked for a QR code, so a crash between
//! the two leaves a PENDING order that the same idempotency key resumes with the same
//! merchant number; the gateway never sees two numbers for one request.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};

use super::accounts::find_account;
use super::gateways::Channel;
use super::settlement::{
    CLOSED, PENDING, PaidEvidence, PaymentChannel, SUCCEEDED, post_to_account, requested_channel,
    settle, stored_channel,
};
use super::validate;
use super::{App, AppError, AppResult};
use crate::db::entity::{account, closure, payment};
use crate::domain::evidence::EvidenceSource;
use crate::domain::money::Money;
use crate::gateway::alipay::client::AlipayTrade;
use crate::gateway::beijing::{BEIJING, beijing_date};
use crate::gateway::error::GatewayError;
use crate::gateway::wechat::resource::TradeState;

const IDEMPOTENCY_KEY_LEN_MAX: usize = 128;
/// The largest single payment accepted (well inside both gateways' limits).
const PAYMENT_FEN_MAX: i64 = 100_000_000;
const LIST_PAGE_SIZE_MAX: u64 = 500;

#[derive(Debug, Clone)]
pub struct NewPayment {
    pub account_no: String,
    pub channel: String,
    pub amount: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone)]
pub struct PaymentView {
    pub payment: payment::Model,
    pub account_no: String,
}

/// Which payments to list.
#[derive(Debug, Clone)]
pub enum PaymentFilter {
    Account(String),
    Day {
        business_date: String,
        channel: String,
    },
}

impl App {
    pub async fn create_payment(&self, new: NewPayment) -> AppResult<PaymentView> {
        let channel = requested_channel(&new.channel)?;
        if channel == PaymentChannel::Counter {
            return Err(AppError::invalid(
                "channel",
                "counter payments are recorded with RecordCounterPayment",
            ));
        }
        let key = validate::text(
            "idempotency_key",
            &new.idempotency_key,
            IDEMPOTENCY_KEY_LEN_MAX,
        )?;
        let account = find_account(&self.db, &new.account_no).await?;
        if let Some(existing) = find_by_key(self, &key).await? {
            if existing.account_id != account.id || existing.channel != channel.as_str() {
                return Err(AppError::AlreadyExists(format!(
                    "idempotency_key {key:?} was already used for another account or channel"
                )));
            }
            return self.ensure_qr(existing, &account.account_no).await;
        }
        self.channel_ready(channel)?;
        let amount = self.order_amount(&account, &new.amount).await?;
        let now = self.now();
        let row = payment::ActiveModel {
            out_trade_no: Set(new_out_trade_no(now)),
            account_id: Set(account.id),
            channel: Set(channel.as_str().to_owned()),
            amount_fen: Set(amount.to_fen()),
            status: Set(PENDING.to_owned()),
            idempotency_key: Set(Some(key.clone())),
            created_at: Set(now),
            expires_at: Set(Some(end_of_beijing_day(now))),
            refunded_fen: Set(0),
            ..Default::default()
        };
        let order = match row.insert(&self.db).await {
            Ok(order) => order,
            Err(err) if super::error::is_unique_violation(&err) => {
                let existing = find_by_key(self, &key)
                    .await?
                    .ok_or_else(|| AppError::Conflict("retry".into()))?;
                return self.ensure_qr(existing, &account.account_no).await;
            }
            Err(err) => return Err(err.into()),
        };
        self.ensure_qr(order, &account.account_no).await
    }

    fn channel_ready(&self, channel: PaymentChannel) -> AppResult<()> {
        let disabled = match channel {
            PaymentChannel::Alipay => self.gateways.alipay.enabled().err(),
            PaymentChannel::Wechat => self.gateways.wechat.enabled().err(),
            PaymentChannel::Counter => None,
        };
        match disabled {
            Some(why) => Err(AppError::FailedPrecondition(why.to_owned())),
            None => Ok(()),
        }
    }

    /// The amount given, or what the account owes today.
    async fn order_amount(&self, account: &account::Model, amount: &str) -> AppResult<Money> {
        let amount = if amount.is_empty() {
            let due = self.get_account(&account.account_no, "").await?.amount_due;
            if !due.is_positive() {
                return Err(AppError::FailedPrecondition(format!(
                    "account {} owes nothing today; give an amount to pay in advance",
                    account.account_no
                )));
            }
            due
        } else {
            Money::parse_non_negative(amount).map_err(|e| AppError::invalid("amount", e))?
        };
        if !amount.is_positive() || amount.to_fen() > PAYMENT_FEN_MAX {
            return Err(AppError::invalid(
                "amount",
                format!(
                    "must be between 0.01 and {}",
                    Money::from_fen(PAYMENT_FEN_MAX)
                ),
            ));
        }
        Ok(amount)
    }

    /// Asks the gateway for the QR code of a PENDING order that has none yet.
    async fn ensure_qr(&self, order: payment::Model, account_no: &str) -> AppResult<PaymentView> {
        if order.qr_code.is_some() || order.status != PENDING {
            return Ok(PaymentView {
                payment: order,
                account_no: account_no.to_owned(),
            });
        }
        let channel = stored_channel(&order.channel)?;
        let subject = format!("水费 {account_no}");
        let mut outcome = self.request_qr(channel, &order, &subject).await;
        if matches!(&outcome, Err(e) if e.is_unknown()) {
            // Same merchant number, same amount: the gateway treats it as the same order.
            outcome = self.request_qr(channel, &order, &subject).await;
        }
        match outcome {
            Ok(qr_code) => {
                let mut row: payment::ActiveModel = order.into();
                row.qr_code = Set(Some(qr_code));
                Ok(PaymentView {
                    payment: row.update(&self.db).await?,
                    account_no: account_no.to_owned(),
                })
            }
            Err(err) if err.is_unknown() => Err(AppError::Unavailable(format!(
                "the {} gateway did not answer ({err}); retry with the same idempotency_key",
                channel.as_str()
            ))),
            Err(err) => {
                mark_closed(self, order.id).await?;
                Err(AppError::FailedPrecondition(format!(
                    "the {} gateway refused the order: {err}",
                    channel.as_str()
                )))
            }
        }
    }

    async fn request_qr(
        &self,
        channel: PaymentChannel,
        order: &payment::Model,
        subject: &str,
    ) -> Result<String, GatewayError> {
        let now = self.now();
        let expires_at = order.expires_at.unwrap_or_else(|| end_of_beijing_day(now));
        match (channel, &self.gateways.alipay, &self.gateways.wechat) {
            (PaymentChannel::Alipay, Channel::Enabled(alipay), _) => {
                let minutes = (expires_at - now).num_minutes().max(1);
                alipay
                    .precreate(
                        &order.out_trade_no,
                        order.amount_fen,
                        subject,
                        &format!("{minutes}m"),
                        now,
                    )
                    .await
            }
            (PaymentChannel::Wechat, _, Channel::Enabled(wechat)) => {
                let expire =
                    (expires_at.max(now + Duration::minutes(5))).with_timezone(&beijing_offset());
                wechat
                    .native_prepay(&order.out_trade_no, subject, order.amount_fen, expire, now)
                    .await
            }
            _ => Err(GatewayError::Protocol(format!(
                "the {} channel is disabled",
                channel.as_str()
            ))),
        }
    }

    /// The order, refreshed from the gateway first when it has been PENDING for a while.
    pub async fn get_payment(&self, out_trade_no: &str) -> AppResult<PaymentView> {
        let order = find_payment(self, out_trade_no).await?;
        let stale_before =
            self.now() - Duration::seconds(self.payments.pending_query_after_s as i64);
        let order = if order.status == PENDING && order.created_at < stale_before {
            self.refresh(order).await?
        } else {
            order
        };
        self.view(order).await
    }

    pub async fn view(&self, order: payment::Model) -> AppResult<PaymentView> {
        let account = account::Entity::find_by_id(order.account_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| crate::db::queries::corrupt("payment", "account missing"))?;
        Ok(PaymentView {
            payment: order,
            account_no: account.account_no,
        })
    }

    /// Queries the gateway about a PENDING order: posts it if paid, closes it once expired.
    /// Gateway trouble leaves it PENDING for the next round.
    pub async fn refresh(&self, order: payment::Model) -> AppResult<payment::Model> {
        let now = self.now();
        let channel = stored_channel(&order.channel)?;
        match self.query_paid(channel, &order.out_trade_no).await {
            Ok(Some(evidence)) => {
                let txn = crate::db::begin_write(&self.db).await?;
                settle(&txn, channel, &evidence, &self.settings).await?;
                txn.commit().await?;
            }
            Ok(None) if order.expires_at.is_some_and(|at| at < now) => {
                if self.close_at_gateway(channel, &order.out_trade_no).await {
                    mark_closed(self, order.id).await?;
                }
            }
            Ok(None) => {}
            Err(err) => {
                tracing::info!(out_trade_no = %order.out_trade_no, error = %err, "gateway query inconclusive")
            }
        }
        payment::Entity::update_many()
            .col_expr(payment::Column::LastQueriedAt, Expr::value(now))
            .filter(payment::Column::Id.eq(order.id))
            .exec(&self.db)
            .await?;
        find_payment(self, &order.out_trade_no).await
    }

    /// What the gateway says about an order: `Some` when it was paid.
    pub async fn query_paid(
        &self,
        channel: PaymentChannel,
        out_trade_no: &str,
    ) -> Result<Option<PaidEvidence>, GatewayError> {
        let now = self.now();
        match (channel, &self.gateways.alipay, &self.gateways.wechat) {
            (PaymentChannel::Alipay, Channel::Enabled(alipay), _) => {
                match alipay.query(out_trade_no, now).await? {
                    AlipayTrade::Found(trade) if trade.trade_status.is_paid() => {
                        Ok(Some(PaidEvidence {
                            out_trade_no: out_trade_no.to_owned(),
                            gateway_trade_no: trade.trade_no,
                            amount_fen: trade.total_fen,
                            paid_at: trade.send_pay_date.and_then(beijing_to_utc).unwrap_or(now),
                            source: EvidenceSource::Query,
                        }))
                    }
                    _ => Ok(None),
                }
            }
            (PaymentChannel::Wechat, _, Channel::Enabled(wechat)) => match wechat
                .query(out_trade_no, now)
                .await?
            {
                Some(tx) if matches!(tx.trade_state, TradeState::Success | TradeState::Refund) => {
                    Ok(Some(PaidEvidence {
                        out_trade_no: out_trade_no.to_owned(),
                        gateway_trade_no: tx.transaction_id.unwrap_or_default(),
                        amount_fen: tx.amount.total,
                        paid_at: tx.success_time.map_or(now, |t| t.with_timezone(&Utc)),
                        source: EvidenceSource::Query,
                    }))
                }
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }

    /// Closes an unpaid order at the gateway. An order the gateway never saw (an unscanned
    /// QR code) counts as closed; an inconclusive answer does not.
    async fn close_at_gateway(&self, channel: PaymentChannel, out_trade_no: &str) -> bool {
        let now = self.now();
        let outcome = match (channel, &self.gateways.alipay, &self.gateways.wechat) {
            (PaymentChannel::Alipay, Channel::Enabled(alipay), _) => {
                alipay.close(out_trade_no, now).await
            }
            (PaymentChannel::Wechat, _, Channel::Enabled(wechat)) => {
                wechat.close(out_trade_no, now).await
            }
            _ => return false,
        };
        match outcome {
            Ok(()) => true,
            Err(err) => !err.is_unknown(),
        }
    }

    /// One round of the sweeper: refreshes up to `sweep_batch_max` stale PENDING orders,
    /// oldest query first. Returns how many it looked at.
    pub async fn sweep_pending(&self) -> AppResult<u64> {
        let stale_before =
            self.now() - Duration::seconds(self.payments.pending_query_after_s as i64);
        let orders = payment::Entity::find()
            .filter(payment::Column::Status.eq(PENDING))
            .filter(payment::Column::CreatedAt.lt(stale_before))
            .filter(
                Condition::any()
                    .add(payment::Column::LastQueriedAt.is_null())
                    .add(payment::Column::LastQueriedAt.lt(stale_before)),
            )
            .order_by_asc(payment::Column::CreatedAt)
            .limit(self.payments.sweep_batch_max)
            .all(&self.db)
            .await?;
        let count = orders.len() as u64;
        for order in orders {
            self.refresh(order).await?;
        }
        Ok(count)
    }

    /// Cash or POS at a service hall: posted at once, idempotent on the receipt number.
    pub async fn record_counter_payment(
        &self,
        account_no: &str,
        amount: &str,
        cashier_id: &str,
        receipt_no: &str,
    ) -> AppResult<PaymentView> {
        let amount =
            Money::parse_non_negative(amount).map_err(|e| AppError::invalid("amount", e))?;
        if !amount.is_positive() || amount.to_fen() > PAYMENT_FEN_MAX {
            return Err(AppError::invalid(
                "amount",
                "must be a positive amount of yuan",
            ));
        }
        let cashier_id = validate::identifier("cashier_id", cashier_id)?;
        let receipt_no = validate::identifier("receipt_no", receipt_no)?;
        let account = find_account(&self.db, account_no).await?;
        if let Some(existing) = payment::Entity::find()
            .filter(payment::Column::ReceiptNo.eq(&receipt_no))
            .one(&self.db)
            .await?
        {
            if existing.account_id != account.id || existing.amount_fen != amount.to_fen() {
                return Err(AppError::AlreadyExists(format!(
                    "receipt {receipt_no} was already recorded for a different payment"
                )));
            }
            return self.view(existing).await;
        }
        let now = self.now();
        let today = beijing_date(now);
        self.check_counters_open(today).await?;
        let txn = crate::db::begin_write(&self.db).await?;
        let order = payment::ActiveModel {
            out_trade_no: Set(format!("CT-{receipt_no}")),
            account_id: Set(account.id),
            channel: Set(PaymentChannel::Counter.as_str().to_owned()),
            amount_fen: Set(amount.to_fen()),
            status: Set(SUCCEEDED.to_owned()),
            created_at: Set(now),
            paid_at: Set(Some(now)),
            business_date: Set(Some(today)),
            refunded_fen: Set(0),
            cashier_id: Set(Some(cashier_id)),
            receipt_no: Set(Some(receipt_no.clone())),
            settled_by: Set(Some(EvidenceSource::Counter.as_str().to_owned())),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|err| {
            crate::app::error::unique_or(err, || {
                AppError::Conflict(format!(
                    "receipt {receipt_no} was recorded concurrently; retry"
                ))
            })
        })?;
        post_to_account(
            &txn,
            account.id,
            order.id,
            &order.out_trade_no,
            amount,
            PaymentChannel::Counter,
            today,
            &self.settings,
        )
        .await?;
        txn.commit().await?;
        Ok(PaymentView {
            payment: order,
            account_no: account.account_no,
        })
    }

    async fn check_counters_open(&self, today: chrono::NaiveDate) -> AppResult<()> {
        let closed = closure::Entity::find()
            .filter(closure::Column::CloseCounters.eq(true))
            .filter(closure::Column::StartsOn.lte(today))
            .filter(closure::Column::EndsOn.gte(today))
            .one(&self.db)
            .await?;
        match closed {
            Some(c) => Err(AppError::FailedPrecondition(format!(
                "counters are closed from {} to {} ({}, closure {}); pay through Alipay or WeChat Pay instead",
                c.starts_on, c.ends_on, c.reason, c.id
            ))),
            None => Ok(()),
        }
    }

    pub async fn list_payments(
        &self,
        filter: PaymentFilter,
        page_size: u32,
        page_token: &str,
    ) -> AppResult<(Vec<PaymentView>, String)> {
        let page_size = match u64::from(page_size) {
            0 => 50,
            n if n <= LIST_PAGE_SIZE_MAX => n,
            n => {
                return Err(AppError::invalid(
                    "page_size",
                    format!("{n} is above the maximum {LIST_PAGE_SIZE_MAX}"),
                ));
            }
        };
        let mut query = payment::Entity::find();
        query = match filter {
            PaymentFilter::Account(account_no) => {
                let account = find_account(&self.db, &account_no).await?;
                query.filter(payment::Column::AccountId.eq(account.id))
            }
            PaymentFilter::Day {
                business_date,
                channel,
            } => {
                let day = validate::date("business_date", &business_date)?;
                let channel = requested_channel(&channel)?;
                query
                    .filter(payment::Column::BusinessDate.eq(day))
                    .filter(payment::Column::Channel.eq(channel.as_str()))
            }
        };
        if !page_token.is_empty() {
            let before: i64 = page_token.parse().map_err(|_| {
                AppError::invalid("page_token", "is not a token this service returned")
            })?;
            query = query.filter(payment::Column::Id.lt(before));
        }
        let rows = query
            .order_by_desc(payment::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?;
        let more = rows.len() as u64 > page_size;
        let mut views = Vec::new();
        for row in rows.into_iter().take(page_size as usize) {
            views.push(self.view(row).await?);
        }
        let next = match (more, views.last()) {
            (true, Some(last)) => last.payment.id.to_string(),
            _ => String::new(),
        };
        Ok((views, next))
    }
}

async fn find_by_key(app: &App, key: &str) -> AppResult<Option<payment::Model>> {
    Ok(payment::Entity::find()
        .filter(payment::Column::IdempotencyKey.eq(key))
        .one(&app.db)
        .await?)
}

pub async fn find_payment(app: &App, out_trade_no: &str) -> AppResult<payment::Model> {
    payment::Entity::find()
        .filter(payment::Column::OutTradeNo.eq(out_trade_no))
        .one(&app.db)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("payment {out_trade_no:?} does not exist")))
}

async fn mark_closed(app: &App, id: i64) -> AppResult<()> {
    payment::Entity::update_many()
        .col_expr(payment::Column::Status, Expr::value(CLOSED))
        .filter(payment::Column::Id.eq(id))
        .filter(payment::Column::Status.eq(PENDING))
        .exec(&app.db)
        .await?;
    Ok(())
}

/// `WB` + Beijing time to the second + 10 random digits: 26 characters, within both
/// gateways' rules (Alipay ≤ 64, WeChat 6–32, letters and digits).
fn new_out_trade_no(now: DateTime<Utc>) -> String {
    let stamp = now.with_timezone(&beijing_offset()).format("%Y%m%d%H%M%S");
    let random: u64 = rand::thread_rng().gen_range(0..10_000_000_000);
    format!("WB{stamp}{random:010}")
}

fn beijing_offset() -> FixedOffset {
    BEIJING
}

/// Orders expire at the end of their Beijing day.
pub fn end_of_beijing_day(now: DateTime<Utc>) -> DateTime<Utc> {
    let day = beijing_date(now);
    let next = day.succ_opt().unwrap_or(day);
    BEIJING
        .from_local_datetime(&next.and_time(NaiveTime::MIN))
        .single()
        .map_or(now + Duration::days(1), |t| t.with_timezone(&Utc))
}

pub fn beijing_to_utc(local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    BEIJING
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
}
