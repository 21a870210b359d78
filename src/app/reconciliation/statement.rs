//! Getting one day's statement: from a file finance already has, or downloaded through the
//! channel's client. "Not ready yet" is `AppError::NotReady`, which the caller can retry
//! later; "no trades that day" is an empty statement. A file that fails the strict parser is
//! rejected whole.

use std::path::Path;

use chrono::NaiveDate;

use super::progress::{OnPhase, ReconcilePhase};
use crate::app::gateways::Channel;
use crate::app::settlement::PaymentChannel;
use crate::app::{App, AppError, AppResult};
use crate::gateway::alipay::client::BillUrl;
use crate::gateway::error::GatewayError;
use crate::gateway::statement::{self, ControlTotals, STATEMENT_BYTES_MAX, Statement};
use crate::gateway::wechat::client::{BillTarType, TradeBill};

/// Resolves a statement file named by an API caller: it must lie inside the configured
/// statement directory, so the API cannot be used to read other files of the server.
pub fn api_file(dir: Option<&Path>, name: &str) -> AppResult<std::path::PathBuf> {
    let Some(dir) = dir else {
        return Err(AppError::FailedPrecondition(
            "importing statement files through the API needs BILLING_STATEMENT_DIR; \
             or use `water-billing reconcile --file`"
                .to_owned(),
        ));
    };
    let outside = || AppError::invalid("file", "must name a file inside the statement directory");
    let root = dir.canonicalize().map_err(|_| outside())?;
    let path = root.join(name).canonicalize().map_err(|_| outside())?;
    if !path.starts_with(&root) || !path.is_file() {
        return Err(outside());
    }
    Ok(path)
}

/// The statement file of `date`, from `file` or downloaded, telling `on_phase`; `None` when
/// the gateway had no trades that day. [`parse_fetched`] turns it into the statement.
pub async fn fetch_bytes(
    app: &App,
    channel: PaymentChannel,
    date: NaiveDate,
    file: Option<&Path>,
    on_phase: OnPhase<'_>,
) -> AppResult<Option<Vec<u8>>> {
    on_phase(ReconcilePhase::FetchingStatement {
        downloading: file.is_none(),
    });
    match file {
        Some(path) => Ok(Some(read_file(path)?)),
        None => download_bytes(app, channel, date).await,
    }
}

/// The statement's SHA-256 (lower-case hex) as parsing will record it: of the bytes handed to
/// the parser, or of nothing for a day without trades. Known before parsing, so a statement
/// recorded before is recognised without parsing it again.
pub fn sha256_hex(bytes: Option<&[u8]>) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        bytes.unwrap_or_default(),
    ))
}

/// Parses what [`fetch_bytes`] returned; `None` is the empty statement.
pub fn parse_fetched(channel: PaymentChannel, bytes: Option<&[u8]>) -> AppResult<Statement> {
    match bytes {
        Some(bytes) => parse(channel, bytes),
        None => Ok(empty(channel)),
    }
}

/// Reads a statement file, refusing one larger than [`STATEMENT_BYTES_MAX`].
pub fn read_file(path: &Path) -> AppResult<Vec<u8>> {
    let size = std::fs::metadata(path)
        .map_err(|e| AppError::invalid("file", format!("{}: {e}", path.display())))?
        .len();
    if size > STATEMENT_BYTES_MAX {
        return Err(AppError::invalid(
            "file",
            format!("larger than {STATEMENT_BYTES_MAX} bytes"),
        ));
    }
    std::fs::read(path).map_err(|e| AppError::invalid("file", format!("{}: {e}", path.display())))
}

/// Parses statement bytes strictly; a rejection names the line.
pub fn parse(channel: PaymentChannel, bytes: &[u8]) -> AppResult<Statement> {
    let parsed = match channel {
        PaymentChannel::Alipay if bytes.starts_with(b"PK") => {
            statement::alipay::parse_alipay_zip(bytes)
        }
        PaymentChannel::Alipay => statement::alipay::parse_alipay_csv(bytes),
        PaymentChannel::Wechat => statement::wechat::parse_wechat_bill(bytes),
        PaymentChannel::Counter => return Err(counter_has_no_statement()),
    };
    parsed.map_err(|e| AppError::invalid("statement", format!("rejected, nothing recorded: {e}")))
}

fn counter_has_no_statement() -> AppError {
    AppError::invalid(
        "channel",
        "COUNTER has no gateway statement; cashiers close their day with CloseCashierDay",
    )
}

/// A statement with no rows: the gateway had no trades that day.
pub fn empty(channel: PaymentChannel) -> Statement {
    Statement {
        channel: match channel {
            PaymentChannel::Wechat => statement::Channel::Wechat,
            PaymentChannel::Alipay | PaymentChannel::Counter => statement::Channel::Alipay,
        },
        account: None,
        business_date: None,
        rows: Vec::new(),
        totals: ControlTotals::default(),
        sha256: sha256_hex(None),
    }
}

fn gateway_failed(channel: PaymentChannel, err: &GatewayError) -> AppError {
    if err.is_unknown() {
        AppError::Unavailable(format!(
            "the {} gateway did not answer the statement download ({err}); retry",
            channel.as_str()
        ))
    } else {
        AppError::FailedPrecondition(format!(
            "the {} gateway refused the statement download: {err}",
            channel.as_str()
        ))
    }
}

fn not_ready(channel: PaymentChannel, date: NaiveDate) -> AppError {
    AppError::NotReady(format!(
        "the {} statement of {date} is not ready yet (gateways publish it after ~10:00 Beijing time the next day); retry later",
        channel.as_str()
    ))
}

/// The statement file of `date` as the gateway sends it; `None` when the gateway had no trades
/// that day.
async fn download_bytes(
    app: &App,
    channel: PaymentChannel,
    date: NaiveDate,
) -> AppResult<Option<Vec<u8>>> {
    let now = app.now();
    let fail = |e: GatewayError| gateway_failed(channel, &e);
    match channel {
        PaymentChannel::Alipay => {
            let client = enabled(&app.gateways.alipay)?;
            match client.bill_download_url(date, now).await.map_err(fail)? {
                BillUrl::Url(url) => Ok(Some(client.download_bill(&url).await.map_err(fail)?)),
                BillUrl::NoBill => Ok(None),
                BillUrl::NotReady => Err(not_ready(channel, date)),
            }
        }
        PaymentChannel::Wechat => {
            let client = enabled(&app.gateways.wechat)?;
            match client
                .trade_bill(date, BillTarType::Gzip, now)
                .await
                .map_err(fail)?
            {
                TradeBill::Ready {
                    hash_value,
                    download_url,
                } => Ok(Some(
                    client
                        .download_bill(&download_url, &hash_value, now)
                        .await
                        .map_err(fail)?,
                )),
                TradeBill::NoStatement => Ok(None),
                TradeBill::NotReady => Err(not_ready(channel, date)),
            }
        }
        PaymentChannel::Counter => Err(counter_has_no_statement()),
    }
}

fn enabled<T>(channel: &Channel<T>) -> AppResult<&std::sync::Arc<T>> {
    channel
        .enabled()
        .map_err(|why| AppError::FailedPrecondition(why.to_owned()))
}
