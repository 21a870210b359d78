//! The bench's business day: a deterministic mix of matched payments and exceptions, kept as
//! the simulator's trades (rendered into the channel's real statement file by the sandbox's
//! own bill writers) and as the ledger rows the bench seeds, so both sides come from one plan
//! and the expected class counts are known exactly before anything is matched.
//!
//! The mix ([`Mix::for_rows`]) for N statement rows: 0.5 % refund rows (matched against our
//! refunds), 0.5 % gateway-only payments (unknown orders), 0.5 % ledger-only payments, 0.2 %
//! amount mismatches, and a few duplicates (same account and amount paid twice), refunds on
//! the statement only, ledger-only payments at 23:55 (HELD) and statement rows at 23:59:5x
//! that are our payments of the next business date (AUTO_RESOLVED). Everything else matches.

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;

use crate::app::payments::beijing_to_utc;
use crate::app::settlement::PaymentChannel;
use crate::app::settlement::{PARTIALLY_REFUNDED, SUCCEEDED};
use crate::domain::reconcile::ReconcileTotals;
use crate::gateway::beijing::BEIJING;
use crate::sandbox::alipay::bill as alipay_bill;
use crate::sandbox::ledger::{SimRefund, SimTrade, SimTradeStatus};
use crate::sandbox::wechat::bill as wechat_bill;

/// Fewest rows for which every exception class gets at least one item.
pub const ROWS_MIN: usize = 1_000;
/// The generator's shuffle seed: the same N always gives the same files.
const SEED: u64 = 20_250_314;
/// Normal payments fall between 00:15 and 22:00 Beijing time: far from the near-midnight
/// window, and a refund one hour later stays on the same day.
const DAY_START_SECS: u32 = 15 * 60;
const DAY_SPAN_SECS: u32 = 22 * 3600 - DAY_START_SECS;
const REFUND_DELAY_SECS: i64 = 3_600;
const DUPLICATE_DELAY_SECS: i64 = 60;

/// How many items of each kind a day of `rows` statement rows holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub rows: usize,
    pub matched: usize,
    pub duplicates: usize,
    pub amount_mismatches: usize,
    pub gateway_only: usize,
    pub cross_day: usize,
    pub ledger_only: usize,
    pub held: usize,
    pub refunds: usize,
    pub refund_only: usize,
}

/// What matching must report for the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub statement_rows: usize,
    pub ledger_payments: usize,
    pub ledger_refunds: usize,
    pub matched: usize,
    pub gateway_only: usize,
    pub ledger_only: usize,
    pub amount_mismatch: usize,
    pub status_mismatch: usize,
    pub duplicate: usize,
    pub open: usize,
    pub held: usize,
    pub auto_resolved: usize,
}

impl Mix {
    pub fn for_rows(rows: usize) -> anyhow::Result<Mix> {
        anyhow::ensure!(rows >= ROWS_MIN, "--rows must be at least {ROWS_MIN}");
        let per_mille = |n: usize| rows * n / 1_000;
        let few = |per: usize| (rows / per).max(1);
        let (refunds, refund_only) = (per_mille(5), few(100_000));
        let (duplicates, amount_mismatches) = (few(50_000), per_mille(2));
        let (gateway_only, cross_day) = (per_mille(5), few(100_000));
        let payment_rows = rows - refunds - refund_only;
        let matched = payment_rows - duplicates - amount_mismatches - gateway_only - cross_day;
        Ok(Mix {
            rows,
            matched,
            duplicates,
            amount_mismatches,
            gateway_only,
            cross_day,
            ledger_only: per_mille(5),
            held: few(100_000),
            refunds,
            refund_only,
        })
    }

    pub fn expected(&self) -> Expected {
        let discrepancies = self.gateway_only
            + self.cross_day
            + self.ledger_only
            + self.held
            + self.amount_mismatches
            + self.refund_only
            + self.duplicates;
        Expected {
            statement_rows: self.rows,
            ledger_payments: self.matched
                + self.duplicates
                + self.amount_mismatches
                + self.ledger_only
                + self.held,
            ledger_refunds: self.refunds,
            matched: self.matched + self.refunds,
            gateway_only: self.gateway_only + self.cross_day,
            ledger_only: self.ledger_only + self.held,
            amount_mismatch: self.amount_mismatches,
            status_mismatch: self.refund_only,
            duplicate: self.duplicates,
            open: discrepancies - self.held - self.cross_day,
            held: self.held,
            auto_resolved: self.cross_day,
        }
    }
}

