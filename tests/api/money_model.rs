//! A stateful model test of the money paths: seeded random sequences of operations on a few
//! accounts (issue a bill, pay online through a verified notification or through our own query,
//! duplicated notifications, counter payments, refunds of either) through the real service and
//! the loopback gateways, checking after every step what must never break:
//! - every journal entry balances;
//! - each account's prepayment is its journal balance (and the balance the account row
//!   stores) and never below zero;
//! - no bill is paid beyond its total, and its status says what it was paid;
//! - no fen is created or lost: per account, the money that arrived equals what its bills
//!   received, plus its prepayment, plus what was refunded (or is reserved for a refund);
//! - a refund returns only money its own payment brought and left unapplied.
//!
//! A failure names its seed and step; `MODEL_SEED=N` replays one seed, `MODEL_SEEDS` and
//! `MODEL_STEPS` run a longer form.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tonic::Code;
use water_billing::config::PaymentsConfig;
use water_billing::grpc::pb;
use water_billing::sandbox::faults::Faults;

use crate::helpers::*;

const ACCOUNTS: [&str; 3] = ["A-1", "A-2", "A-3"];
const SEEDS_DEFAULT: u64 = 2;
const STEPS_DEFAULT: usize = 30;
/// Months billed before today at most (the meters are installed this long ago).
const MONTHS_BACK: u32 = 6;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn random_money_operations_never_create_lose_or_double_a_fen() {
    let steps = env_or("MODEL_STEPS", STEPS_DEFAULT);
    let seeds: Vec<u64> = match std::env::var("MODEL_SEED") {
        Ok(seed) => vec![seed.parse().expect("MODEL_SEED is a number")],
        Err(_) => (1..=env_or("MODEL_SEEDS", SEEDS_DEFAULT)).collect(),
    };
    for seed in seeds {
        run_seed(seed, steps).await;
    }
}

/// What the model remembers between steps.
struct Model {
    app: TestApp,
    db: DatabaseConnection,
    rng: StdRng,
    today: chrono::NaiveDate,
    /// Per account: the next period to bill (months before today) and its meter index.
    next_month_back: HashMap<&'static str, u32>,
    index: HashMap<&'static str, u64>,
    /// Online orders that succeeded, with their amounts in fen.
    online: Vec<(String, i64)>,
    counter: Vec<(String, i64)>,
    serial: u64,
}

async fn run_seed(seed: u64, steps: usize) {
    let app = spawn_sandbox_app(PaymentsConfig {
        pending_query_after_s: 0,
        ..Default::default()
    })
    .await;
    let db = Database::connect(&app.database_url).await.unwrap();
    let today = water_billing::gateway::beijing::beijing_date(chrono::Utc::now());
    let mut model = Model {
        app,
        db,
        rng: StdRng::seed_from_u64(seed),
        today,
        next_month_back: HashMap::new(),
        index: HashMap::new(),
        online: Vec::new(),
        counter: Vec::new(),
        serial: 0,
    };
    model.app.upsert_tariff(flat_tariff()).await;
    let installed = months_before(today, MONTHS_BACK + 1);
    for account in ACCOUNTS {
        model
            .app
            .residential_account(account, "FLAT", 4, 0, &installed.to_string())
            .await;
        model.next_month_back.insert(account, MONTHS_BACK);
        model.index.insert(account, 0);
    }
    for step in 0..steps {
        let account = ACCOUNTS[model.rng.gen_range(0..ACCOUNTS.len())];
        let op = model.rng.gen_range(0..100);
        let what = match op {
            0..=24 => model.issue_next(account).await,
            25..=39 => model.counter_payment(account).await,
            40..=74 => model.online_payment(account).await,
            _ => model.refund().await,
        };
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!("seed {seed} step {step}: {what}");
        }
        if let Err(broken) = model.check().await {
            panic!("seed {seed}, step {step} ({what}): {broken}");
        }
    }
}

/// The first day of the month `back` months before `today`'s.
fn months_before(today: chrono::NaiveDate, back: u32) -> chrono::NaiveDate {
    use chrono::Datelike;
    let first = today.with_day(1).unwrap();
    first - chrono::Months::new(back)
}

impl Model {
    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn random_amount(&mut self) -> String {
        let fen: i64 = self.rng.gen_range(1..=8_000);
        format!("{}.{:02}", fen / 100, fen % 100)
    }

    /// Reads the meter and bills the account's next period (if it has begun).
    async fn issue_next(&mut self, account: &'static str) -> String {
        let Some(&back) = self.next_month_back.get(account) else {
            return "no account".into();
        };
        let first = months_before(self.today, back);
        let read_on = (first + chrono::Days::new(9)).min(self.today);
        let used = self.rng.gen_range(1..=25);
        let index = self.index[account] + used;
        self.app
            .read(&format!("M-{account}"), index, &read_on.to_string())
            .await
            .unwrap();
        self.index.insert(account, index);
        let period = first.format("%Y-%m").to_string();
        let bill = self
            .app
            .issue(account, &period, &read_on.to_string())
            .await
            .unwrap();
        if back == 0 {
            self.next_month_back.remove(account);
        } else {
            self.next_month_back.insert(account, back - 1);
        }
        format!(
            "issue {} for {account} ({})",
            bill.bill_no, bill.total_amount
        )
    }

