//! The detail file's preamble (account, period) and footer control totals
//! (`#交易合计：N笔，商家实收共X元...`, optional `#退款合计：...`), checked against the rows.

use chrono::NaiveDate;

use super::super::{
    ControlTotals, Result, RowKind, StatementError, StatementRow, fen_text, parse_fen,
};
use super::{Layout, bad, lines};

const ACCOUNT_PREFIX: &str = "#账号：";
const PERIOD_PREFIX: &str = "#起始日期：";
const PAYMENT_FOOTER_PREFIX: &str = "#交易合计：";
const REFUND_FOOTER_PREFIX: &str = "#退款合计：";
const PAYMENT_FOOTER_SUM: &str = "商家实收共";
const REFUND_FOOTER_SUM: &str = "商家实收退款共";

/// One footer line: `N笔，<sum_label>X元...`.
struct FooterLine {
    line: usize,
    count: usize,
    fen: i64,
}

fn parse_footer_line(line_no: usize, rest: &str, sum_label: &str) -> Result<FooterLine> {
    let unreadable = || StatementError::UnexpectedLine {
        line: line_no,
        reason: format!("footer is not `N笔，{sum_label}X元...`"),
    };
    let (count, rest) = rest.split_once('笔').ok_or_else(unreadable)?;
    let count = count.trim().parse::<usize>().map_err(|_| unreadable())?;
    let (_, sum) = rest.split_once(sum_label).ok_or_else(unreadable)?;
    let (sum, _) = sum.split_once('元').ok_or_else(unreadable)?;
    let fen = parse_fen(sum.trim()).ok_or_else(|| {
        bad(
            line_no,
            "footer sum",
            sum,
            "a yuan amount with at most 2 decimals",
        )
    })?;
    Ok(FooterLine {
        line: line_no,
        count,
        fen,
    })
}

pub(super) fn check_footer(
    text: &str,
    layout: &Layout,
    rows: &[StatementRow],
) -> Result<ControlTotals> {
    let mut payments = None;
    let mut refunds = None;
    let footer = text.get(layout.end_offset..).unwrap_or("");
    for (index, _, line) in lines(footer).skip(1) {
        let line_no = layout.end_line + index - 1;
        if let Some(rest) = line.strip_prefix(PAYMENT_FOOTER_PREFIX) {
            payments = Some(parse_footer_line(line_no, rest, PAYMENT_FOOTER_SUM)?);
        } else if let Some(rest) = line.strip_prefix(REFUND_FOOTER_PREFIX) {
            refunds = Some(parse_footer_line(line_no, rest, REFUND_FOOTER_SUM)?);
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            return Err(StatementError::UnexpectedLine {
                line: line_no,
                reason: "data after the 业务明细列表结束 end marker".to_owned(),
            });
        }
    }
    let payments = payments.ok_or(StatementError::Missing {
        what: "the #交易合计 footer",
    })?;
    let refunds = refunds.unwrap_or(FooterLine {
        line: payments.line,
        count: 0,
        fen: 0,
    });
    let totals = ControlTotals {
        payment_count: payments.count,
        refund_count: refunds.count,
        payment_settlement_fen: payments.fen,
        refund_settlement_fen: refunds.fen.abs(),
        fee: rows.iter().map(|row| row.fee).sum(),
    };
    tie(rows, &totals)?;
    Ok(totals)
}

/// The footer's counts and 商家实收 sums must equal the rows'.
fn tie(rows: &[StatementRow], declared: &ControlTotals) -> Result<()> {
    let mut computed = ControlTotals::default();
    for row in rows {
        match row.kind {
            RowKind::Payment => {
                computed.payment_count += 1;
                computed.payment_settlement_fen += row.settlement_fen;
            }
            RowKind::Refund => {
                computed.refund_count += 1;
                computed.refund_settlement_fen += row.settlement_fen;
            }
        }
    }
    let checks = [
        (
            "#交易合计 count",
            declared.payment_count,
            computed.payment_count,
        ),
        (
            "#退款合计 count",
            declared.refund_count,
            computed.refund_count,
        ),
    ];
    for (what, declared, computed) in checks {
        if declared != computed {
            return Err(StatementError::TotalsMismatch {
                what,
                declared: declared.to_string(),
                computed: computed.to_string(),
            });
        }
    }
    let sums = [
        (
            "#交易合计 商家实收",
            declared.payment_settlement_fen,
            computed.payment_settlement_fen,
        ),
        (
            "#退款合计 商家实收退款 (absolute)",
            declared.refund_settlement_fen,
            computed.refund_settlement_fen,
        ),
    ];
    for (what, declared, computed) in sums {
        if declared != computed {
            return Err(StatementError::TotalsMismatch {
                what,
                declared: fen_text(declared),
                computed: fen_text(computed),
            });
        }
    }
    Ok(())
}

/// Account (`#账号：[...]`) and one-day period (`#起始日期：[..] 终止日期：[..]`) from the
/// preamble; both optional, the period only when it spans exactly one day.
pub(super) fn preamble(text: &str, start_line: usize) -> (Option<String>, Option<NaiveDate>) {
    let mut account = None;
    let mut day = None;
    for (_, _, line) in lines(text).take(start_line) {
        if let Some(rest) = line.strip_prefix(ACCOUNT_PREFIX) {
            account = bracketed(rest).map(str::to_owned);
        } else if let Some(rest) = line.strip_prefix(PERIOD_PREFIX) {
            day = one_day_period(rest);
        }
    }
    (account, day)
}

fn bracketed(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once('[')?;
    let (inside, _) = rest.split_once(']')?;
    Some(inside.trim())
}

fn one_day_period(text: &str) -> Option<NaiveDate> {
    let (start, end) = text.split_once("终止日期：")?;
    let date = |part: &str| {
        let inside = bracketed(part)?;
        let (day, _) = inside.split_once(' ').unwrap_or((inside, ""));
        NaiveDate::parse_from_str(day, "%Y年%m月%d日").ok()
    };
    let (start, end) = (date(start)?, date(end)?);
    (start.succ_opt() == Some(end)).then_some(start)
}
