//! The WeChat Pay v3 `ALL` trade bill (protocol notes B6.2, B6.3): UTF-8 text (gzip when
//! requested with `tar_type=GZIP`, detected here by its magic bytes), an optional BOM, `\n` or
//! `\r\n` line ends, the exact 27-column detail header, rows whose every value is prefixed by
//! one backtick, then the summary header (found by name) and one summary row.
//!
//! Rows are split on the two-character separator `` ,` `` after removing the first backtick,
//! so a description containing a plain comma survives. `SUCCESS` rows are payments and
//! `REFUND` rows refunds; anything else (e.g. `REVOKED`, a barcode-only state) is rejected.
//!
//! Amounts: the customer money of a row is 订单金额 (payments) or 申请退款金额 (refunds), what
//! our ledger records; the settled money is 应结订单金额 / 退款金额. Every summary value is
//! checked against the rows: 总交易单数 (payment and refund rows together), 应结订单总金额,
//! 退款总金额, 充值券退款总金额, 手续费总金额 (5 decimals), 订单总金额, 申请退款总金额.
//! The fee column is kept as written: charged fees positive, returned fees negative.

use std::io::Read as _;

use rust_decimal::Decimal;
use sha1::{Digest as _, Sha1};

use super::{
    Channel, ControlTotals, Result, RowKind, STATEMENT_BYTES_MAX, Statement, StatementError,
    StatementRow, fen_text, line_of_offset, parse_fen, parse_time, parse_yuan, sha256_hex,
};

/// The `ALL` detail header (27 columns), byte for byte.
pub const ALL_HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
/// The `ALL` summary header (7 columns).
pub const ALL_SUMMARY_HEADER: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";
const SUMMARY_FIRST_COLUMN: &str = "总交易单数";
const COLUMN_COUNT: usize = 27;
const SUMMARY_COLUMN_COUNT: usize = 7;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UTF8_BOM: &str = "\u{feff}";
const FEE_DECIMALS_MAX: usize = 5;
const AMOUNT: &str = "a yuan amount with at most 2 decimals";

// Column positions (0-based) of the fields read.
const COL_TIME: usize = 0;
const COL_MCH_ID: usize = 2;
const COL_TRANSACTION_ID: usize = 5;
const COL_OUT_TRADE_NO: usize = 6;
const COL_STATE: usize = 9;
const COL_SETTLEMENT: usize = 12;
const COL_OUT_REFUND_NO: usize = 15;
const COL_REFUND: usize = 16;
const COL_RECHARGE_REFUND: usize = 17;
const COL_REFUND_STATE: usize = 19;
const COL_FEE: usize = 22;
const COL_ORDER_AMOUNT: usize = 24;
const COL_REFUND_APPLIED: usize = 25;

/// Checks the gateway's `hash_value` (SHA-1 of the **uncompressed** file, hex, any case).
pub fn verify_sha1(uncompressed: &[u8], expected_hex: &str) -> Result<()> {
    let actual = hex::encode(Sha1::digest(uncompressed));
    if actual.eq_ignore_ascii_case(expected_hex.trim()) {
        Ok(())
    } else {
        Err(StatementError::HashMismatch {
            expected: expected_hex.to_owned(),
            actual,
        })
    }
}

