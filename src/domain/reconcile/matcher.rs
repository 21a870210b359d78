//! The matching pass: hash joins over both sides, then the class and state of every leftover,
//! then duplicate detection among the matched payments, then the totals.

use std::collections::HashMap;

/// Hash maps keyed by order and refund numbers: foldhash instead of SipHash (hashing 2–3 M
/// string keys dominated matching). Seeded per process; the keys come from our own ledger and
/// a statement the gateway signed, so flooding is not a concern.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

fn map_with_capacity<K, V>(capacity: usize) -> FastMap<K, V> {
    FastMap::with_capacity_and_hasher(capacity, Default::default())
}

use chrono::{NaiveDateTime, TimeDelta};

use super::join::{self, Lookup, Split};
use super::totals::totals;
use super::{
    Class, CrossDay, Discrepancy, GatewayRow, LedgerPayment, LedgerRef, LedgerRefund, MatchOptions,
    Matched, Movement, PaymentStatus, ReconcileInput, ReconcileResult, State, signed,
};

/// Matches one channel's ledger against its statement for `options.business_date`.
pub fn reconcile(input: &ReconcileInput<'_>, options: &MatchOptions) -> ReconcileResult {
    let items = input.payments.len() + input.statement.len();
    let split = Split::new(options.threads, items);
    let mut lookups = join::by_order_no(&split, input.payments, input.statement).into_iter();
    let mut matcher = Matcher::new(input, options, split);
    // Rows in statement order, so that `matched` is in that order too.
    for (index, row) in input.statement.iter().enumerate() {
        match row.movement {
            Movement::Payment => {
                // The join returned exactly one lookup per payment row, in this order.
                let lookup = lookups.next().unwrap_or(Lookup::Unknown);
                matcher.payment_row(index, row, lookup);
            }
            Movement::Refund => matcher.refund_row(index, row),
        }
    }
    matcher.rows_by_gateway_no();
    matcher.unclaimed_payments();
    matcher.unclaimed_refunds();
    matcher.duplicates();
    matcher.finish()
}

/// The ledger side of an item, from a payment or a refund.
struct LedgerSide<'a> {
    reference: LedgerRef,
    out_trade_no: &'a str,
    gateway_trade_no: Option<&'a str>,
    refund_no: Option<&'a str>,
    account_no: &'a str,
    amount_fen: i64,
    at: NaiveDateTime,
}

