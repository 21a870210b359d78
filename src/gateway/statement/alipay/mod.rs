//! The Alipay `trade` bill (protocol notes A4.2, A4.3): a zip whose entry names are GBK
//! without the UTF-8 flag, holding `<PID>0156_<yyyyMMdd>_业务明细.csv` (parsed here) and
//! `..._业务明细(汇总).csv` (ignored: the detail file's footer already carries the totals).
//!
//! The detail file is GBK text: `#` preamble lines (account on `#账号：[...]`, period on
//! `#起始日期：`), the start marker, the exact 25-column header with full-width parentheses,
//! the data rows (fields padded with trailing tabs, quoting honoured), the end marker and the
//! footer `#交易合计：N笔，商家实收共X元...` / optional `#退款合计：N笔，商家实收退款共-X元...`,
//! whose counts and sums must equal the rows'. Refund amounts are written negative; the sign is
//! parsed and the row classified by 业务类型, so a file with positive refunds (seen in one
//! synthetic fixture) is read the same way.

use std::io::Read as _;

use rust_decimal::Decimal;

use super::{
    Channel, Result, RowKind, STATEMENT_BYTES_MAX, Statement, StatementError, StatementRow,
    line_of_offset, parse_fen, parse_time, parse_yuan, sha256_hex,
};

mod footer;

use footer::{check_footer, preamble};

/// The detail entry's name ends with this; the summary entry ends with `_业务明细(汇总).csv`.
pub const DETAIL_ENTRY_SUFFIX: &str = "_业务明细.csv";
/// The 25 columns, byte for byte (full-width parentheses U+FF08/U+FF09).
pub const DETAIL_HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";
const COLUMN_COUNT: usize = 25;
/// Marker texts between the `#` and dash runs (dash counts differ between files).
const START_MARKER: &str = "业务明细列表";
const END_MARKER: &str = "业务明细列表结束";

// Column positions (0-based) of the fields read.
const COL_TRADE_NO: usize = 0;
const COL_OUT_TRADE_NO: usize = 1;
const COL_TYPE: usize = 2;
const COL_FINISHED_AT: usize = 5;
const COL_ORDER_AMOUNT: usize = 11;
const COL_RECEIVED: usize = 12;
const COL_REFUND_NO: usize = 21;
const COL_FEE: usize = 22;

/// Parses the downloaded zip: selects the `*_业务明细.csv` entry by its GBK-decoded name.
/// `sha256` of the result is the zip's.
pub fn parse_alipay_zip(bytes: &[u8]) -> Result<Statement> {
    let zip_error = |e: zip::result::ZipError| StatementError::Zip(e.to_string());
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_error)?;
    let mut names = Vec::with_capacity(archive.len());
    let mut detail = Vec::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(zip_error)?;
        let name = entry_name(entry.name_raw());
        if name.ends_with(DETAIL_ENTRY_SUFFIX) {
            detail.push(index);
        }
        names.push(name);
    }
    let entries = names.join(", ");
    let index = match detail.as_slice() {
        [index] => *index,
        [] => return Err(StatementError::MissingDetailEntry { entries }),
        _ => return Err(StatementError::AmbiguousDetailEntry { entries }),
    };
    let entry = archive.by_index(index).map_err(zip_error)?;
    if entry.size() > STATEMENT_BYTES_MAX {
        return Err(StatementError::TooLarge {
            max: STATEMENT_BYTES_MAX,
        });
    }
    // Sized up front from the entry's declared size (checked above): a 200 MB file grown by
    // doubling is copied some 28 times.
    let mut csv = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
    entry
        .take(STATEMENT_BYTES_MAX + 1)
        .read_to_end(&mut csv)
        .map_err(|e| StatementError::Zip(e.to_string()))?;
    if csv.len() as u64 > STATEMENT_BYTES_MAX {
        return Err(StatementError::TooLarge {
            max: STATEMENT_BYTES_MAX,
        });
    }
    parse_detail(&csv, sha256_hex(bytes))
}

/// Entry names are GBK without the UTF-8 flag; a writer that did set the flag wrote UTF-8.
fn entry_name(raw: &[u8]) -> String {
    let (gbk, malformed) = encoding_rs::GBK.decode_without_bom_handling(raw);
    match std::str::from_utf8(raw) {
        Ok(utf8) if malformed || !gbk.ends_with(DETAIL_ENTRY_SUFFIX) => utf8.to_owned(),
        _ => gbk.into_owned(),
    }
}

/// Parses the GBK `业务明细.csv` itself. `sha256` of the result is of `bytes`.
pub fn parse_alipay_csv(bytes: &[u8]) -> Result<Statement> {
    parse_detail(bytes, sha256_hex(bytes))
}