impl Expected {
    /// Every count of `totals` that differs from the plan, or `Ok`.
    pub fn check(&self, totals: &ReconcileTotals) -> anyhow::Result<()> {
        let checks = [
            ("statement rows", self.statement_rows, totals.gateway_count),
            (
                "ledger entries",
                self.ledger_payments + self.ledger_refunds,
                totals.ledger_count,
            ),
            ("MATCHED", self.matched, totals.matched_count),
            ("GATEWAY_ONLY", self.gateway_only, totals.gateway_only.count),
            ("LEDGER_ONLY", self.ledger_only, totals.ledger_only.count),
            (
                "AMOUNT_MISMATCH",
                self.amount_mismatch,
                totals.amount_mismatch.count,
            ),
            (
                "STATUS_MISMATCH",
                self.status_mismatch,
                totals.status_mismatch.count,
            ),
            ("DUPLICATE", self.duplicate, totals.duplicate.count),
            ("OPEN", self.open, totals.open_count),
            ("HELD", self.held, totals.held_count),
            (
                "AUTO_RESOLVED",
                self.auto_resolved,
                totals.auto_resolved_count,
            ),
        ];
        let wrong: Vec<String> = checks
            .iter()
            .filter(|(_, expected, actual)| expected != actual)
            .map(|(what, expected, actual)| format!("{what}: expected {expected}, got {actual}"))
            .collect();
        anyhow::ensure!(wrong.is_empty(), "matching is wrong: {}", wrong.join("; "));
        Ok(())
    }
}

/// One payment row of our `payments` table.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub out_trade_no: String,
    pub gateway_trade_no: String,
    pub account_no: String,
    pub amount_fen: i64,
    pub status: &'static str,
    pub refunded_fen: i64,
    pub paid_at: DateTime<Utc>,
    pub business_date: NaiveDate,
}

/// One completed refund of our `refunds` table.
#[derive(Debug, Clone)]
pub struct LedgerRefundEntry {
    /// Index into [`Day::ledger`].
    pub payment: usize,
    pub refund_no: String,
    pub gateway_refund_id: String,
    pub amount_fen: i64,
    pub completed_at: DateTime<Utc>,
}

/// Both sides of the bench's business day.
pub struct Day {
    pub date: NaiveDate,
    pub mix: Mix,
    /// The gateway's trades of the day, in statement order.
    pub trades: Vec<SimTrade>,
    /// Refund rows: index into `trades` and the refund.
    pub refunds: Vec<(usize, SimRefund)>,
    /// Our payments: those of `date`, then the next day's cross-day ones.
    pub ledger: Vec<LedgerEntry>,
    pub ledger_refunds: Vec<LedgerRefundEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Matched,
    AmountMismatch,
    GatewayOnly,
    CrossDay,
    LedgerOnly,
    Held,
}

/// Beijing wall clock on `date` plus `secs`, as UTC.
fn at(date: NaiveDate, secs: i64) -> anyhow::Result<DateTime<Utc>> {
    let local = date.and_time(NaiveTime::MIN) + TimeDelta::seconds(secs);
    beijing_to_utc(local).context("Beijing time")
}

fn account_no(n: usize) -> String {
    format!("{:03}{n:07}", n % 97 + 1)
}

impl Day {
    pub fn generate(mix: Mix, date: NaiveDate) -> anyhow::Result<Day> {
        let mut roles = Vec::with_capacity(mix.rows + mix.ledger_only + mix.held);
        for (role, count) in [
            (Role::Matched, mix.matched),
            (Role::AmountMismatch, mix.amount_mismatches),
            (Role::GatewayOnly, mix.gateway_only),
            (Role::CrossDay, mix.cross_day),
            (Role::LedgerOnly, mix.ledger_only),
            (Role::Held, mix.held),
        ] {
            roles.extend(std::iter::repeat_n(role, count));
        }
        roles.shuffle(&mut rand::rngs::StdRng::seed_from_u64(SEED));
        let mut day = Day {
            date,
            mix,
            trades: Vec::with_capacity(mix.rows),
            refunds: Vec::with_capacity(mix.refunds + mix.refund_only),
            ledger: Vec::with_capacity(roles.len() + mix.duplicates),
            ledger_refunds: Vec::with_capacity(mix.refunds),
        };
        // (trade index, ledger index) of plain matched payments: originals of duplicates and
        // refunded payments are taken from here.
        let mut matched = Vec::with_capacity(mix.matched);
        for (n, role) in roles.into_iter().enumerate() {
            if let Some(pair) = day.push(n, role)? {
                matched.push(pair);
            }
        }
        let pick = |from: usize, count: usize| matched.get(from..from + count).unwrap_or(&[]);
        let (d, r, s) = (mix.duplicates, mix.refunds, mix.refund_only);
        anyhow::ensure!(matched.len() >= d + r + s, "too few matched payments");
        for (k, &(_, ledger)) in pick(0, d).iter().enumerate() {
            day.push_duplicate(k, ledger)?;
        }
        for &(trade, ledger) in pick(d, r) {
            day.push_refund(trade, Some(ledger))?;
        }
        for &(trade, _) in pick(d + r, s) {
            day.push_refund(trade, None)?;
        }
        Ok(day)
    }

