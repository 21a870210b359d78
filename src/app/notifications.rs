//! Gateway notifications (webhooks): verify first, then record the raw notification and its
//! effect in one transaction, and only then acknowledge. A notification that fails
//! verification is recorded and refused; a verified payment for an order we do not know, or
//! for a different amount, goes to suspense and is never applied as if it matched.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::gateways::Channel;
use super::settlement::{CLOSED, PENDING, PaidEvidence, PaymentChannel, SettleOutcome, settle};
use super::{App, AppResult};
use crate::db::entity::{notification, payment};
use crate::domain::evidence::{EvidenceSource, NotificationOutcome};
use crate::gateway::alipay::notify::{
    AlipayNotification, TradeStatus, verify_notification as verify_alipay,
};
use crate::gateway::amount::yuan_to_fen;
use crate::gateway::wechat::notify::{
    NotificationResource, WechatNotification, verify_notification as verify_wechat,
};
use crate::gateway::wechat::resource::{RefundStatus, TradeState};
use crate::gateway::wechat::sign::SignedHeaders;

/// Headers worth keeping with a raw notification (nothing secret is among them).
const KEPT_HEADER_PREFIXES: [&str; 2] = ["wechatpay-", "content-type"];

/// What to answer the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyReply {
    /// Recorded and committed: acknowledge so the gateway stops resending.
    Ack(NotificationOutcome),
    /// Not accepted: answer with this HTTP status so the gateway resends (or gives up).
    Refuse(u16, String),
}

/// A notification whose signature checked out, ready to apply.
#[derive(Debug)]
pub enum Verified {
    /// `ours`: app_id and seller_id are this merchant's.
    Alipay {
        notice: AlipayNotification,
        ours: bool,
    },
    Wechat {
        notice: WechatNotification,
        mch_id: String,
        app_id: String,
    },
}

/// What a paid Alipay notification says; `None` when its amount is malformed.
fn alipay_evidence(notice: &AlipayNotification) -> Option<PaidEvidence> {
    let amount_fen = yuan_to_fen(&notice.total_amount).ok()?;
    Some(PaidEvidence {
        out_trade_no: notice.out_trade_no.clone(),
        gateway_trade_no: notice.trade_no.clone(),
        amount_fen,
        paid_at: notice
            .gmt_payment
            .and_then(super::payments::beijing_to_utc)
            .unwrap_or_else(Utc::now),
        source: EvidenceSource::Notify,
    })
}

fn wechat_evidence(tx: &crate::gateway::wechat::resource::WechatTransaction) -> PaidEvidence {
    PaidEvidence {
        out_trade_no: tx.out_trade_no.clone(),
        gateway_trade_no: tx.transaction_id.clone().unwrap_or_default(),
        amount_fen: tx.amount.total,
        paid_at: tx
            .success_time
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc)),
        source: EvidenceSource::Notify,
    }
}

impl Verified {
    /// The payment this notification reports as made to us, when that is all it does (no
    /// refund, our merchant, a final paid status, a well-formed amount): what the group
    /// committer can post set-wise. Anything else takes the one-by-one path.
    pub fn paid_evidence(&self) -> Option<(PaymentChannel, PaidEvidence)> {
        match self {
            Self::Alipay { notice, ours: true } if notice.refund.is_none() => notice
                .trade_status
                .is_paid()
                .then(|| alipay_evidence(notice))
                .flatten()
                .map(|evidence| (PaymentChannel::Alipay, evidence)),
            Self::Alipay { .. } => None,
            Self::Wechat {
                notice,
                mch_id,
                app_id,
            } => match &notice.resource {
                NotificationResource::Transaction(tx)
                    if &tx.mchid == mch_id
                        && &tx.appid == app_id
                        && tx.trade_state == TradeState::Success =>
                {
                    Some((PaymentChannel::Wechat, wechat_evidence(tx)))
                }
                _ => None,
            },
        }
    }

    /// Our merchant order number the notification is about.
    pub fn out_trade_no(&self) -> &str {
        match self {
            Self::Alipay { notice, .. } => &notice.out_trade_no,
            Self::Wechat { notice, .. } => match &notice.resource {
                NotificationResource::Transaction(tx) => &tx.out_trade_no,
                NotificationResource::Refund(refund) => &refund.out_trade_no,
            },
        }
    }
}

/// A received notification, owned (it travels to the committer task).
#[derive(Debug, Clone)]
pub struct OwnedRaw {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl From<&RawNotification<'_>> for OwnedRaw {
    fn from(raw: &RawNotification<'_>) -> Self {
        Self {
            headers: raw.headers.to_vec(),
            body: raw.body.to_vec(),
        }
    }
}