/// The detail file's bytes; `sha256` is of whatever the caller was handed (zip or CSV), so
/// the CSV of a zip is not hashed for nothing.
fn parse_detail(bytes: &[u8], sha256: String) -> Result<Statement> {
    let text = decode_gbk(bytes)?;
    let layout = Layout::find(&text)?;
    // Not shrunk: `parse_rows` sizes the vector from the data (one row per ≥ 200 bytes), and
    // shrinking would copy a million rows to return pages that were never touched.
    let rows = parse_rows(&text, &layout)?;
    let totals = check_footer(&text, &layout, &rows)?;
    let (account, business_date) = preamble(&text, layout.start_line);
    Ok(Statement {
        channel: Channel::Alipay,
        account,
        business_date,
        rows,
        totals,
        sha256,
    })
}

fn decode_gbk(bytes: &[u8]) -> Result<String> {
    if bytes.len() as u64 > STATEMENT_BYTES_MAX {
        return Err(StatementError::TooLarge {
            max: STATEMENT_BYTES_MAX,
        });
    }
    let mut decoder = encoding_rs::GBK.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .unwrap_or(bytes.len().saturating_mul(3));
    let mut text = String::with_capacity(capacity);
    let (result, read) = decoder.decode_to_string_without_replacement(bytes, &mut text, true);
    match result {
        encoding_rs::DecoderResult::InputEmpty => Ok(text),
        encoding_rs::DecoderResult::Malformed(_, _) | encoding_rs::DecoderResult::OutputFull => {
            Err(StatementError::NotGbk {
                line: line_of_offset(bytes, read),
            })
        }
    }
}

/// Lines of `text` with their 1-based number and byte offset, line ends (`\n`, `\r\n`) removed.
fn lines(text: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut offset = 0;
    text.split_inclusive('\n')
        .enumerate()
        .map(move |(index, raw)| {
            let start = offset;
            offset += raw.len();
            let line = raw.strip_suffix('\n').unwrap_or(raw);
            (index + 1, start, line.strip_suffix('\r').unwrap_or(line))
        })
}

fn is_marker(line: &str, text: &str) -> bool {
    line.starts_with('#') && line.trim_matches(|c| c == '#' || c == '-' || c == ' ') == text
}

/// Where the parts of the file are.
struct Layout {
    start_line: usize,
    header_line: usize,
    /// Byte range of the data rows (after the header, up to the end marker).
    data: std::ops::Range<usize>,
    end_line: usize,
    end_offset: usize,
}

impl Layout {
    fn find(text: &str) -> Result<Layout> {
        let mut lines = lines(text);
        let mut start_line = None;
        for (line_no, _, line) in lines.by_ref() {
            if is_marker(line, START_MARKER) {
                start_line = Some(line_no);
                break;
            }
            if !line.starts_with('#') && !line.trim().is_empty() {
                return Err(StatementError::UnexpectedLine {
                    line: line_no,
                    reason: "data before the 业务明细列表 start marker".to_owned(),
                });
            }
        }
        let start_line = start_line.ok_or(StatementError::Missing {
            what: "the 业务明细列表 start marker",
        })?;
        let (header_line, header_offset, header) = lines.next().ok_or(StatementError::Missing {
            what: "the detail header after the start marker",
        })?;
        let header = header.trim_start_matches('\u{feff}');
        if header != DETAIL_HEADER {
            return Err(StatementError::UnknownHeader {
                line: header_line,
                looks_like: describe_header(header),
            });
        }
        let data_start = header_offset + text.get(header_offset..).map_or(0, line_len);
        for (line_no, offset, line) in lines {
            if is_marker(line, END_MARKER) {
                return Ok(Layout {
                    start_line,
                    header_line,
                    data: data_start..offset,
                    end_line: line_no,
                    end_offset: offset,
                });
            }
        }
        Err(StatementError::Missing {
            what: "the 业务明细列表结束 end marker",
        })
    }
}

/// Length of the first line of `rest` including its line end.
fn line_len(rest: &str) -> usize {
    rest.find('\n').map_or(rest.len(), |end| end + 1)
}

fn describe_header(header: &str) -> String {
    let columns = header.split(',').count();
    if header.contains("(元)") {
        format!(
            "the 25-column detail header with ASCII instead of full-width parentheses ({columns} columns)"
        )
    } else if header.contains("手续费（元）") {
        format!("a bank-channel variant with 手续费/费率 columns ({columns} columns)")
    } else if header.starts_with("门店编号") {
        "the 业务明细(汇总) summary file, not the detail file".to_owned()
    } else {
        format!("an unknown layout with {columns} columns: `{header}`")
    }
}

fn parse_rows(text: &str, layout: &Layout) -> Result<Vec<StatementRow>> {
    let data = text.get(layout.data.clone()).unwrap_or("");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data.as_bytes());
    let mut rows = Vec::with_capacity(data.len() / 200);
    let mut record = csv::StringRecord::new();
    let mut lines = RecordLines::new(data);
    loop {
        let before = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                return Err(StatementError::UnexpectedLine {
                    line: layout.header_line + record_line(data, before),
                    reason: format!("unreadable CSV: {error}"),
                });
            }
        }
        let start = record.position().map_or(0, csv::Position::byte);
        let line = layout.header_line + lines.line_of(start);
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != COLUMN_COUNT {
            return Err(StatementError::FieldCount {
                line,
                expected: COLUMN_COUNT,
                found: record.len(),
            });
        }
        rows.push(parse_row(&record, line)?);
    }
    Ok(rows)
}