    /// Adds item `n`; returns (trade, ledger) indices for a plain matched payment.
    fn push(&mut self, n: usize, role: Role) -> anyhow::Result<Option<(usize, usize)>> {
        let spread = u32::try_from(n % 1_000_003).unwrap_or(0);
        let secs = i64::from(DAY_START_SECS + spread.wrapping_mul(7_919) % DAY_SPAN_SECS);
        let amount_fen = 2_000 + i64::try_from(n.wrapping_mul(7_919) % 28_000).unwrap_or(0);
        let (paid_at, row_at, business_date) = match role {
            Role::CrossDay => {
                let next = self.date.succ_opt().context("date")?;
                let k = i64::try_from(n % 10).unwrap_or(0);
                (at(next, k)?, at(self.date, 86_390 + k)?, next)
            }
            Role::Held => {
                let k = i64::try_from(n % 240).unwrap_or(0);
                let paid = at(self.date, 86_100 + k)?;
                (paid, paid, self.date)
            }
            _ => {
                let paid = at(self.date, secs)?;
                (paid, paid, self.date)
            }
        };
        let entry = LedgerEntry {
            out_trade_no: format!(
                "WB{}{n:010}",
                row_at.with_timezone(&BEIJING).format("%Y%m%d%H%M%S")
            ),
            gateway_trade_no: format!("{}22001{n:015}", self.date.format("%Y%m%d")),
            account_no: account_no(n),
            amount_fen,
            status: SUCCEEDED,
            refunded_fen: 0,
            paid_at,
            business_date,
        };
        let on_statement = !matches!(role, Role::LedgerOnly | Role::Held);
        let trade_fen = match role {
            Role::AmountMismatch if n.is_multiple_of(2) => amount_fen + 100,
            Role::AmountMismatch => amount_fen - 1,
            _ => amount_fen,
        };
        let trade = on_statement.then(|| sim_trade(&entry, trade_fen, row_at, self.date));
        if let Some(trade) = trade {
            self.trades.push(trade);
        }
        if role != Role::GatewayOnly {
            self.ledger.push(entry);
        }
        Ok((role == Role::Matched).then(|| (self.trades.len() - 1, self.ledger.len() - 1)))
    }

    /// The same account pays the same amount again a minute after `original`.
    fn push_duplicate(&mut self, k: usize, original: usize) -> anyhow::Result<()> {
        let first = self.ledger.get(original).context("original payment")?;
        let paid_at = first.paid_at + TimeDelta::seconds(DUPLICATE_DELAY_SECS);
        let entry = LedgerEntry {
            out_trade_no: format!("WBDUP{k:021}"),
            gateway_trade_no: format!("{}22009{k:015}", self.date.format("%Y%m%d")),
            paid_at,
            ..first.clone()
        };
        self.trades
            .push(sim_trade(&entry, entry.amount_fen, paid_at, self.date));
        self.ledger.push(entry);
        Ok(())
    }