/// One received notification, as it arrived.
#[derive(Debug, Clone)]
pub struct RawNotification<'a> {
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl App {
    pub async fn alipay_notification(&self, raw: RawNotification<'_>) -> AppResult<NotifyReply> {
        let client = match &self.gateways.alipay {
            Channel::Enabled(client) => client,
            Channel::Disabled(why) => {
                return self
                    .refuse(
                        &raw,
                        "ALIPAY",
                        NotificationOutcome::ChannelDisabled,
                        why,
                        503,
                    )
                    .await;
            }
        };
        let notice = match verify_alipay(raw.body, &client.config().alipay_public_key) {
            Ok(notice) => notice,
            Err(err) => {
                return self
                    .refuse(
                        &raw,
                        "ALIPAY",
                        NotificationOutcome::Rejected,
                        &err.to_string(),
                        400,
                    )
                    .await;
            }
        };
        let config = client.config();
        let ours = notice.app_id == config.app_id && notice.seller_id == config.seller_id;
        let outcome = self
            .commit_notification(Verified::Alipay { notice, ours }, OwnedRaw::from(&raw))
            .await?;
        Ok(NotifyReply::Ack(outcome))
    }

    async fn apply_alipay(
        &self,
        txn: &impl ConnectionTrait,
        notice: &AlipayNotification,
    ) -> AppResult<NotificationOutcome> {
        if let Some(refund) = &notice.refund {
            let refund_no = refund.out_biz_no.as_deref().unwrap_or(&notice.out_trade_no);
            return self.confirm_refund(txn, refund_no, true).await;
        }
        if notice.trade_status.is_paid() {
            let Some(evidence) = alipay_evidence(notice) else {
                return Ok(NotificationOutcome::MalformedAmount);
            };
            return Ok(outcome_name(
                &settle(txn, PaymentChannel::Alipay, &evidence, &self.settings).await?,
            ));
        }
        if notice.trade_status == TradeStatus::TradeClosed {
            close_pending(txn, &notice.out_trade_no).await?;
            return Ok(NotificationOutcome::Closed);
        }
        Ok(NotificationOutcome::Ignored)
    }

    pub async fn wechat_notification(&self, raw: RawNotification<'_>) -> AppResult<NotifyReply> {
        let client = match &self.gateways.wechat {
            Channel::Enabled(client) => client,
            Channel::Disabled(why) => {
                return self
                    .refuse(
                        &raw,
                        "WECHAT",
                        NotificationOutcome::ChannelDisabled,
                        why,
                        503,
                    )
                    .await;
            }
        };
        let config = client.config();
        let verified =
            SignedHeaders::from_pairs(raw.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .and_then(|headers| {
                    verify_wechat(
                        &headers,
                        raw.body,
                        &config.keys,
                        &config.api_v3_key,
                        self.now(),
                    )
                });
        let notice = match verified {
            Ok(notice) => notice,
            Err(err) => {
                return self
                    .refuse(
                        &raw,
                        "WECHAT",
                        NotificationOutcome::Rejected,
                        &err.to_string(),
                        401,
                    )
                    .await;
            }
        };
        let verified = Verified::Wechat {
            notice,
            mch_id: config.mch_id.clone(),
            app_id: config.app_id.clone(),
        };
        let outcome = self
            .commit_notification(verified, OwnedRaw::from(&raw))
            .await?;
        Ok(NotifyReply::Ack(outcome))
    }

    /// Records a notification that is not accepted, and says how to answer the gateway.
    async fn refuse(
        &self,
        raw: &RawNotification<'_>,
        channel: &str,
        outcome: NotificationOutcome,
        why: &str,
        status: u16,
    ) -> AppResult<NotifyReply> {
        record(&self.db, channel, raw, false, outcome, Some(why), None).await?;
        Ok(NotifyReply::Refuse(status, why.to_owned()))
    }

    /// Applies a verified notification and records it raw, in the caller's transaction.
    pub(crate) async fn apply_verified(
        &self,
        txn: &impl ConnectionTrait,
        verified: &Verified,
        raw: &OwnedRaw,
    ) -> AppResult<NotificationOutcome> {
        let raw = RawNotification {
            headers: &raw.headers,
            body: &raw.body,
        };
        let (channel, outcome, out_trade_no) = match verified {
            Verified::Alipay { notice, ours } => {
                let outcome = if *ours {
                    self.apply_alipay(txn, notice).await?
                } else {
                    NotificationOutcome::NotOurs
                };
                ("ALIPAY", outcome, Some(notice.out_trade_no.clone()))
            }
            Verified::Wechat {
                notice,
                mch_id,
                app_id,
            } => {
                let (outcome, number) = self.apply_wechat(txn, notice, mch_id, app_id).await?;
                ("WECHAT", outcome, number)
            }
        };
        record(
            txn,
            channel,
            &raw,
            true,
            outcome,
            None,
            out_trade_no.as_deref(),
        )
        .await?;
        Ok(outcome)
    }

    /// Commits a verified notification: through the group committer when one runs (several
    /// notifications per transaction), else in a transaction of its own. Either way the
    /// answer comes only after the commit.
    async fn commit_notification(
        &self,
        verified: Verified,
        raw: OwnedRaw,
    ) -> AppResult<NotificationOutcome> {
        if let Some(committer) = &self.committer {
            return committer.submit(verified, raw).await;
        }
        let txn = crate::db::begin_write(&self.db).await?;
        let outcome = self.apply_verified(&txn, &verified, &raw).await?;
        txn.commit().await?;
        Ok(outcome)
    }

    async fn apply_wechat(
        &self,
        txn: &impl ConnectionTrait,
        notice: &WechatNotification,
        mch_id: &str,
        app_id: &str,
    ) -> AppResult<(NotificationOutcome, Option<String>)> {
        match &notice.resource {
            NotificationResource::Transaction(tx) => {
                let number = Some(tx.out_trade_no.clone());
                if tx.mchid != mch_id || tx.appid != app_id {
                    return Ok((NotificationOutcome::NotOurs, number));
                }
                if tx.trade_state != TradeState::Success {
                    return Ok((NotificationOutcome::Ignored, number));
                }
                let evidence = wechat_evidence(tx);
                let outcome =
                    settle(txn, PaymentChannel::Wechat, &evidence, &self.settings).await?;
                Ok((outcome_name(&outcome), number))
            }
            NotificationResource::Refund(refund) => {
                let number = Some(refund.out_trade_no.clone());
                if refund.mchid != mch_id {
                    return Ok((NotificationOutcome::NotOurs, number));
                }
                // CLOSED and ABNORMAL are final for WeChat but need a person here: the
                // refund stays PENDING (the transition function says so) and is raised.
                let success = refund.refund_status == RefundStatus::Success;
                let outcome = self
                    .confirm_refund(txn, &refund.out_refund_no, success)
                    .await?;
                Ok((outcome, number))
            }
        }
    }
}

fn outcome_name(outcome: &SettleOutcome) -> NotificationOutcome {
    match outcome {
        SettleOutcome::Posted => NotificationOutcome::Posted,
        SettleOutcome::AlreadyPosted => NotificationOutcome::Duplicate,
        SettleOutcome::UnknownOrder => NotificationOutcome::SuspenseUnknownOrder,
        SettleOutcome::AmountMismatch { .. } => NotificationOutcome::SuspenseAmountMismatch,
        SettleOutcome::PaidAfterReversal { .. } => NotificationOutcome::SuspenseReversedOrder,
    }
}

async fn close_pending(txn: &impl ConnectionTrait, out_trade_no: &str) -> AppResult<()> {
    payment::Entity::update_many()
        .col_expr(payment::Column::Status, Expr::value(CLOSED))
        .filter(payment::Column::OutTradeNo.eq(out_trade_no))
        .filter(payment::Column::Status.eq(PENDING))
        .exec(txn)
        .await?;
    Ok(())
}

/// Stores a notification exactly as received, with how it was judged (in the caller's
/// transaction when it has one).
pub async fn record(
    db: &impl ConnectionTrait,
    channel: &str,
    raw: &RawNotification<'_>,
    verified: bool,
    outcome: NotificationOutcome,
    detail: Option<&str>,
    out_trade_no: Option<&str>,
) -> AppResult<()> {
    let row = raw_row(channel, raw, verified, outcome, detail, out_trade_no);
    notification::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The `notifications` row of a notification and its outcome.
pub(crate) fn raw_row(
    channel: &str,
    raw: &RawNotification<'_>,
    verified: bool,
    outcome: NotificationOutcome,
    detail: Option<&str>,
    out_trade_no: Option<&str>,
) -> notification::ActiveModel {
    let headers: String = raw
        .headers
        .iter()
        .filter(|(name, _)| {
            KEPT_HEADER_PREFIXES
                .iter()
                .any(|p| name.to_ascii_lowercase().starts_with(p))
        })
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect();
    let body = match std::str::from_utf8(raw.body) {
        Ok(text) => text.to_owned(),
        Err(_) => format!("base64:{}", base64_encode(raw.body)),
    };
    notification::ActiveModel {
        channel: Set(channel.to_owned()),
        received_at: Set(Utc::now()),
        headers: Set(headers),
        body: Set(body),
        verified: Set(verified),
        outcome: Set(outcome.as_str().to_owned()),
        detail: Set(detail.map(|d| d.chars().take(500).collect())),
        out_trade_no: Set(out_trade_no.map(|n| n.chars().take(64).collect())),
        ..Default::default()
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
