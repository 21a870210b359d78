//! The Alipay `trade` bill as the download URL serves it (protocol notes A4.2 to A4.4): a zip
//! named `<PID>0156_<yyyyMMdd>.csv.zip` holding `..._业务明细.csv` and
//! `..._业务明细(汇总).csv`, both GBK, entry names GBK without the zip UTF-8 flag.
//!
//! The detail file has the `#` marker lines, the 25-column header with full-width
//! parentheses, one row per payment (`交易`, on its payment day) and per refund (`退款`, on
//! its completion day, amounts negative), ID-like fields followed by a TAB as Alipay writes
//! them, and the footer control totals. Lines end with CRLF (the files are made for Excel;
//! the line ending is not confirmed by the sources, parsers should accept both). Fees are
//! written as 0.00: the sign convention of `服务费（元）` is not confirmed.
//!
//! The zip is written here (stored sizes, deflate via flate2) because the name encoding must
//! be GBK with general-purpose flag bit 11 clear, which zip writers do not offer.

use std::io::Write as _;

use chrono::{DateTime, Datelike as _, NaiveDate, Timelike as _, Utc};
use flate2::Compression;
use flate2::write::DeflateEncoder;

use crate::gateway::amount::fen_to_yuan;
use crate::gateway::beijing::BEIJING;
use crate::sandbox::ledger::{SimRefund, SimTrade};

pub const DETAIL_START_MARKER: &str = "#-----------------------------------------业务明细列表----------------------------------------";
pub const DETAIL_END_MARKER: &str = "#-----------------------------------------业务明细列表结束------------------------------------";
pub const SUMMARY_START_MARKER: &str = "#-----------------------------------------业务汇总列表----------------------------------------";
pub const SUMMARY_END_MARKER: &str = "#----------------------------------------业务汇总列表结束-------------------------------------";
pub const DETAIL_HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";
pub const SUMMARY_HEADER: &str = "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）";
/// Suffix Alipay appends to the 16-digit PID in file names and the `#账号` line.
pub const ACCOUNT_SUFFIX: &str = "0156";
const LINE_END: &str = "\r\n";
const ZERO: &str = "0.00";

/// The day's trades as the bill sees them.
pub struct BillDay<'a> {
    pub seller_id: &'a str,
    pub day: NaiveDate,
    pub payments: &'a [&'a SimTrade],
    pub refunds: &'a [(&'a SimTrade, &'a SimRefund)],
    pub exported_at: DateTime<Utc>,
}

impl BillDay<'_> {
    fn account(&self) -> String {
        format!("{}{ACCOUNT_SUFFIX}", self.seller_id)
    }

    /// `<PID>0156_<yyyyMMdd>`, the stem of the zip and entry names.
    pub fn file_stem(&self) -> String {
        format!("{}_{}", self.account(), self.day.format("%Y%m%d"))
    }

    fn heading(&self, title: &str) -> Vec<String> {
        let next = self.day.succ_opt().unwrap_or(self.day);
        vec![
            format!("#{title}"),
            format!("#账号：[{}]", self.account()),
            format!(
                "#起始日期：[{} 00:00:00]   终止日期：[{} 00:00:00]",
                chinese_date(self.day),
                chinese_date(next)
            ),
        ]
    }

    fn export_line(&self) -> String {
        let at = self.exported_at.with_timezone(&BEIJING);
        format!(
            "#导出时间：[{} {:02}:{:02}:{:02}]",
            chinese_date(at.date_naive()),
            at.hour(),
            at.minute(),
            at.second()
        )
    }

    /// `业务明细.csv` as text (encode as GBK to get the file).
    pub fn detail_csv(&self) -> String {
        let mut lines = self.heading("支付宝业务明细查询");
        lines.push(DETAIL_START_MARKER.to_owned());
        lines.push(DETAIL_HEADER.to_owned());
        for trade in self.payments {
            lines.push(payment_row(trade));
        }
        for (trade, refund) in self.refunds {
            lines.push(refund_row(trade, refund));
        }
        lines.push(DETAIL_END_MARKER.to_owned());
        let paid: i64 = self.payments.iter().map(|t| t.amount_fen).sum();
        let refunded: i64 = self.refunds.iter().map(|(_, r)| r.amount_fen).sum();
        lines.push(format!(
            "#交易合计：{}笔，商家实收共{}元，商家优惠共0.00元",
            self.payments.len(),
            fen_to_yuan(paid)
        ));
        lines.push(format!(
            "#退款合计：{}笔，商家实收退款共{}元，商家优惠退款共0.00元",
            self.refunds.len(),
            fen_to_yuan(-refunded)
        ));
        lines.push(self.export_line());
        lines.join(LINE_END) + LINE_END
    }

    /// `业务明细(汇总).csv`: one row for the (unnamed) store and a total row.
    pub fn summary_csv(&self) -> String {
        let mut lines = self.heading("支付宝业务汇总查询");
        lines.push(SUMMARY_START_MARKER.to_owned());
        lines.push(SUMMARY_HEADER.to_owned());
        let paid: i64 = self.payments.iter().map(|t| t.amount_fen).sum();
        let refunded: i64 = self.refunds.iter().map(|(_, r)| r.amount_fen).sum();
        let net = fen_to_yuan(paid - refunded);
        for store in ["", "合计"] {
            lines.push(format!(
                "{store},,{},{},{net},{net},{ZERO},{ZERO},{ZERO},{ZERO},{ZERO},{net}",
                self.payments.len(),
                self.refunds.len()
            ));
        }
        lines.push(SUMMARY_END_MARKER.to_owned());
        lines.push(self.export_line());
        lines.join(LINE_END) + LINE_END
    }

    /// The zip file as served.
    pub fn zip(&self) -> std::io::Result<Vec<u8>> {
        let stem = self.file_stem();
        let entries = [
            (format!("{stem}_业务明细.csv"), self.detail_csv()),
            (format!("{stem}_业务明细(汇总).csv"), self.summary_csv()),
        ];
        let entries: Vec<(Vec<u8>, Vec<u8>)> = entries
            .iter()
            .map(|(name, text)| (gbk(name), gbk(text)))
            .collect();
        write_zip(&entries, self.exported_at)
    }
}