    /// A partial refund of trade `trade` an hour after it was paid; recorded in our ledger too
    /// unless `ledger` is `None` (refunded on the gateway's side only).
    fn push_refund(&mut self, trade: usize, ledger: Option<usize>) -> anyhow::Result<()> {
        let paid = self.trades.get(trade).context("refunded trade")?;
        let completed_at =
            paid.paid_at.unwrap_or(paid.created_at) + TimeDelta::seconds(REFUND_DELAY_SECS);
        let k = self.refunds.len();
        let refund = SimRefund {
            out_refund_no: format!("RF{}{k:08}", self.date.format("%Y%m%d")),
            refund_id: format!("50{}{k:018}", self.date.format("%Y%m%d")),
            amount_fen: (paid.amount_fen / 2).max(1),
            reason: "水费退款".to_owned(),
            requested_at: completed_at,
            completed_at,
            business_date: self.date,
        };
        if let Some(payment) = ledger {
            let entry = self.ledger.get_mut(payment).context("refunded payment")?;
            entry.status = PARTIALLY_REFUNDED;
            entry.refunded_fen = refund.amount_fen;
            self.ledger_refunds.push(LedgerRefundEntry {
                payment,
                refund_no: refund.out_refund_no.clone(),
                gateway_refund_id: refund.refund_id.clone(),
                amount_fen: refund.amount_fen,
                completed_at,
            });
        }
        self.refunds.push((trade, refund));
        Ok(())
    }
}

fn sim_trade(
    entry: &LedgerEntry,
    amount_fen: i64,
    paid_at: DateTime<Utc>,
    date: NaiveDate,
) -> SimTrade {
    SimTrade {
        out_trade_no: entry.out_trade_no.clone(),
        gateway_trade_no: Some(entry.gateway_trade_no.clone()),
        subject: format!("水费 账户{}", entry.account_no),
        amount_fen,
        status: SimTradeStatus::Paid,
        code_url: String::new(),
        notify_url: None,
        buyer_id: Some(format!("2088{:012}", entry.amount_fen * 7_919)),
        created_at: paid_at - TimeDelta::seconds(30),
        paid_at: Some(paid_at),
        closed_at: None,
        business_date: Some(date),
        refunds: Vec::new(),
        fingerprint: String::new(),
    }
}

/// Alipay PID and WeChat ids the statements are written for.
const SELLER_ID: &str = "2088000000000002";
const WECHAT_APP_ID: &str = "wxbench0000000001";
const WECHAT_MCH_ID: &str = "1900000001";

impl Day {
    /// The statement as the gateway serves it: Alipay's zip of GBK CSV files, WeChat's `ALL`
    /// bill gzipped (what the service downloads with `tar_type=GZIP`). Returns the file name
    /// and the bytes.
    pub fn statement_file(&self, channel: PaymentChannel) -> anyhow::Result<(String, Vec<u8>)> {
        let payments: Vec<&SimTrade> = self.trades.iter().collect();
        let refunds = self
            .refunds
            .iter()
            .map(|(trade, refund)| Ok((self.trades.get(*trade).context("trade")?, refund)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        match channel {
            PaymentChannel::Alipay => {
                let bill = alipay_bill::BillDay {
                    seller_id: SELLER_ID,
                    day: self.date,
                    payments: &payments,
                    refunds: &refunds,
                    exported_at: at(self.date, 86_400 + 6 * 3_600)?,
                };
                Ok((format!("{}.csv.zip", bill.file_stem()), bill.zip()?))
            }
            PaymentChannel::Wechat => {
                let bill = wechat_bill::BillDay {
                    app_id: WECHAT_APP_ID,
                    mch_id: WECHAT_MCH_ID,
                    payments: &payments,
                    refunds: &refunds,
                };
                let name = format!("wechat_{}_ALL.csv.gz", self.date.format("%Y%m%d"));
                Ok((name, wechat_bill::gzip(bill.text().as_bytes())?))
            }
            PaymentChannel::Counter => anyhow::bail!("the counter has no statement"),
        }
    }

    /// Our payments of the business date as plain UTF-8 CSV, for `bench/join.py`.
    pub fn ledger_csv(&self) -> String {
        use std::fmt::Write as _;
        let mut csv = String::with_capacity(self.ledger.len() * 110);
        csv.push_str(
            "out_trade_no,gateway_trade_no,account_no,amount_fen,status,refunded_fen,paid_at\n",
        );
        for entry in self.ledger.iter().filter(|e| e.business_date == self.date) {
            let paid_at = entry.paid_at.with_timezone(&BEIJING);
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{}",
                entry.out_trade_no,
                entry.gateway_trade_no,
                entry.account_no,
                entry.amount_fen,
                entry.status,
                entry.refunded_fen,
                paid_at.format("%Y-%m-%d %H:%M:%S")
            );
        }
        csv
    }
}