impl<'a> LedgerSide<'a> {
    fn payment(index: usize, payment: &'a LedgerPayment) -> LedgerSide<'a> {
        LedgerSide {
            reference: LedgerRef::Payment(index),
            out_trade_no: &payment.out_trade_no,
            gateway_trade_no: payment.gateway_trade_no.as_deref(),
            refund_no: None,
            account_no: &payment.account_no,
            amount_fen: payment.amount_fen,
            at: payment.paid_at,
        }
    }

    fn refund(index: usize, refund: &'a LedgerRefund) -> LedgerSide<'a> {
        LedgerSide {
            reference: LedgerRef::Refund(index),
            out_trade_no: &refund.out_trade_no,
            gateway_trade_no: None,
            refund_no: Some(&refund.refund_no),
            account_no: &refund.account_no,
            amount_fen: refund.amount_fen,
            at: refund.refunded_at,
        }
    }
}

/// One discrepancy from whichever sides exist.
fn item(
    class: Class,
    movement: Movement,
    ledger: Option<&LedgerSide<'_>>,
    gateway: Option<(usize, &GatewayRow<'_>)>,
) -> Discrepancy {
    let ledger_fen = ledger.map(|side| side.amount_fen);
    let gateway_fen = gateway.map(|(_, row)| row.amount_fen);
    let difference_fen =
        signed(movement, gateway_fen.unwrap_or(0)) - signed(movement, ledger_fen.unwrap_or(0));
    let out_trade_no = match (ledger, gateway) {
        (Some(side), _) => side.out_trade_no.to_owned(),
        (None, Some((_, row))) => row.out_trade_no.to_string(),
        (None, None) => String::new(),
    };
    let refund_no = gateway
        .and_then(|(_, row)| row.refund_no.as_deref().map(str::to_owned))
        .or_else(|| ledger.and_then(|side| side.refund_no.map(str::to_owned)));
    Discrepancy {
        class,
        state: State::Open,
        movement,
        out_trade_no,
        gateway_trade_no: gateway
            .map(|(_, row)| row.gateway_trade_no.to_string())
            .or_else(|| ledger.and_then(|side| side.gateway_trade_no.map(str::to_owned))),
        refund_no,
        account_no: ledger.map(|side| side.account_no.to_owned()),
        ledger_fen,
        gateway_fen,
        difference_fen,
        ledger_time: ledger.map(|side| side.at),
        gateway_time: gateway.map(|(_, row)| row.trade_time),
        ledger: ledger.map(|side| side.reference),
        row: gateway.map(|(index, _)| index),
        statement_line: gateway.map(|(_, row)| row.line_no),
        duplicate_of: None,
        cross_day: None,
    }
}

struct Matcher<'a> {
    input: &'a ReconcileInput<'a>,
    options: &'a MatchOptions,
    split: Split,
    /// Payment rows whose order number is not in the ledger, for the second pass.
    by_gateway_no: Vec<usize>,
    payment_claimed: Vec<bool>,
    refunds_by_no: FastMap<&'a str, usize>,
    refunds_by_order: FastMap<&'a str, Vec<usize>>,
    refund_claimed: Vec<bool>,
    neighbour_payments: FastMap<&'a str, &'a LedgerPayment>,
    matched: Vec<Matched>,
    discrepancies: Vec<Discrepancy>,
}

impl<'a> Matcher<'a> {
    fn new(input: &'a ReconcileInput<'a>, options: &'a MatchOptions, split: Split) -> Matcher<'a> {
        let payments = input.payments;
        let mut refunds_by_no = map_with_capacity(input.refunds.len());
        let mut refunds_by_order: FastMap<&str, Vec<usize>> =
            map_with_capacity(input.refunds.len());
        for (index, refund) in input.refunds.iter().enumerate() {
            refunds_by_no
                .entry(refund.refund_no.as_str())
                .or_insert(index);
            refunds_by_order
                .entry(refund.out_trade_no.as_str())
                .or_default()
                .push(index);
        }
        let neighbour_payments = input
            .neighbours
            .payments
            .iter()
            .map(|payment| (payment.out_trade_no.as_str(), payment))
            .collect();
        Matcher {
            input,
            neighbour_payments,
            options,
            split,
            by_gateway_no: Vec::new(),
            payment_claimed: vec![false; payments.len()],
            refunds_by_no,
            refunds_by_order,
            refund_claimed: vec![false; input.refunds.len()],
            matched: Vec::with_capacity(input.statement.len()),
            discrepancies: Vec::new(),
        }
    }

    fn pair(&mut self, ledger: &LedgerSide<'_>, index: usize, row: &GatewayRow<'_>) {
        if ledger.amount_fen == row.amount_fen {
            self.matched.push(Matched {
                ledger: ledger.reference,
                row: index,
                movement: row.movement,
                amount_fen: row.amount_fen,
            });
        } else {
            let mismatch = item(
                Class::AmountMismatch,
                row.movement,
                Some(ledger),
                Some((index, row)),
            );
            self.discrepancies.push(mismatch);
        }
    }

    /// First pass, from the order-number join: the first row of a known order claims its
    /// payment (an order number repeated in the ledger matches its first payment; the repeat
    /// stays LEDGER_ONLY where finance sees it); the other rows wait for
    /// [`Self::rows_by_gateway_no`].
    fn payment_row(&mut self, index: usize, row: &'a GatewayRow<'a>, lookup: Lookup) {
        match lookup {
            Lookup::First {
                payment: at,
                same_amount,
            } => {
                if let Some(claimed) = self.payment_claimed.get_mut(at) {
                    *claimed = true;
                }
                if same_amount {
                    self.matched.push(Matched {
                        ledger: LedgerRef::Payment(at),
                        row: index,
                        movement: Movement::Payment,
                        amount_fen: row.amount_fen,
                    });
                } else if let Some(payment) = self.input.payments.get(at) {
                    self.pair(&LedgerSide::payment(at, payment), index, row);
                }
            }
            Lookup::Repeat { payment } => self.settle_payment_row(index, row, Some(payment)),
            Lookup::Unknown => self.by_gateway_no.push(index),
        }
    }

    /// Second pass, for rows whose order number is not ours: look for an unclaimed payment
    /// with the gateway's trade number. Indexing only the unclaimed payments keeps the
    /// common day (every row found by order number) to one hash map.
    fn rows_by_gateway_no(&mut self) {
        if self.by_gateway_no.is_empty() {
            return;
        }
        let payments = self.input.payments;
        let mut by_number: FastMap<&'a str, usize> = map_with_capacity(self.by_gateway_no.len());
        for (at, payment) in payments.iter().enumerate() {
            if self.payment_claimed.get(at) == Some(&false)
                && let Some(number) = payment.gateway_trade_no.as_deref()
            {
                by_number.entry(number).or_insert(at);
            }
        }
        let statement = self.input.statement;
        let matched_before = self.matched.len();
        for index in std::mem::take(&mut self.by_gateway_no) {
            if let Some(row) = statement.get(index) {
                let found = by_number.get(&*row.gateway_trade_no).copied();
                self.settle_payment_row(index, row, found);
            }
        }
        // Matches stay in statement row order.
        if self.matched.len() > matched_before {
            self.matched.sort_by_key(|entry| entry.row);
        }
    }

    fn settle_payment_row(&mut self, index: usize, row: &'a GatewayRow<'a>, found: Option<usize>) {
        let unclaimed = found.filter(|&at| self.payment_claimed.get(at) == Some(&false));
        let payments = self.input.payments;
        match unclaimed.and_then(|at| payments.get(at).map(|p| (at, p))) {
            Some((at, payment)) => {
                if let Some(claimed) = self.payment_claimed.get_mut(at) {
                    *claimed = true;
                }
                self.pair(&LedgerSide::payment(at, payment), index, row);
            }
            // Unknown order, or a second row for an order already matched.
            None => {
                let mut only = item(
                    Class::GatewayOnly,
                    Movement::Payment,
                    None,
                    Some((index, row)),
                );
                let neighbour = self
                    .neighbour_payments
                    .get(&*row.out_trade_no)
                    .filter(|payment| payment.amount_fen == row.amount_fen);
                if let (Some(payment), None) = (neighbour, found) {
                    only.state = State::AutoResolved;
                    only.cross_day = Some(CrossDay::LedgerPaidAt(payment.paid_at));
                }
                self.discrepancies.push(only);
            }
        }
    }

    fn refund_row(&mut self, index: usize, row: &'a GatewayRow<'a>) {
        let claimed = &self.refund_claimed;
        let free = |at: &usize| claimed.get(*at) == Some(&false);
        let found = match row.refund_no.as_deref() {
            Some(number) => self.refunds_by_no.get(number).copied().filter(free),
            // Without our refund number, take a free refund of the order, same amount first.
            None => self
                .refunds_by_order
                .get(&*row.out_trade_no)
                .and_then(|list| {
                    let same_amount = list.iter().copied().find(|at| {
                        free(at)
                            && self.input.refunds.get(*at).map(|r| r.amount_fen)
                                == Some(row.amount_fen)
                    });
                    same_amount.or_else(|| list.iter().copied().find(free))
                }),
        };
        let refunds = self.input.refunds;
        match found.and_then(|at| refunds.get(at).map(|r| (at, r))) {
            Some((at, refund)) => {
                if let Some(claimed) = self.refund_claimed.get_mut(at) {
                    *claimed = true;
                }
                self.pair(&LedgerSide::refund(at, refund), index, row);
            }
            None => {
                let only = item(
                    Class::StatusMismatch,
                    Movement::Refund,
                    None,
                    Some((index, row)),
                );
                self.discrepancies.push(only);
            }
        }
    }

    /// Distance to the business date's start or end is within the window.
    fn near_midnight(&self, at: NaiveDateTime) -> bool {
        let window = TimeDelta::minutes(i64::from(self.options.near_midnight_minutes));
        let start = self.options.business_date.and_time(chrono::NaiveTime::MIN);
        let end = start + TimeDelta::days(1);
        (at - start).abs() <= window || (end - at).abs() <= window
    }

    /// Open, held near midnight, or auto-resolved by the adjacent day's statement.
    fn ledger_only_state(
        &self,
        cross_day: Option<usize>,
        at: NaiveDateTime,
    ) -> (State, Option<CrossDay>) {
        match cross_day {
            Some(line) => (State::AutoResolved, Some(CrossDay::StatementLine(line))),
            None if self.near_midnight(at) => (State::Held, None),
            None => (State::Open, None),
        }
    }

    fn unclaimed_payments(&mut self) {
        let neighbours: FastMap<&str, &GatewayRow<'_>> = self
            .input
            .neighbours
            .statement_rows
            .iter()
            .filter(|row| row.movement == Movement::Payment)
            .map(|row| (&*row.out_trade_no, row))
            .collect();
        for (index, payment) in self.input.payments.iter().enumerate() {
            if self.payment_claimed.get(index) != Some(&false) {
                continue;
            }
            let side = LedgerSide::payment(index, payment);
            let mut only = item(Class::LedgerOnly, Movement::Payment, Some(&side), None);
            let line = neighbours
                .get(payment.out_trade_no.as_str())
                .filter(|row| row.amount_fen == payment.amount_fen)
                .map(|row| row.line_no);
            (only.state, only.cross_day) = self.ledger_only_state(line, payment.paid_at);
            self.discrepancies.push(only);
        }
    }

    /// A refund we recorded that the statement does not show: refunded on one side only.
    fn unclaimed_refunds(&mut self) {
        let neighbours: FastMap<&str, &GatewayRow<'_>> = self
            .input
            .neighbours
            .statement_rows
            .iter()
            .filter_map(|row| Some((row.refund_no.as_deref()?, row)))
            .collect();
        for (index, refund) in self.input.refunds.iter().enumerate() {
            if self.refund_claimed.get(index) != Some(&false) {
                continue;
            }
            let side = LedgerSide::refund(index, refund);
            let mut only = item(Class::StatusMismatch, Movement::Refund, Some(&side), None);
            let line = neighbours
                .get(refund.refund_no.as_str())
                .filter(|row| {
                    row.movement == Movement::Refund && row.amount_fen == refund.amount_fen
                })
                .map(|row| row.line_no);
            (only.state, only.cross_day) = self.ledger_only_state(line, refund.refunded_at);
            self.discrepancies.push(only);
        }
    }

    /// The matched payment of `entry`, if it is one that can be a duplicate.
    fn duplicate_candidate(&self, entry: &Matched) -> Option<&'a LedgerPayment> {
        match entry.ledger {
            LedgerRef::Payment(at) => self
                .input
                .payments
                .get(at)
                .filter(|payment| payment.status != PaymentStatus::Refunded),
            LedgerRef::Refund(_) => None,
        }
    }

    /// Later matched payments of one account and amount become DUPLICATEs of the earliest.
    /// Only the few payments [`join::possibly_shared`] finds are grouped by their real key.
    fn duplicates(&mut self) {
        let shared = join::possibly_shared(&self.split, &self.matched, self.input.payments);
        if shared.is_empty() {
            return;
        }
        let mut earliest: FastMap<(&str, i64), &'a LedgerPayment> = map_with_capacity(shared.len());
        for &position in &shared {
            let candidate = self.matched.get(position);
            let Some(payment) = candidate.and_then(|entry| self.duplicate_candidate(entry)) else {
                continue;
            };
            let key = (payment.account_no.as_str(), payment.amount_fen);
            let first = earliest.entry(key).or_insert(payment);
            if (payment.paid_at, &payment.out_trade_no) < (first.paid_at, &first.out_trade_no) {
                *first = payment;
            }
        }
        // In matched order, as the DUPLICATEs were always pushed.
        let mut duplicate_positions = Vec::with_capacity(shared.len());
        for position in shared {
            let Some(entry) = self.matched.get(position).copied() else {
                continue;
            };
            let original = self.duplicate_candidate(&entry).and_then(|payment| {
                let first = earliest.get(&(payment.account_no.as_str(), payment.amount_fen))?;
                (first.out_trade_no != payment.out_trade_no).then_some((payment, *first))
            });
            let row = self.input.statement.get(entry.row);
            if let (Some((payment, first)), Some(row), LedgerRef::Payment(at)) =
                (original, row, entry.ledger)
            {
                let side = LedgerSide::payment(at, payment);
                let mut duplicate = item(
                    Class::Duplicate,
                    Movement::Payment,
                    Some(&side),
                    Some((entry.row, row)),
                );
                duplicate.duplicate_of = Some(first.out_trade_no.clone());
                self.discrepancies.push(duplicate);
                duplicate_positions.push(position);
            }
        }
        let mut dropped = duplicate_positions.into_iter().peekable();
        let mut position = 0;
        self.matched.retain(|_| {
            let duplicate = dropped.next_if_eq(&position).is_some();
            position += 1;
            !duplicate
        });
    }

    fn finish(mut self) -> ReconcileResult {
        self.discrepancies.sort_by(|a, b| {
            (&a.out_trade_no, a.movement, &a.refund_no, a.row).cmp(&(
                &b.out_trade_no,
                b.movement,
                &b.refund_no,
                b.row,
            ))
        });
        let totals = totals(self.input, &self.matched, &self.discrepancies);
        ReconcileResult {
            matched: self.matched,
            discrepancies: self.discrepancies,
            totals,
        }
    }
}
