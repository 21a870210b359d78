//! The WeChat simulator's notifications (protocol notes B4): a JSON envelope whose resource
//! is AES-256-GCM encrypted with the APIv3 key (random 12-character nonce, associated data
//! `transaction` or `refund`), sent with signed `Wechatpay-*` headers.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::Inner;
use crate::gateway::beijing::BEIJING;
use crate::gateway::wechat::notify::RESOURCE_ALGORITHM;
use crate::gateway::wechat::sign::{SIGNATURE_SCHEME, verification_message};
use crate::sandbox::delivery::{Ack, Notification};
use crate::sandbox::ledger::SimTrade;
use crate::sandbox::server::{random_alnum, real_now};

const RESOURCE_NONCE_LEN: usize = 12;

impl Inner {
    pub(super) fn transaction_notification(&self, trade: &SimTrade) -> Option<Notification> {
        let url = trade.notify_url.clone()?;
        let faults = self.deliverer.take_build_faults();
        let mut resource = self.transaction_json(trade);
        if faults.wrong_amount {
            let wrong = trade.amount_fen + 1;
            resource["amount"]["total"] = json!(wrong);
            resource["amount"]["payer_total"] = json!(wrong);
        }
        let event = Event {
            event_type: "TRANSACTION.SUCCESS",
            summary: "支付成功",
            original_type: "transaction",
        };
        self.notification(
            url,
            &event,
            &resource,
            faults.bad_signature,
            &trade.out_trade_no,
        )
    }

    pub(super) fn refund_notification(
        &self,
        trade: &SimTrade,
        out_refund_no: &str,
        url: Option<String>,
    ) -> Option<Notification> {
        let url = url?;
        let refund = trade.refund(out_refund_no)?;
        let faults = self.deliverer.take_build_faults();
        let refund_fen = refund.amount_fen + i64::from(faults.wrong_amount);
        let resource = json!({
            "mchid": self.config.mch_id,
            "out_trade_no": trade.out_trade_no,
            "transaction_id": trade.gateway_trade_no,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": "SUCCESS",
            "success_time": refund.completed_at.with_timezone(&BEIJING).to_rfc3339_opts(SecondsFormat::Secs, false),
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": trade.amount_fen, "refund": refund_fen,
                "payer_total": trade.amount_fen, "payer_refund": refund_fen,
            },
        });
        let event = Event {
            event_type: "REFUND.SUCCESS",
            summary: "退款成功",
            original_type: "refund",
        };
        let label = format!("{} {}", trade.out_trade_no, out_refund_no);
        self.notification(url, &event, &resource, faults.bad_signature, &label)
    }

    /// Encrypts `resource`, builds the envelope and signs it.
    fn notification(
        &self,
        url: String,
        event: &Event,
        resource: &Value,
        bad_signature: bool,
        label: &str,
    ) -> Option<Notification> {
        let nonce = random_alnum(RESOURCE_NONCE_LEN);
        let nonce_bytes: [u8; RESOURCE_NONCE_LEN] = nonce.as_bytes().try_into().ok()?;
        let cipher = Aes256Gcm::new(&(*self.config.api_v3_key.as_bytes()).into());
        let plaintext = resource.to_string();
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: event.original_type.as_bytes(),
                },
            )
            .ok()?;
        let now = self.clock.now();
        let envelope = json!({
            "id": format!("EV-{}", random_alnum(24)),
            "create_time": now.with_timezone(&BEIJING).to_rfc3339_opts(SecondsFormat::Secs, false),
            "resource_type": "encrypt-resource",
            "event_type": event.event_type,
            "summary": event.summary,
            "resource": {
                "original_type": event.original_type,
                "algorithm": RESOURCE_ALGORITHM,
                "ciphertext": BASE64.encode(sealed),
                "associated_data": event.original_type,
                "nonce": nonce,
            },
        });
        let body = envelope.to_string();
        let (timestamp, header_nonce) = (real_now().timestamp().to_string(), random_alnum(32));
        let mut message = verification_message(&timestamp, &header_nonce, body.as_bytes());
        if bad_signature {
            message.extend_from_slice(b"tampered");
        }
        let signature = self.keys.private.sign_base64(&message).ok()?;
        Some(Notification {
            url,
            body: body.into_bytes(),
            content_type: "application/json",
            headers: vec![
                ("Wechatpay-Timestamp".to_owned(), timestamp),
                ("Wechatpay-Nonce".to_owned(), header_nonce),
                ("Wechatpay-Signature".to_owned(), signature),
                (
                    "Wechatpay-Serial".to_owned(),
                    self.config.public_key_id.clone(),
                ),
                (
                    "Wechatpay-Signature-Type".to_owned(),
                    SIGNATURE_SCHEME.to_owned(),
                ),
            ],
            ack: Ack::WechatStatus,
            label: format!("{} {label}", event.event_type),
        })
    }
}

struct Event {
    event_type: &'static str,
    summary: &'static str,
    original_type: &'static str,
}
