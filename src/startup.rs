//! Builds the service from its configuration: connects the database, applies migrations, binds
//! the gRPC and HTTP listeners and serves until the shutdown future resolves, with the
//! background tasks (payment sweeper, refund sweeper, daily reconciliation when scheduled)
//! beside them. Tests bind port 0 through the same code.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::app::App;
use crate::app::gateways::Gateways;
use crate::config::ServeConfig;
use crate::scheduler::DailyReconciliation;

pub mod gateways;

use self::gateways::Sandbox;

pub struct Server {
    app: App,
    grpc: TcpListener,
    http: TcpListener,
    sandbox: Option<Sandbox>,
    /// The daily reconciliation, when `--reconcile-schedule` is on.
    daily: Option<DailyReconciliation>,
}

impl Server {
    pub async fn build(config: &ServeConfig) -> anyhow::Result<Self> {
        let settings = config.billing.settings().map_err(anyhow::Error::msg)?;
        let daily = DailyReconciliation::from_config(&config.schedule)?;
        let db = crate::db::connect(&config.database)
            .await
            .with_context(|| format!("connecting to {}", config.database.redacted_url()))?;
        if !config.no_migrate {
            crate::db::migrate(&db)
                .await
                .context("applying migrations")?;
        }
        let grpc = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding the gRPC address {}", config.grpc_addr))?;
        let http = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding the HTTP address {}", config.http_addr))?;
        let http_base = format!("http://{}", http.local_addr()?);
        let (gateways, sandbox) = if config.sandbox {
            let (gateways, sandbox) =
                gateways::sandbox(&http_base, config.sandbox_keys.clone()).await?;
            tracing::info!(
                alipay = %sandbox.alipay.base_url(),
                wechat = %sandbox.wechat.base_url(),
                "sandbox gateways started; pay an order with POST <simulator>/sandbox/pay"
            );
            (gateways, Some(sandbox))
        } else {
            (Gateways::from_config(&config.alipay, &config.wechat)?, None)
        };
        for why in [
            gateways.alipay.enabled().err(),
            gateways.wechat.enabled().err(),
        ]
        .into_iter()
        .flatten()
        {
            tracing::warn!("{why}");
        }
        let app = App::new(db, settings)
            .with_gateways(gateways, config.payments.clone())
            .start_committer();
        Ok(Self {
            app,
            grpc,
            http,
            sandbox,
            daily,
        })
    }

    /// The loopback simulators, when started with `--sandbox`.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// Hands the simulators to the caller (tests drive them); they stop when dropped.
    pub fn take_sandbox(&mut self) -> Option<Sandbox> {
        self.sandbox.take()
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// Serves both listeners until `shutdown` resolves, then drains in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let routes = crate::grpc::routes(self.app.clone()).await?;
        let sweeper = tokio::spawn(sweep_forever(self.app.clone(), stop_rx.clone()));
        let refund_sweeper = tokio::spawn(sweep_refunds_forever(self.app.clone(), stop_rx.clone()));
        let daily = self
            .daily
            .map(|daily| tokio::spawn(daily.run_until_stopped(self.app.clone(), stop_rx.clone())));
        let mut grpc_stop = stop_rx.clone();
        let grpc = tonic::transport::Server::builder()
            .timeout(std::time::Duration::from_secs(REQUEST_TIMEOUT_S))
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.grpc), async move {
                let _ = grpc_stop.wait_for(|stop| *stop).await;
            });
        let mut http_stop = stop_rx;
        let http = axum::serve(self.http, crate::http::router(self.app.clone()))
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            });
        let (grpc, http) = tokio::join!(grpc, async { http.await });
        sweeper.abort();
        refund_sweeper.abort();
        // A run cut short rolls back: it records in one transaction.
        if let Some(daily) = daily {
            daily.abort();
        }
        drop(self.sandbox);
        grpc.context("gRPC server")?;
        http.context("HTTP server")?;
        Ok(())
    }
}

/// Refreshes stale PENDING orders every `sweep_interval_s` until shutdown, at its own pace:
/// one bounded round at a time, never overlapping.
async fn sweep_forever(app: App, mut stop: tokio::sync::watch::Receiver<bool>) {
    let interval = std::time::Duration::from_secs(app.payments.sweep_interval_s.max(1));
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(interval) => {}
        }
        match app.sweep_pending().await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "refreshed stale pending payments"),
            Err(err) => tracing::warn!(error = ?err, "payment sweep failed; retrying next round"),
        }
    }
}

/// Longest pause of the refund sweeper while the gateway does not answer.
const REFUND_SWEEP_BACKOFF_MAX_S: u64 = 600;

/// Settles PENDING refunds every `refund_sweep_interval_s` until shutdown: one bounded round
/// at a time, never overlapping; a full round continues after its last refund next time, so
/// refunds stuck PENDING (CLOSED, ABNORMAL) cannot starve newer ones. While the gateway does
/// not answer, the pause doubles up to [`REFUND_SWEEP_BACKOFF_MAX_S`]. The state is in the
/// database, so a restart resumes where it was; replicas may sweep concurrently (each answer
/// is applied under the account lock).
async fn sweep_refunds_forever(app: App, mut stop: tokio::sync::watch::Receiver<bool>) {
    let base_s = app.payments.refund_sweep_interval_s.max(1);
    let mut pause_s = base_s;
    let mut after_id = 0;
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(pause_s)) => {}
        }
        match app.sweep_refunds_after(after_id).await {
            Ok(sweep) => {
                let full = sweep.looked_at >= app.payments.refund_sweep_batch_max;
                after_id = if full { sweep.last_id.unwrap_or(0) } else { 0 };
                pause_s = if sweep.inconclusive > 0 {
                    (pause_s * 2).min(REFUND_SWEEP_BACKOFF_MAX_S.max(base_s))
                } else {
                    base_s
                };
                if sweep.looked_at > 0 {
                    tracing::info!(?sweep, next_in_s = pause_s, "refund sweep round");
                }
            }
            Err(err) => {
                pause_s = (pause_s * 2).min(REFUND_SWEEP_BACKOFF_MAX_S.max(base_s));
                tracing::warn!(error = ?err, next_in_s = pause_s, "refund sweep failed; backing off");
            }
        }
    }
}

/// Upper bound on one unary request; the billing cycle's stream is not cut by it.
const REQUEST_TIMEOUT_S: u64 = 600;

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining");
}
