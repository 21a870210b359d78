//! Strict parsers for the gateways' daily statements (protocol notes A4, B6, C.6): the Alipay
//! `trade` bill (a zip of GBK CSV files with `#` markers and trailing tabs) and the WeChat Pay
//! `ALL` trade bill (UTF-8, optionally gzip, every value prefixed by a backtick).
//!
//! Both parsers turn a file into one [`Statement`] of [`StatementRow`]s and check the rows
//! against the file's own control totals (Alipay's footer, WeChat's summary row). A file that
//! does not tie out, has an unknown header, a row of the wrong width or an amount that is not
//! an exact yuan string is rejected as a whole, naming the line: reconciling against half a
//! file would record wrong discrepancies, so nothing is better than something here.
//!
//! Conventions shared by both gateways:
//! - `amount_fen` is the customer money of the row, always positive; [`RowKind`] says whether
//!   it is a payment or a refund (Alipay writes refunds negative, WeChat positive).
//! - `fee` is the gateway's fee in yuan, exact (WeChat writes 5 decimals), signed as
//!   **charged to us = positive, returned to us = negative**.
//! - Times are Beijing wall-clock times as written in the file.

pub mod alipay;
pub mod wechat;

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use sha2::{Digest as _, Sha256};

/// Bound on a statement's (uncompressed) size: a zip or gzip bomb stops here. A very busy day
/// of a city utility is ~10^5 rows of ~300 bytes; this leaves two orders of magnitude.
pub const STATEMENT_BYTES_MAX: u64 = 1 << 30;

/// Which gateway produced the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Alipay,
    Wechat,
}

/// Whether a row moves customer money to us (payment) or back (refund).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKind {
    Payment,
    Refund,
}

/// One money movement of the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRow {
    pub gateway: Channel,
    pub kind: RowKind,
    /// Our order number; a refund row carries the original payment's.
    pub out_trade_no: String,
    /// Alipay 支付宝交易号 / WeChat 微信订单号 (the original payment's on refund rows).
    pub gateway_trade_no: String,
    /// Our refund request number: Alipay 退款批次号/请求号, WeChat 商户退款单号.
    pub refund_no: Option<String>,
    /// Customer money, positive: Alipay |订单金额（元）|; WeChat 订单金额 on payments,
    /// 申请退款金额 on refunds.
    pub amount_fen: i64,
    /// What the gateway settles for the row, positive: Alipay |商家实收（元）|; WeChat
    /// 应结订单金额 on payments, 退款金额 on refunds. Equal to `amount_fen` without coupons.
    pub settlement_fen: i64,
    /// Fee in yuan, charged to us = positive (see the module docs).
    pub fee: Decimal,
    /// Alipay 完成时间 (payment or refund completion); WeChat 交易时间 (payment success, or
    /// refund request).
    pub trade_time: NaiveDateTime,
    /// Alipay: the 业务类型 (`交易`/`退款`); WeChat: 交易状态 on payments (`SUCCESS`), 退款状态
    /// on refunds (`SUCCESS`, `PROCESSING`, ... a snapshot at bill generation).
    pub status: String,
    /// 1-based line of the row in the (decoded) file.
    pub line_no: usize,
}

/// The file's own totals, checked against the rows before the statement is returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControlTotals {
    pub payment_count: usize,
    pub refund_count: usize,
    /// Alipay: 商家实收 of 交易 rows; WeChat: 应结订单总金额.
    pub payment_settlement_fen: i64,
    /// Positive. Alipay: |商家实收退款|; WeChat: 退款总金额.
    pub refund_settlement_fen: i64,
    /// WeChat 手续费总金额 (checked); Alipay has no fee total, this is the rows' sum.
    pub fee: Decimal,
}

/// A parsed, self-consistent statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub channel: Channel,
    /// Alipay: the `#账号：[...]` value (`<PID>0156`); WeChat: 商户号 of the first row.
    pub account: Option<String>,
    /// Alipay: the 起始日期 when the file covers exactly one day; WeChat files carry no date.
    pub business_date: Option<NaiveDate>,
    pub rows: Vec<StatementRow>,
    pub totals: ControlTotals,
    /// SHA-256 (lower-case hex) of the bytes handed to the parser, for the run's audit trail.
    pub sha256: String,
}