/// Gunzips `bytes` when they start with the gzip magic; otherwise returns them as they are.
/// The result is what [`verify_sha1`] takes.
pub fn uncompressed(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(STATEMENT_BYTES_MAX + 1)
        .read_to_end(&mut out)
        .map_err(|e| StatementError::Gzip(e.to_string()))?;
    if out.len() as u64 > STATEMENT_BYTES_MAX {
        return Err(StatementError::TooLarge {
            max: STATEMENT_BYTES_MAX,
        });
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Parses an `ALL` bill, gzip or plain. `sha256` of the result is of `bytes` as given.
pub fn parse_wechat_bill(bytes: &[u8]) -> Result<Statement> {
    if bytes.len() as u64 > STATEMENT_BYTES_MAX {
        return Err(StatementError::TooLarge {
            max: STATEMENT_BYTES_MAX,
        });
    }
    let plain = uncompressed(bytes)?;
    let text = std::str::from_utf8(&plain).map_err(|e| StatementError::NotUtf8 {
        line: line_of_offset(&plain, e.valid_up_to()),
    })?;
    let text = text.strip_prefix(UTF8_BOM).unwrap_or(text);
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate()
        .map(|(index, line)| (index + 1, line));

    let (header_line, header) = lines.next().unwrap_or((1, ""));
    if header != ALL_HEADER {
        return Err(StatementError::UnknownHeader {
            line: header_line,
            looks_like: describe_header(header),
        });
    }
    let mut rows = Vec::with_capacity(text.len() / 300);
    let mut sums = RowSums::default();
    let mut found_summary = false;
    for (line_no, line) in lines.by_ref() {
        if line.starts_with(SUMMARY_FIRST_COLUMN) {
            if line != ALL_SUMMARY_HEADER {
                return Err(StatementError::UnknownHeader {
                    line: line_no,
                    looks_like: format!("a summary header other than ALL's: `{line}`"),
                });
            }
            found_summary = true;
            break;
        }
        if line.is_empty() {
            continue;
        }
        let fields = split_row(line, line_no, COLUMN_COUNT)?;
        let row = parse_row(&fields, line_no)?;
        sums.add(&fields, &row, line_no)?;
        rows.push(row);
    }
    if !found_summary {
        return Err(StatementError::Missing {
            what: "the summary header 总交易单数,...",
        });
    }
    let (values_line, values) =
        lines
            .by_ref()
            .find(|(_, line)| !line.is_empty())
            .ok_or(StatementError::Missing {
                what: "the summary row after the summary header",
            })?;
    if let Some((line_no, _)) = lines.find(|(_, line)| !line.trim().is_empty()) {
        return Err(StatementError::UnexpectedLine {
            line: line_no,
            reason: format!("text after the summary row (line {values_line})"),
        });
    }
    let declared = Summary::parse(
        &split_row(values, values_line, SUMMARY_COLUMN_COUNT)?,
        values_line,
    )?;
    declared.tie(&sums)?;
    // Not shrunk (sized from the text above): shrinking would copy every row.
    Ok(Statement {
        channel: Channel::Wechat,
        account: rows.first().map(|_| sums.mch_id.clone()),
        business_date: None,
        totals: ControlTotals {
            payment_count: sums.payment_count,
            refund_count: sums.refund_count,
            payment_settlement_fen: declared.settlement_fen,
            refund_settlement_fen: declared.refund_fen,
            fee: declared.fee,
        },
        rows,
        sha256: sha256_hex(bytes),
    })
}

fn describe_header(header: &str) -> String {
    let columns = header.split(',').count();
    if header.contains("子商户号") || header.contains("总金额") {
        format!(
            "the legacy pre-2018 layout (子商户号/总金额, {columns} columns); only the ALL bill with 27 columns is supported"
        )
    } else if header.contains("退款申请时间") {
        format!("a REFUND bill ({columns} columns); download bill_type=ALL")
    } else if header.starts_with("交易时间") && !header.contains("退款金额") {
        format!("a SUCCESS bill ({columns} columns); download bill_type=ALL")
    } else if header.starts_with('`') {
        "a data row: the file has no header line".to_owned()
    } else {
        format!("an unknown layout with {columns} columns")
    }
}

/// Removes the first backtick and splits on `` ,` ``.
fn split_row(line: &str, line_no: usize, expected: usize) -> Result<Vec<&str>> {
    let rest = line
        .strip_prefix('`')
        .ok_or_else(|| StatementError::UnexpectedLine {
            line: line_no,
            reason: "a data value does not start with a backtick".to_owned(),
        })?;
    let fields: Vec<&str> = rest.split(",`").collect();
    if fields.len() != expected {
        return Err(StatementError::FieldCount {
            line: line_no,
            expected,
            found: fields.len(),
        });
    }
    Ok(fields)
}

fn bad(line: usize, column: &'static str, value: &str, expected: &'static str) -> StatementError {
    StatementError::BadValue {
        line,
        column,
        value: value.to_owned(),
        expected,
    }
}

fn fen_at(fields: &[&str], column: usize, name: &'static str, line: usize) -> Result<i64> {
    let value = fields.get(column).copied().unwrap_or("");
    let fen = parse_fen(value).ok_or_else(|| bad(line, name, value, AMOUNT))?;
    if fen < 0 {
        return Err(bad(line, name, value, "a positive amount"));
    }
    Ok(fen)
}

fn parse_row(fields: &[&str], line: usize) -> Result<StatementRow> {
    let get = |column: usize| fields.get(column).copied().unwrap_or("");
    let required = |column: usize, name: &'static str| -> Result<String> {
        let value = get(column);
        if value.is_empty() {
            return Err(bad(line, name, value, "present"));
        }
        Ok(value.to_owned())
    };
    let (kind, amount_fen, settlement_fen, refund_no, status) = match get(COL_STATE) {
        "SUCCESS" => (
            RowKind::Payment,
            fen_at(fields, COL_ORDER_AMOUNT, "订单金额", line)?,
            fen_at(fields, COL_SETTLEMENT, "应结订单金额", line)?,
            None,
            "SUCCESS".to_owned(),
        ),
        "REFUND" => (
            RowKind::Refund,
            fen_at(fields, COL_REFUND_APPLIED, "申请退款金额", line)?,
            fen_at(fields, COL_REFUND, "退款金额", line)?,
            Some(required(COL_OUT_REFUND_NO, "商户退款单号")?),
            required(COL_REFUND_STATE, "退款状态")?,
        ),
        other => return Err(bad(line, "交易状态", other, "SUCCESS or REFUND")),
    };
    let fee_text = get(COL_FEE);
    let fee = parse_yuan(fee_text, FEE_DECIMALS_MAX).ok_or_else(|| {
        bad(
            line,
            "手续费",
            fee_text,
            "a yuan amount with at most 5 decimals",
        )
    })?;
    let time_text = get(COL_TIME);
    let trade_time = parse_time(time_text)
        .ok_or_else(|| bad(line, "交易时间", time_text, "a time yyyy-MM-dd HH:mm:ss"))?;
    Ok(StatementRow {
        gateway: Channel::Wechat,
        kind,
        out_trade_no: required(COL_OUT_TRADE_NO, "商户订单号")?,
        gateway_trade_no: required(COL_TRANSACTION_ID, "微信订单号")?,
        refund_no,
        amount_fen,
        settlement_fen,
        fee,
        trade_time,
        status,
        line_no: line,
    })
}

/// Column sums over all rows, compared with the summary row.
#[derive(Default)]
struct RowSums {
    mch_id: String,
    payment_count: usize,
    refund_count: usize,
    settlement_fen: i64,
    refund_fen: i64,
    recharge_refund_fen: i64,
    fee: Decimal,
    order_fen: i64,
    refund_applied_fen: i64,
}

impl RowSums {
    /// Sums every row's columns as written (refund rows carry 0.00 in the payment columns and
    /// vice versa), which is how the summary is defined.
    fn add(&mut self, fields: &[&str], row: &StatementRow, line: usize) -> Result<()> {
        if self.payment_count + self.refund_count == 0 {
            self.mch_id = fields.get(COL_MCH_ID).copied().unwrap_or("").to_owned();
        }
        match row.kind {
            RowKind::Payment => self.payment_count += 1,
            RowKind::Refund => self.refund_count += 1,
        }
        self.settlement_fen += fen_at(fields, COL_SETTLEMENT, "应结订单金额", line)?;
        self.refund_fen += fen_at(fields, COL_REFUND, "退款金额", line)?;
        self.recharge_refund_fen += fen_at(fields, COL_RECHARGE_REFUND, "充值券退款金额", line)?;
        self.order_fen += fen_at(fields, COL_ORDER_AMOUNT, "订单金额", line)?;
        self.refund_applied_fen += fen_at(fields, COL_REFUND_APPLIED, "申请退款金额", line)?;
        self.fee += row.fee;
        Ok(())
    }
}

/// The summary row's values.
struct Summary {
    count: usize,
    settlement_fen: i64,
    refund_fen: i64,
    recharge_refund_fen: i64,
    fee: Decimal,
    order_fen: i64,
    refund_applied_fen: i64,
}

impl Summary {
    fn parse(fields: &[&str], line: usize) -> Result<Summary> {
        let get = |column: usize| fields.get(column).copied().unwrap_or("");
        let count = get(0)
            .parse::<usize>()
            .map_err(|_| bad(line, "总交易单数", get(0), "a count"))?;
        let fee = parse_yuan(get(4), FEE_DECIMALS_MAX).ok_or_else(|| {
            bad(
                line,
                "手续费总金额",
                get(4),
                "a yuan amount with at most 5 decimals",
            )
        })?;
        Ok(Summary {
            count,
            settlement_fen: fen_at(fields, 1, "应结订单总金额", line)?,
            refund_fen: fen_at(fields, 2, "退款总金额", line)?,
            recharge_refund_fen: fen_at(fields, 3, "充值券退款总金额", line)?,
            fee,
            order_fen: fen_at(fields, 5, "订单总金额", line)?,
            refund_applied_fen: fen_at(fields, 6, "申请退款总金额", line)?,
        })
    }

    fn tie(&self, rows: &RowSums) -> Result<()> {
        let row_count = rows.payment_count + rows.refund_count;
        if self.count != row_count {
            return Err(StatementError::TotalsMismatch {
                what: "总交易单数 (payment and refund rows)",
                declared: self.count.to_string(),
                computed: row_count.to_string(),
            });
        }
        let sums = [
            ("应结订单总金额", self.settlement_fen, rows.settlement_fen),
            ("退款总金额", self.refund_fen, rows.refund_fen),
            (
                "充值券退款总金额",
                self.recharge_refund_fen,
                rows.recharge_refund_fen,
            ),
            ("订单总金额", self.order_fen, rows.order_fen),
            (
                "申请退款总金额",
                self.refund_applied_fen,
                rows.refund_applied_fen,
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
        if self.fee != rows.fee {
            return Err(StatementError::TotalsMismatch {
                what: "手续费总金额",
                declared: self.fee.to_string(),
                computed: rows.fee.to_string(),
            });
        }
        Ok(())
    }
}
