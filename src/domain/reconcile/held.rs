//! Items held near midnight, settled when the adjacent day's statement arrives.
//!
//! A ledger-only payment (or refund) within minutes of midnight is HELD because the gateway
//! may have dated it on the other side. Whichever of the two days is reconciled second
//! decides: if its statement has the item with the same amount, the item is explained
//! (AUTO_RESOLVED); if not, the hold is over and the item is OPEN for finance. Pure.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::{GatewayRow, Movement};

/// A held item of a run, as the re-check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldItem {
    pub movement: Movement,
    pub out_trade_no: String,
    pub refund_no: Option<String>,
    pub amount_fen: i64,
    /// Our time of the payment or refund, Beijing wall clock.
    pub at: NaiveDateTime,
}

/// What the adjacent day's statement says about a held item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldVerdict {
    /// The statement of the other day is not the one this item waits for.
    NotThisDay,
    /// Found on this line with the same amount.
    Found { line_no: usize },
    /// The day it waited for does not have it: finance decides.
    Missing,
}

/// Whether `item`, held on `item_date`, waits for `statement_date`'s statement: the evening
/// items wait for the next day, the early-morning ones for the day before.
fn waits_for(item: &HeldItem, item_date: NaiveDate, statement_date: NaiveDate) -> bool {
    let evening = item.at.time() >= NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN);
    match (item_date.succ_opt(), item_date.pred_opt()) {
        (Some(next), _) if next == statement_date => evening,
        (_, Some(previous)) if previous == statement_date => !evening,
        _ => false,
    }
}

/// Verdicts for `held` (items of `item_date`) against the statement of `statement_date`,
/// in the same order. O(n + m).
pub fn recheck_held(
    held: &[HeldItem],
    item_date: NaiveDate,
    statement: &[GatewayRow<'_>],
    statement_date: NaiveDate,
) -> Vec<HeldVerdict> {
    use std::collections::HashMap;
    let mut payments: HashMap<&str, &GatewayRow<'_>> = HashMap::new();
    let mut refunds: HashMap<&str, &GatewayRow<'_>> = HashMap::new();
    for row in statement {
        match (row.movement, row.refund_no.as_deref()) {
            (Movement::Payment, _) => {
                payments.entry(&*row.out_trade_no).or_insert(row);
            }
            (Movement::Refund, Some(number)) => {
                refunds.entry(number).or_insert(row);
            }
            (Movement::Refund, None) => {}
        }
    }
    held.iter()
        .map(|item| {
            if !waits_for(item, item_date, statement_date) {
                return HeldVerdict::NotThisDay;
            }
            let row = match (item.movement, item.refund_no.as_deref()) {
                (Movement::Payment, _) => payments.get(item.out_trade_no.as_str()),
                (Movement::Refund, Some(number)) => refunds.get(number),
                (Movement::Refund, None) => None,
            };
            match row.filter(|row| row.amount_fen == item.amount_fen) {
                Some(row) => HeldVerdict::Found {
                    line_no: row.line_no,
                },
                None => HeldVerdict::Missing,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use rust_decimal::Decimal;

    use super::*;

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, day).unwrap_or_default()
    }

    fn at(day: u32, h: u32, m: u32) -> NaiveDateTime {
        date(day).and_hms_opt(h, m, 0).unwrap_or_default()
    }

    fn held(number: &str, amount_fen: i64, when: NaiveDateTime) -> HeldItem {
        HeldItem {
            movement: Movement::Payment,
            out_trade_no: number.to_owned(),
            refund_no: None,
            amount_fen,
            at: when,
        }
    }

    fn row(number: &str, amount_fen: i64, line_no: usize) -> GatewayRow<'static> {
        GatewayRow {
            movement: Movement::Payment,
            out_trade_no: number.to_owned().into(),
            gateway_trade_no: format!("G{number}").into(),
            refund_no: None,
            amount_fen,
            fee: Decimal::ZERO,
            trade_time: at(11, 0, 1),
            line_no,
        }
    }

    #[test]
    fn an_evening_item_found_on_the_next_day_is_explained() {
        let items = [held("A", 100, at(10, 23, 58))];
        let verdicts = recheck_held(&items, date(10), &[row("A", 100, 7)], date(11));
        assert_eq!(verdicts, vec![HeldVerdict::Found { line_no: 7 }]);
    }

    #[test]
    fn an_item_missing_from_the_day_it_waited_for_opens() {
        let items = [
            held("A", 100, at(10, 23, 58)),
            held("B", 100, at(10, 23, 59)),
        ];
        let verdicts = recheck_held(&items, date(10), &[row("A", 90, 7)], date(11));
        assert_eq!(verdicts, vec![HeldVerdict::Missing, HeldVerdict::Missing]);
    }

    #[test]
    fn an_early_item_waits_for_the_previous_day_not_the_next() {
        let items = [held("A", 100, at(10, 0, 3))];
        let next = recheck_held(&items, date(10), &[row("A", 100, 2)], date(11));
        assert_eq!(next, vec![HeldVerdict::NotThisDay]);
        let previous = recheck_held(&items, date(10), &[row("A", 100, 2)], date(9));
        assert_eq!(previous, vec![HeldVerdict::Found { line_no: 2 }]);
    }

    #[test]
    fn a_refund_is_found_by_its_refund_number() {
        let mut item = held("A", 30, at(10, 23, 55));
        item.movement = Movement::Refund;
        item.refund_no = Some("R1".to_owned());
        let mut refund = row("A", 30, 4);
        refund.movement = Movement::Refund;
        refund.refund_no = Some("R1".into());
        let verdicts = recheck_held(&[item], date(10), &[row("A", 30, 3), refund], date(11));
        assert_eq!(verdicts, vec![HeldVerdict::Found { line_no: 4 }]);
    }

    #[test]
    fn a_statement_two_days_away_decides_nothing() {
        let items = [held("A", 100, at(10, 23, 58))];
        let verdicts = recheck_held(&items, date(10), &[row("A", 100, 1)], date(12));
        assert_eq!(verdicts, vec![HeldVerdict::NotThisDay]);
    }
}