    async fn counter_payment(&mut self, account: &'static str) -> String {
        let amount = self.random_amount();
        let receipt = format!("R-{}", self.next_serial());
        let paid = self
            .app
            .payments
            .record_counter_payment(pb::RecordCounterPaymentRequest {
                account_no: account.into(),
                amount: amount.clone(),
                cashier_id: "C-1".into(),
                receipt_no: receipt,
            })
            .await
            .unwrap()
            .into_inner();
        self.counter
            .push((paid.out_trade_no.clone(), fen_of(&paid.amount)));
        format!("counter {amount} to {account}")
    }

    /// An order paid by the "customer"; its notification may be dropped (then our own query
    /// posts it) or duplicated.
    async fn online_payment(&mut self, account: &'static str) -> String {
        let channel = if self.rng.gen_bool(0.5) {
            "ALIPAY"
        } else {
            "WECHAT"
        };
        let faults = match self.rng.gen_range(0..4) {
            0 => Faults {
                drop_next_notifications: 1,
                ..Default::default()
            },
            1 => Faults {
                duplicate: 2,
                ..Default::default()
            },
            _ => Faults::default(),
        };
        let key = format!("order-{}", self.next_serial());
        let due = self.app.account(account, "").await.amount_due;
        let amount = if due != "0.00" && self.rng.gen_bool(0.6) {
            String::new()
        } else {
            self.random_amount()
        };
        let order = self
            .app
            .payments
            .create_payment(pb::CreatePaymentRequest {
                account_no: account.into(),
                channel: wire::<pb::Channel>(channel),
                amount: amount.clone(),
                idempotency_key: key,
            })
            .await
            .unwrap()
            .into_inner();
        let sandbox = self.app.sandbox.as_ref().unwrap();
        match channel {
            "ALIPAY" => {
                sandbox.alipay.set_faults(faults.clone());
                sandbox.alipay.pay(&order.out_trade_no).map(|_| ())
            }
            _ => {
                sandbox.wechat.set_faults(faults.clone());
                sandbox.wechat.pay(&order.out_trade_no).map(|_| ())
            }
        }
        .unwrap();
        let status = self.settle(&order.out_trade_no).await;
        assert_eq!(status, "SUCCEEDED", "order {}", order.out_trade_no);
        self.online
            .push((order.out_trade_no.clone(), fen_of(&order.amount)));
        format!("{channel} {} for {account} with {faults:?}", order.amount)
    }

