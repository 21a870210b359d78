//! `PaymentService`: QR orders, counter payments, refunds.

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use super::enums::{self, optional, required};
use super::pb::{self, payment_service_server::PaymentService};
use crate::app::App;
use crate::app::payments::{NewPayment, PaymentFilter, PaymentView};
use crate::app::refunds::RefundView;
use crate::app::{AppError, AppResult};
use crate::domain::money::Money;
use crate::gateway::beijing::BEIJING;

pub struct Payments(pub App);

fn instant(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.with_timezone(&BEIJING).to_rfc3339())
        .unwrap_or_default()
}

fn payment(view: PaymentView) -> AppResult<pb::Payment> {
    let PaymentView {
        payment: p,
        account_no,
    } = view;
    Ok(pb::Payment {
        out_trade_no: p.out_trade_no,
        channel: enums::channel_stored(&p.channel)?,
        amount: Money::from_fen(p.amount_fen).to_string(),
        status: enums::payment_status_stored(&p.status)?,
        qr_code: p.qr_code.unwrap_or_default(),
        expires_at: instant(p.expires_at),
        account_no,
        gateway_trade_no: p.gateway_trade_no.unwrap_or_default(),
        paid_at: instant(p.paid_at),
        business_date: p.business_date.map(|d| d.to_string()).unwrap_or_default(),
        refunded_amount: Money::from_fen(p.refunded_fen).to_string(),
        receipt_no: p.receipt_no.unwrap_or_default(),
        cashier_id: p.cashier_id.unwrap_or_default(),
    })
}

fn refund(view: RefundView) -> AppResult<pb::Refund> {
    let RefundView {
        refund: r,
        out_trade_no,
    } = view;
    Ok(pb::Refund {
        refund_no: r.refund_no,
        out_trade_no,
        amount: Money::from_fen(r.amount_fen).to_string(),
        status: enums::refund_status_stored(&r.status)?,
        reason: r.reason,
        created_at: instant(Some(r.created_at)),
        cashier_id: r.cashier_id.unwrap_or_default(),
        completed_at: instant(r.completed_at),
        gateway_refund_id: r.gateway_refund_id.unwrap_or_default(),
    })
}

#[tonic::async_trait]
impl PaymentService for Payments {
    async fn create_payment(
        &self,
        request: Request<pb::CreatePaymentRequest>,
    ) -> Result<Response<pb::Payment>, Status> {
        let pb::CreatePaymentRequest {
            account_no,
            channel,
            amount,
            idempotency_key,
        } = request.into_inner();
        let channel = required("channel", channel, enums::channel_from_proto)?;
        let view = self
            .0
            .create_payment(NewPayment {
                account_no,
                channel: channel.as_str().to_owned(),
                amount,
                idempotency_key,
            })
            .await?;
        Ok(Response::new(payment(view)?))
    }

    async fn get_payment(
        &self,
        request: Request<pb::GetPaymentRequest>,
    ) -> Result<Response<pb::Payment>, Status> {
        let pb::GetPaymentRequest { out_trade_no } = request.into_inner();
        Ok(Response::new(payment(
            self.0.get_payment(&out_trade_no).await?,
        )?))
    }

    async fn refund_payment(
        &self,
        request: Request<pb::RefundPaymentRequest>,
    ) -> Result<Response<pb::Refund>, Status> {
        let pb::RefundPaymentRequest {
            out_trade_no,
            amount,
            reason,
            refund_no,
        } = request.into_inner();
        let view = self
            .0
            .refund_payment(&out_trade_no, &amount, &reason, &refund_no)
            .await?;
        Ok(Response::new(refund(view)?))
    }

    async fn refund_counter_payment(
        &self,
        request: Request<pb::RefundCounterPaymentRequest>,
    ) -> Result<Response<pb::Refund>, Status> {
        let pb::RefundCounterPaymentRequest {
            out_trade_no,
            amount,
            reason,
            refund_no,
            cashier_id,
        } = request.into_inner();
        let view = self
            .0
            .refund_counter_payment(&out_trade_no, &amount, &reason, &refund_no, &cashier_id)
            .await?;
        Ok(Response::new(refund(view)?))
    }

    async fn get_refund(
        &self,
        request: Request<pb::GetRefundRequest>,
    ) -> Result<Response<pb::Refund>, Status> {
        let pb::GetRefundRequest { refund_no } = request.into_inner();
        Ok(Response::new(refund(self.0.get_refund(&refund_no).await?)?))
    }

    async fn list_refunds(
        &self,
        request: Request<pb::ListRefundsRequest>,
    ) -> Result<Response<pb::ListRefundsResponse>, Status> {
        let pb::ListRefundsRequest { out_trade_no } = request.into_inner();
        let refunds = self.0.list_refunds(&out_trade_no).await?;
        Ok(Response::new(pb::ListRefundsResponse {
            refunds: refunds.into_iter().map(refund).collect::<Result<_, _>>()?,
        }))
    }

    async fn record_counter_payment(
        &self,
        request: Request<pb::RecordCounterPaymentRequest>,
    ) -> Result<Response<pb::Payment>, Status> {
        let pb::RecordCounterPaymentRequest {
            account_no,
            amount,
            cashier_id,
            receipt_no,
        } = request.into_inner();
        let view = self
            .0
            .record_counter_payment(&account_no, &amount, &cashier_id, &receipt_no)
            .await?;
        Ok(Response::new(payment(view)?))
    }

    async fn list_payments(
        &self,
        request: Request<pb::ListPaymentsRequest>,
    ) -> Result<Response<pb::ListPaymentsResponse>, Status> {
        let pb::ListPaymentsRequest {
            account_no,
            business_date,
            channel,
            page_size,
            page_token,
        } = request.into_inner();
        let channel = optional("channel", channel, enums::channel_from_proto)?;
        let filter = match (account_no.is_empty(), business_date.is_empty()) {
            (false, true) => PaymentFilter::Account(account_no),
            (true, false) => PaymentFilter::Day {
                business_date,
                channel: channel
                    .ok_or_else(|| AppError::invalid("channel", "is required with business_date"))?
                    .as_str()
                    .to_owned(),
            },
            _ => {
                return Err(Status::invalid_argument(
                    "give either account_no, or business_date and channel",
                ));
            }
        };
        let (views, next_page_token) = self.0.list_payments(filter, page_size, &page_token).await?;
        Ok(Response::new(pb::ListPaymentsResponse {
            payments: views.into_iter().map(payment).collect::<Result<_, _>>()?,
            next_page_token,
        }))
    }
}
