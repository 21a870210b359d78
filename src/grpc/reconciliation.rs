//! `ReconciliationService`: runs, discrepancies, resolutions and cashier closes.

use tonic::{Request, Response, Status};

use super::enums::{self, optional, required};
use super::pb::{self, reconciliation_service_server::ReconciliationService};
use crate::app::reconciliation::{CashierClose, RunView, statement};
use crate::app::{App, AppResult};
use crate::db::entity::discrepancy;
use crate::domain::money::Money;
use crate::gateway::beijing::BEIJING;

pub struct Reconciliation(pub App);

fn yuan(fen: i64) -> String {
    Money::from_fen(fen).to_string()
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn run(view: RunView) -> AppResult<pb::ReconciliationRun> {
    let RunView {
        run: r,
        open_count,
        resolved_count,
    } = view;
    Ok(pb::ReconciliationRun {
        run_id: r.id,
        channel: enums::channel_stored(&r.channel)?,
        business_date: r.business_date.to_string(),
        status: enums::run_status(open_count).into(),
        statement_sha256: r.statement_sha256,
        version: r.version,
        ledger_count: count(r.ledger_count),
        gateway_count: count(r.gateway_count),
        matched_count: count(r.matched_count),
        matched_amount: yuan(r.matched_fen),
        gateway_only_count: count(r.gateway_only_count),
        gateway_only_amount: yuan(r.gateway_only_fen),
        ledger_only_count: count(r.ledger_only_count),
        ledger_only_amount: yuan(r.ledger_only_fen),
        amount_mismatch_count: count(r.amount_mismatch_count),
        amount_mismatch_amount: yuan(r.amount_mismatch_fen),
        status_mismatch_count: count(r.status_mismatch_count),
        status_mismatch_amount: yuan(r.status_mismatch_fen),
        duplicate_count: count(r.duplicate_count),
        duplicate_amount: yuan(r.duplicate_fen),
        ledger_total: yuan(r.ledger_total_fen),
        gateway_total: yuan(r.gateway_total_fen),
        gateway_refunds: yuan(r.gateway_refunds_fen),
        fee_total: r.fee_total,
        net_settlement: r.net_settlement,
        open_count,
        resolved_count,
    })
}

pub fn discrepancy(d: discrepancy::Model) -> AppResult<pb::Discrepancy> {
    Ok(pb::Discrepancy {
        discrepancy_id: d.id,
        // 0: an item outside any run.
        run_id: d.run_id.unwrap_or(0),
        class: enums::discrepancy_class_stored(&d.class)?,
        state: enums::discrepancy_state_stored(&d.state)?,
        movement: enums::movement_stored(&d.movement)?,
        out_trade_no: d.out_trade_no,
        gateway_trade_no: d.gateway_trade_no.unwrap_or_default(),
        refund_no: d.refund_no.unwrap_or_default(),
        account_no: d.account_no.unwrap_or_default(),
        ledger_amount: d.ledger_fen.map(yuan).unwrap_or_default(),
        gateway_amount: d.gateway_fen.map(yuan).unwrap_or_default(),
        difference: yuan(d.difference_fen),
        action: enums::action_stored(d.action.as_deref())?,
        operator: d.operator.unwrap_or_default(),
        note: d.note.unwrap_or_default(),
        resolved_at: d
            .resolved_at
            .map(|t| t.with_timezone(&BEIJING).to_rfc3339())
            .unwrap_or_default(),
    })
}

fn close(view: CashierClose) -> AppResult<pb::CashierClose> {
    let outcome = i32::from(enums::close_outcome(view.outcome()));
    let c = view.close;
    Ok(pb::CashierClose {
        cashier_id: c.cashier_id,
        business_date: c.business_date.to_string(),
        expected: yuan(c.expected_fen),
        counted: yuan(c.counted_fen),
        difference: yuan(c.difference_fen),
        outcome,
        payments: yuan(c.payments_fen),
        refunds: yuan(c.refunds_fen),
    })
}

#[tonic::async_trait]
impl ReconciliationService for Reconciliation {
    async fn run_reconciliation(
        &self,
        request: Request<pb::RunReconciliationRequest>,
    ) -> Result<Response<pb::ReconciliationRun>, Status> {
        let pb::RunReconciliationRequest {
            channel,
            business_date,
            file,
        } = request.into_inner();
        let channel = required("channel", channel, enums::channel_from_proto)?;
        let file = if file.is_empty() {
            None
        } else {
            Some(statement::api_file(
                self.0.payments.statement_dir.as_deref(),
                &file,
            )?)
        };
        let view = self
            .0
            .run_reconciliation(channel.as_str(), &business_date, file.as_deref())
            .await?;
        Ok(Response::new(run(view)?))
    }

    async fn get_reconciliation_run(
        &self,
        request: Request<pb::GetReconciliationRunRequest>,
    ) -> Result<Response<pb::ReconciliationRun>, Status> {
        let pb::GetReconciliationRunRequest { run_id } = request.into_inner();
        Ok(Response::new(run(self
            .0
            .get_reconciliation_run(run_id)
            .await?)?))
    }

    async fn list_discrepancies(
        &self,
        request: Request<pb::ListDiscrepanciesRequest>,
    ) -> Result<Response<pb::ListDiscrepanciesResponse>, Status> {
        let pb::ListDiscrepanciesRequest {
            run_id,
            class,
            state,
        } = request.into_inner();
        // UNSPECIFIED is the empty text: no filter on that column.
        let class = optional("class", class, enums::discrepancy_class_from_proto)?;
        let state = optional("state", state, enums::discrepancy_state_from_proto)?;
        let items = self
            .0
            .list_discrepancies(run_id, class.unwrap_or_default(), state.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::ListDiscrepanciesResponse {
            discrepancies: items
                .into_iter()
                .map(discrepancy)
                .collect::<Result<_, _>>()?,
        }))
    }

    async fn resolve_discrepancy(
        &self,
        request: Request<pb::ResolveDiscrepancyRequest>,
    ) -> Result<Response<pb::Discrepancy>, Status> {
        let pb::ResolveDiscrepancyRequest {
            discrepancy_id,
            action,
            note,
            operator,
        } = request.into_inner();
        let action = required("action", action, enums::action_from_proto)?;
        let item = self
            .0
            .resolve_discrepancy(discrepancy_id, action.as_str(), &note, &operator)
            .await?;
        Ok(Response::new(discrepancy(item)?))
    }

    async fn close_cashier_day(
        &self,
        request: Request<pb::CloseCashierDayRequest>,
    ) -> Result<Response<pb::CashierClose>, Status> {
        let pb::CloseCashierDayRequest {
            cashier_id,
            business_date,
            counted_cash,
        } = request.into_inner();
        let view = self
            .0
            .close_cashier_day(&cashier_id, &business_date, &counted_cash)
            .await?;
        Ok(Response::new(close(view)?))
    }
}