/// Start of the record at byte `start`: a record's start may sit on the previous line end.
fn record_start(bytes: &[u8], start: u64) -> usize {
    let mut at = usize::try_from(start)
        .unwrap_or(bytes.len())
        .min(bytes.len());
    while bytes.get(at).is_some_and(|&b| b == b'\r' || b == b'\n') {
        at += 1;
    }
    at
}

/// 1-based line within `data` of the record starting at byte `start`. The csv reader's own
/// line counter lags on CRLF input, and a record's start may sit on the previous line end.
fn record_line(data: &str, start: u64) -> usize {
    let bytes = data.as_bytes();
    line_of_offset(bytes, record_start(bytes, start))
}

/// [`record_line`] for records read in order: counts only the line ends since the previous
/// record, so numbering every row of a file is linear in its size, not quadratic.
struct RecordLines<'a> {
    bytes: &'a [u8],
    /// Byte offset up to which line ends have been counted, and the 1-based line there.
    offset: usize,
    line: usize,
}

impl<'a> RecordLines<'a> {
    fn new(data: &'a str) -> RecordLines<'a> {
        RecordLines {
            bytes: data.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    fn line_of(&mut self, start: u64) -> usize {
        let at = record_start(self.bytes, start);
        if at < self.offset {
            // Not in order (never with the csv reader): count from the start.
            return line_of_offset(self.bytes, at);
        }
        let newlines = self
            .bytes
            .get(self.offset..at)
            .map_or(0, |span| span.iter().filter(|&&b| b == b'\n').count());
        self.line += newlines;
        self.offset = at;
        self.line
    }
}

/// A field with Alipay's padding (trailing tab, spaces) removed.
fn field(record: &csv::StringRecord, column: usize) -> &str {
    record
        .get(column)
        .unwrap_or("")
        .trim_matches(|c| c == '\t' || c == ' ')
}

fn bad(line: usize, column: &'static str, value: &str, expected: &'static str) -> StatementError {
    StatementError::BadValue {
        line,
        column,
        value: value.to_owned(),
        expected,
    }
}

fn parse_row(record: &csv::StringRecord, line: usize) -> Result<StatementRow> {
    const AMOUNT: &str = "a yuan amount with at most 2 decimals";
    let kind = match field(record, COL_TYPE) {
        "交易" => RowKind::Payment,
        "退款" => RowKind::Refund,
        other => return Err(bad(line, "业务类型", other, "交易 or 退款")),
    };
    let required = |column: usize, name: &'static str| -> Result<String> {
        let value = field(record, column);
        if value.is_empty() {
            return Err(bad(line, name, value, "present"));
        }
        Ok(value.to_owned())
    };
    let gateway_trade_no = required(COL_TRADE_NO, "支付宝交易号")?;
    let out_trade_no = required(COL_OUT_TRADE_NO, "商户订单号")?;
    let amount = |column: usize, name: &'static str| -> Result<i64> {
        let value = field(record, column);
        let fen = parse_fen(value).ok_or_else(|| bad(line, name, value, AMOUNT))?;
        match kind {
            RowKind::Payment if fen < 0 => Err(bad(line, name, value, "positive on a 交易 row")),
            _ => Ok(fen.abs()),
        }
    };
    let amount_fen = amount(COL_ORDER_AMOUNT, "订单金额（元）")?;
    let settlement_fen = amount(COL_RECEIVED, "商家实收（元）")?;
    // The fee column's sign is unconfirmed (notes A4.3): the one real-looking sample writes a
    // charged fee as -0.12, so the value is negated into "charged = positive". Empty means none.
    let fee_text = field(record, COL_FEE);
    let fee = if fee_text.is_empty() {
        Decimal::ZERO
    } else {
        -parse_yuan(fee_text, 2).ok_or_else(|| bad(line, "服务费（元）", fee_text, AMOUNT))?
    };
    let time_text = field(record, COL_FINISHED_AT);
    let trade_time = parse_time(time_text)
        .ok_or_else(|| bad(line, "完成时间", time_text, "a time yyyy-MM-dd HH:mm:ss"))?;
    let refund_no = Some(field(record, COL_REFUND_NO))
        .filter(|value| !value.is_empty())
        .map(str::to_owned);
    Ok(StatementRow {
        gateway: Channel::Alipay,
        kind,
        out_trade_no,
        gateway_trade_no,
        refund_no,
        amount_fen,
        settlement_fen,
        fee,
        trade_time,
        status: field(record, COL_TYPE).to_owned(),
        line_no: line,
    })
}