/// Why a statement file was rejected. Line numbers are 1-based lines of the decoded file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("statement is larger than {max} bytes")]
    TooLarge { max: u64 },
    #[error("not a readable zip archive: {0}")]
    Zip(String),
    #[error("zip has no `*_业务明细.csv` entry (entries: {entries})")]
    MissingDetailEntry { entries: String },
    #[error("zip has more than one `*_业务明细.csv` entry: {entries}")]
    AmbiguousDetailEntry { entries: String },
    #[error("not a readable gzip stream: {0}")]
    Gzip(String),
    #[error("file is not valid GBK text (first malformed byte on line {line})")]
    NotGbk { line: usize },
    #[error("file is not valid UTF-8 text (first malformed byte on line {line})")]
    NotUtf8 { line: usize },
    #[error("missing {what}")]
    Missing { what: &'static str },
    #[error("line {line}: unknown header, looks like {looks_like}")]
    UnknownHeader { line: usize, looks_like: String },
    #[error("line {line}: {found} fields, expected {expected}")]
    FieldCount {
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("line {line}: {column} `{value}` is not {expected}")]
    BadValue {
        line: usize,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("line {line}: {reason}")]
    UnexpectedLine { line: usize, reason: String },
    #[error(
        "control totals do not tie: {what} is {declared} in the file, {computed} from the rows"
    )]
    TotalsMismatch {
        what: &'static str,
        declared: String,
        computed: String,
    },
    #[error("SHA-1 of the bill is {actual}, the gateway said {expected}")]
    HashMismatch { expected: String, actual: String },
}

pub type Result<T> = std::result::Result<T, StatementError>;

/// Lower-case hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// 1-based line number of byte `offset` in `bytes`.
fn line_of_offset(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    bytes
        .get(..end)
        .map_or(0, |head| head.iter().filter(|&&b| b == b'\n').count())
        + 1
}

/// Yuan text with at most `decimals_max` decimals, optional leading `-`, as a decimal.
/// Rejects `+`, spaces, exponents, a bare point, thousands separators, empty text.
fn parse_yuan(text: &str, decimals_max: usize) -> Option<Decimal> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((_, "")) => return None,
        Some((whole, fraction)) => (whole, fraction),
        None => (unsigned, ""),
    };
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    // 18 whole digits keep every value inside Decimal's and i64 fen's range.
    if whole.is_empty() || whole.len() > 18 || !digits(whole) || !digits(fraction) {
        return None;
    }
    if fraction.len() > decimals_max {
        return None;
    }
    text.parse::<Decimal>().ok()
}

/// Yuan text with at most two decimals as signed fen. The same acceptance as
/// [`parse_yuan`] (then times 100 into `i64`), computed in integers: every row has several
/// amounts, and going through `Decimal` was a visible part of parsing a large statement.
fn parse_fen(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if unsigned.ends_with('.') || whole.is_empty() || whole.len() > 18 || fraction.len() > 2 {
        return None;
    }
    // At most 18 + 2 digits: no overflow in i128; the range check is the final conversion.
    let mut fen: i128 = 0;
    for byte in whole.bytes() {
        fen = fen * 10 + digit(byte)?;
    }
    let mut scale = 10;
    fen *= 100;
    for byte in fraction.bytes() {
        fen += digit(byte)? * scale;
        scale /= 10;
    }
    i64::try_from(if negative { -fen } else { fen }).ok()
}

fn digit(byte: u8) -> Option<i128> {
    byte.is_ascii_digit().then(|| i128::from(byte - b'0'))
}

/// Signed fen as yuan text, for error messages.
fn fen_text(fen: i64) -> String {
    Decimal::new(fen, 2).to_string()
}

/// `yyyy-MM-dd HH:mm:ss`. The exact 19-character form every statement row uses is read
/// directly (chrono's format interpreter was a visible part of parsing a large statement);
/// anything else goes through `parse_from_str` as before, so what is accepted is unchanged.
fn parse_time(text: &str) -> Option<NaiveDateTime> {
    parse_time_fixed(text).or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok())
}

fn parse_time_fixed(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() != 19 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if b.get(10) != Some(&b' ') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        b.get(from..to)?.iter().try_fold(0_u32, |n, &byte| {
            byte.is_ascii_digit()
                .then(|| n * 10 + u32::from(byte - b'0'))
        })
    };
    let year = i32::try_from(number(0, 4)?).ok()?;
    // A leap second (60) is left to chrono's own rules.
    let second = number(17, 19).filter(|&s| s < 60)?;
    NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)?.and_hms_opt(
        number(11, 13)?,
        number(14, 16)?,
        second,
    )
}

#[cfg(test)]
mod tests;