/// `2019年09月16日`.
fn chinese_date(day: NaiveDate) -> String {
    format!("{}年{:02}月{:02}日", day.year(), day.month(), day.day())
}

fn beijing_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&BEIJING)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Alipay writes ID-like and text fields with a trailing TAB so Excel keeps them as text.
fn text(value: &str) -> String {
    format!("{value}\t")
}

fn masked_buyer(trade: &SimTrade) -> String {
    let id = trade.buyer_id.as_deref().unwrap_or("");
    let tail = id.get(id.len().saturating_sub(4)..).unwrap_or("");
    text(&format!("*用户(138****{tail})"))
}

fn row(
    trade: &SimTrade,
    kind: &str,
    finished_at: DateTime<Utc>,
    amount: &str,
    request_no: &str,
) -> String {
    let fields = [
        text(trade.gateway_trade_no.as_deref().unwrap_or("")),
        text(&trade.out_trade_no),
        text(kind),
        text(&trade.subject),
        text(&beijing_time(trade.created_at)),
        text(&beijing_time(finished_at)),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        masked_buyer(trade),
        amount.to_owned(),
        amount.to_owned(),
        ZERO.to_owned(),
        ZERO.to_owned(),
        ZERO.to_owned(),
        ZERO.to_owned(),
        ZERO.to_owned(),
        String::new(),
        ZERO.to_owned(),
        ZERO.to_owned(),
        if request_no.is_empty() {
            String::new()
        } else {
            text(request_no)
        },
        ZERO.to_owned(),
        ZERO.to_owned(),
        String::new(),
    ];
    fields.join(",")
}

fn payment_row(trade: &SimTrade) -> String {
    let paid_at = trade.paid_at.unwrap_or(trade.created_at);
    row(trade, "交易", paid_at, &fen_to_yuan(trade.amount_fen), "")
}

fn refund_row(trade: &SimTrade, refund: &SimRefund) -> String {
    let amount = fen_to_yuan(-refund.amount_fen);
    row(
        trade,
        "退款",
        refund.completed_at,
        &amount,
        &refund.out_refund_no,
    )
}

/// GBK bytes; characters GBK lacks become HTML numeric references (encoding_rs behaviour).
pub fn gbk(text: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(text).0.into_owned()
}

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const END_OF_CENTRAL_SIG: u32 = 0x0605_4b50;
/// Version 2.0 (deflate); "made by" host 0 = MS-DOS, whose names are in the OEM code page.
const ZIP_VERSION: u16 = 20;
const METHOD_DEFLATE: u16 = 8;

fn too_big() -> std::io::Error {
    std::io::Error::other("zip entry too large")
}

fn u32_len(len: usize) -> std::io::Result<u32> {
    u32::try_from(len).map_err(|_| too_big())
}

fn u16_len(len: usize) -> std::io::Result<u16> {
    u16::try_from(len).map_err(|_| too_big())
}

/// MS-DOS time and date of `at` (Beijing wall clock).
fn dos_time(at: DateTime<Utc>) -> (u16, u16) {
    let local = at.with_timezone(&BEIJING);
    let time = (local.hour() << 11) | (local.minute() << 5) | (local.second() / 2);
    let year = u32::try_from(local.year() - 1980).unwrap_or(0);
    let date = (year << 9) | (local.month() << 5) | local.day();
    (
        u16::try_from(time).unwrap_or(0),
        u16::try_from(date).unwrap_or(0),
    )
}

/// A minimal zip: deflated entries with raw (GBK) names, flag bit 11 clear.
pub fn write_zip(entries: &[(Vec<u8>, Vec<u8>)], at: DateTime<Utc>) -> std::io::Result<Vec<u8>> {
    let (time, date) = dos_time(at);
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data)?;
        let compressed = encoder.finish()?;
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let offset = u32_len(out.len())?;
        let fixed = |buf: &mut Vec<u8>| -> std::io::Result<()> {
            buf.extend_from_slice(&ZIP_VERSION.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
            buf.extend_from_slice(&METHOD_DEFLATE.to_le_bytes());
            buf.extend_from_slice(&time.to_le_bytes());
            buf.extend_from_slice(&date.to_le_bytes());
            buf.extend_from_slice(&crc.sum().to_le_bytes());
            buf.extend_from_slice(&u32_len(compressed.len())?.to_le_bytes());
            buf.extend_from_slice(&u32_len(data.len())?.to_le_bytes());
            buf.extend_from_slice(&u16_len(name.len())?.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
            Ok(())
        };
        out.extend_from_slice(&LOCAL_HEADER_SIG.to_le_bytes());
        fixed(&mut out)?;
        out.extend_from_slice(name);
        out.extend_from_slice(&compressed);

        central.extend_from_slice(&CENTRAL_HEADER_SIG.to_le_bytes());
        central.extend_from_slice(&ZIP_VERSION.to_le_bytes());
        fixed(&mut central)?;
        // comment length, disk number, internal and external attributes
        central.extend_from_slice(&[0u8; 2 + 2 + 2 + 4]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let central_offset = u32_len(out.len())?;
    let count = u16_len(entries.len())?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&END_OF_CENTRAL_SIG.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&u32_len(central.len())?.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}
