//! The run's totals, summed from the inputs and the classified items.

use rust_decimal::Decimal;

use super::{
    Class, ClassTotal, Discrepancy, Matched, Movement, ReconcileInput, ReconcileTotals, State,
    signed,
};

pub(super) fn totals(
    input: &ReconcileInput<'_>,
    matched: &[Matched],
    items: &[Discrepancy],
) -> ReconcileTotals {
    let mut totals = ReconcileTotals {
        ledger_count: input.payments.len() + input.refunds.len(),
        ledger_fen: input.payments.iter().map(|p| p.amount_fen).sum::<i64>()
            - input.refunds.iter().map(|r| r.amount_fen).sum::<i64>(),
        gateway_count: input.statement.len(),
        matched_count: matched.len(),
        matched_fen: matched
            .iter()
            .map(|m| signed(m.movement, m.amount_fen))
            .sum(),
        ..ReconcileTotals::default()
    };
    for row in input.statement {
        match row.movement {
            Movement::Payment => totals.gateway_payments_fen += row.amount_fen,
            Movement::Refund => totals.gateway_refunds_fen += row.amount_fen,
        }
        totals.fee_total += row.fee;
    }
    totals.gateway_fen = totals.gateway_payments_fen - totals.gateway_refunds_fen;
    totals.net_settlement = Decimal::new(totals.gateway_fen, 2) - totals.fee_total;
    for discrepancy in items {
        let class = match discrepancy.class {
            Class::Matched => continue,
            Class::GatewayOnly => &mut totals.gateway_only,
            Class::LedgerOnly => &mut totals.ledger_only,
            Class::AmountMismatch => &mut totals.amount_mismatch,
            Class::StatusMismatch => &mut totals.status_mismatch,
            Class::Duplicate => &mut totals.duplicate,
        };
        add(class, discrepancy);
        match discrepancy.state {
            State::Open => totals.open_count += 1,
            State::Held => totals.held_count += 1,
            State::AutoResolved => totals.auto_resolved_count += 1,
        }
    }
    totals
}

fn add(total: &mut ClassTotal, discrepancy: &Discrepancy) {
    let movement = discrepancy.movement;
    total.count += 1;
    total.ledger_fen += signed(movement, discrepancy.ledger_fen.unwrap_or(0));
    total.gateway_fen += signed(movement, discrepancy.gateway_fen.unwrap_or(0));
    total.difference_fen += discrepancy.difference_fen;
}