    /// Polls the order until it leaves PENDING (a poll of a PENDING order queries the gateway).
    async fn settle(&mut self, out_trade_no: &str) -> String {
        for _ in 0..200 {
            let payment = self
                .app
                .payments
                .get_payment(pb::GetPaymentRequest {
                    out_trade_no: out_trade_no.into(),
                })
                .await
                .unwrap()
                .into_inner();
            if payment.status().short() != "PENDING" {
                return payment.status().short().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("order {out_trade_no} stayed PENDING");
    }

    /// A refund of part or all of a random earlier payment; the service may refuse it (arrears,
    /// nothing of that payment left to refund), never break the books.
    async fn refund(&mut self) -> String {
        let pool_len = self.online.len() + self.counter.len();
        if pool_len == 0 {
            return "refund: nothing paid yet".into();
        }
        let pick = self.rng.gen_range(0..pool_len);
        let online = pick < self.online.len();
        let (out_trade_no, amount_fen) = if online {
            self.online[pick].clone()
        } else {
            self.counter[pick - self.online.len()].clone()
        };
        let fen = self.rng.gen_range(1..=amount_fen.max(1));
        let amount = format!("{}.{:02}", fen / 100, fen % 100);
        let refund_no = format!("RF-{}", self.next_serial());
        let payments = &mut self.app.payments;
        let answer = if online {
            payments
                .refund_payment(pb::RefundPaymentRequest {
                    out_trade_no: out_trade_no.clone(),
                    amount: amount.clone(),
                    reason: "model".into(),
                    refund_no,
                })
                .await
        } else {
            // Cash goes back over the counter, recorded with its cashier.
            payments
                .refund_counter_payment(pb::RefundCounterPaymentRequest {
                    out_trade_no: out_trade_no.clone(),
                    amount: amount.clone(),
                    reason: "model".into(),
                    refund_no,
                    cashier_id: "C-1".into(),
                })
                .await
        };
        let outcome = match answer {
            Ok(refund) => refund.into_inner().status().short().to_owned(),
            Err(status)
                if matches!(status.code(), Code::FailedPrecondition | Code::Unavailable) =>
            {
                format!("{:?}", status.code())
            }
            Err(status) => panic!("refund of {out_trade_no} failed unexpectedly: {status:?}"),
        };
        format!("refund {amount} of {out_trade_no}: {outcome}")
    }

    /// Every invariant, straight from the database; the first broken one is returned.
    async fn check(&self) -> Result<(), String> {
        let unbalanced = self
            .pairs(
                "SELECT CAST(0 AS BIGINT) AS k, COUNT(*) AS v FROM (SELECT entry_key FROM journal_postings \
                 GROUP BY entry_key HAVING SUM(debit_fen) <> SUM(credit_fen)) t",
            )
            .await;
        if unbalanced.get(&0).copied().unwrap_or(0) != 0 {
            return Err(format!("{unbalanced:?} journal entries do not balance"));
        }
        let bad_bills = self
            .pairs(
                "SELECT CAST(0 AS BIGINT) AS k, COUNT(*) AS v FROM bills WHERE principal_paid_fen > total_fen \
                 OR principal_paid_fen < 0 OR late_fee_paid_fen < 0 \
                 OR (status = 'PAID' AND principal_paid_fen <> total_fen) \
                 OR (status = 'UNPAID' AND principal_paid_fen + late_fee_paid_fen <> 0)",
            )
            .await;
        if bad_bills.get(&0).copied().unwrap_or(0) != 0 {
            return Err("a bill is paid beyond its total or its status lies".into());
        }
        let prepayment = self
            .pairs(
                "SELECT account_id AS k, CAST(SUM(credit_fen) - SUM(debit_fen) AS BIGINT) AS v \
                 FROM journal_postings WHERE ledger = 'PREPAYMENT' AND account_id IS NOT NULL \
                 GROUP BY account_id",
            )
            .await;
        if let Some((account, balance)) = prepayment.iter().find(|(_, v)| **v < 0) {
            return Err(format!("account {account} has prepayment {balance} fen"));
        }
        let column = self
            .pairs("SELECT id AS k, prepayment_fen AS v FROM accounts")
            .await;
        for (account, stored) in &column {
            let journal = prepayment.get(account).copied().unwrap_or(0);
            if *stored != journal {
                return Err(format!(
                    "account {account} stores prepayment {stored} fen, its journal says {journal}"
                ));
            }
        }
        let arrived = self
            .pairs(
                "SELECT account_id AS k, CAST(SUM(amount_fen) AS BIGINT) AS v FROM payments \
                 WHERE status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED') GROUP BY account_id",
            )
            .await;
        let to_bills = self
            .pairs(
                "SELECT account_id AS k, CAST(SUM(principal_paid_fen + late_fee_paid_fen) AS BIGINT) AS v \
                 FROM bills GROUP BY account_id",
            )
            .await;
        let refunded = self
            .pairs(
                "SELECT p.account_id AS k, CAST(SUM(r.amount_fen) AS BIGINT) AS v FROM refunds r \
                 JOIN payments p ON p.id = r.payment_id WHERE r.status IN ('PENDING', 'SUCCEEDED') \
                 GROUP BY p.account_id",
            )
            .await;
        let over_refunded = self
            .pairs(
                "SELECT p.id AS k, CAST(p.amount_fen - COALESCE(a.fen, 0) - COALESCE(r.fen, 0) AS BIGINT) AS v \
                 FROM payments p \
                 LEFT JOIN (SELECT payment_id, SUM(principal_fen + late_fee_fen) AS fen \
                            FROM payment_allocations GROUP BY payment_id) a ON a.payment_id = p.id \
                 LEFT JOIN (SELECT payment_id, SUM(amount_fen) AS fen FROM refunds \
                            WHERE status IN ('PENDING', 'SUCCEEDED') GROUP BY payment_id) r \
                   ON r.payment_id = p.id",
            )
            .await;
        if let Some((payment, left)) = over_refunded.iter().find(|(_, v)| **v < 0) {
            return Err(format!(
                "payment {payment} refunded {} fen more than it left unapplied",
                -left
            ));
        }
        let mut accounts: Vec<i64> = arrived.keys().chain(to_bills.keys()).copied().collect();
        accounts.sort_unstable();
        accounts.dedup();
        for account in accounts {
            let get = |m: &HashMap<i64, i64>| m.get(&account).copied().unwrap_or(0);
            let (came, billed, kept, out) = (
                get(&arrived),
                get(&to_bills),
                get(&prepayment),
                get(&refunded),
            );
            if came != billed + kept + out {
                return Err(format!(
                    "account {account}: {came} fen arrived but bills got {billed}, prepayment \
                     holds {kept} and refunds took {out}"
                ));
            }
        }
        Ok(())
    }

    /// A two-column (`k`, `v`) query as a map.
    async fn pairs(&self, sql: &str) -> HashMap<i64, i64> {
        let rows = self
            .db
            .query_all_raw(Statement::from_string(self.db.get_database_backend(), sql))
            .await
            .unwrap();
        rows.iter()
            .map(|row| (row.try_get("", "k").unwrap(), row.try_get("", "v").unwrap()))
            .collect()
    }
}

fn fen_of(amount: &str) -> i64 {
    let (yuan, fen) = amount.split_once('.').unwrap_or((amount, "0"));
    yuan.parse::<i64>().unwrap() * 100 + fen.parse::<i64>().unwrap()
}
