//! The composition root: opens the store, builds the pool, the relay and the edge, spawns the
//! background tasks (prober, state persistence, refresh) on one tracker, and serves until told
//! to stop. The only place that names a backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use axum::serve::ListenerExt;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounting::{Accountant, recorder};
use crate::admin;
use crate::clients::ClientDirectory;
use crate::config::Config;
use crate::edge::{self, EdgeConfig, EdgeState, Readiness};
use crate::keyring;
use crate::pool::KeyPool;
use crate::providers::Anthropic;
use crate::providers::oauth::TokenEndpoint;
use crate::relay::Relay;
use crate::relay::probe::Prober;
use crate::relay::refresh::Refresher;
use crate::store::{self, Ledger, Retention, Store, Stores, TransitionRow};
use crate::telemetry::metrics::Metrics;
use crate::types::now_ms;
use crate::vault::{self, Vault};

/// How often the server re-reads clients and credentials changed by the CLI.
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// The store (with its usage ledger) and the vault that opens its secrets, checked against
/// each other.
pub async fn open_store(config: &Config) -> anyhow::Result<(Stores, Vault)> {
    let path = config.database_path();
    let stores = store::open_sqlite(&path)
        .await
        .with_context(|| format!("cannot open the store at {}", path.display()))?;
    let store = &stores.store;
    let (master_key, origin) = vault::load_master_key(
        config.master_key.as_ref().map(|s| s.expose().clone()),
        config.master_key_file.as_deref(),
        &config.data_dir,
    )?;
    let vault = Vault::new(&master_key);
    if !keyring::verify_master_key(store.as_ref(), &vault).await? {
        bail!(
            "the master key from {origin} does not open the store at {}: start with the master \
             key this store was created with ({} or security.master-key-file)",
            path.display(),
            vault::MASTER_KEY_ENV
        );
    }
    Ok((stores, vault))
}

/// A running gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub pool: KeyPool,
    pub store: Arc<dyn Store>,
    pub ledger: Arc<dyn Ledger>,
    pub accountant: Accountant,
    pub metrics: Metrics,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    grace: Duration,
}

impl Running {
    /// Resolves when a shutdown was requested and every task has finished (or the grace passed).
    pub async fn wait(&self) {
        self.shutdown.cancelled().await;
        self.tracker.close();
        if tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over; abandoning open requests");
        }
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.wait().await;
    }

    /// Waits until every usage record generated so far is written or dropped.
    pub async fn ledger_settled(&self) {
        self.accountant.ledger_counters().settled().await;
    }
}

struct StoreReadiness(Arc<dyn Store>);

#[async_trait]
impl Readiness for StoreReadiness {
    async fn store_reachable(&self) -> bool {
        self.0.ping().await.is_ok()
    }
}

/// Starts the gateway on the configured address (port 0 picks a free one).
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let (Stores { store, ledger }, vault) = open_store(&config).await?;
    keyring::sync_config_keys(store.as_ref(), &vault, &config.keys).await?;
    let specs = keyring::load_specs(store.as_ref(), &vault).await?;
    let persisted = store
        .key_states()
        .await?
        .into_iter()
        .map(keyring::persisted)
        .collect();
    let pool = KeyPool::new(config.pool.clone(), specs, persisted, now_ms());
    let upstream = Anthropic::new(&config.upstream);
    let metrics = Metrics::new(config.gen_ai_metrics);
    let (recorder, writer) = recorder::channel(ledger.clone(), config.ledger.writer.clone());
    let accountant = Accountant::new(config.prices.clone(), recorder, metrics.clone());
    let vault = Arc::new(vault);
    let refresher = Refresher::new(
        TokenEndpoint::new(
            config.upstream.oauth_token_url.clone(),
            config.upstream.oauth_client_id.clone(),
            config.upstream.connect_timeout.max(Duration::from_secs(10)),
        ),
        store.clone(),
        Arc::clone(&vault),
        pool.clone(),
    );
    let relay = Relay::new(
        pool.clone(),
        accountant.clone(),
        upstream.clone(),
        config.upstream.clone(),
        store.clone(),
        Some(refresher),
    );
    let clients = ClientDirectory::load(store.clone()).await?;
    if config.require_client_key && store.clients().await?.is_empty() {
        tracing::warn!(
            "client keys are required but none exists yet: create one with `keyloop clients create NAME`"
        );
    }

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    // The ledger writer stops last: it is told only once the servers have drained.
    let servers_done = CancellationToken::new();
    let writer_done = writer
        .start(servers_done.clone())
        .context("cannot start the ledger writer's thread")?;
    tracker.spawn(async move {
        if writer_done.await.is_err() {
            tracing::error!("the ledger writer stopped abnormally; queued records are lost");
        }
    });
    tracker.spawn(
        metrics
            .clone()
            .upkeep(Duration::from_secs(5), shutdown.clone()),
    );
    tracker.spawn(retention(
        ledger.clone(),
        config.ledger.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(persist_transitions(
        pool.clone(),
        store.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let prober = Prober {
        pool: pool.clone(),
        upstream,
        model: config.upstream.probe_model.clone(),
        timeout: config.upstream.connect_timeout + Duration::from_secs(20),
    };
    tracker.spawn(prober.clone().run(tracker.clone(), shutdown.clone()));
    let admin_token = admin::auth::load_token(
        store.as_ref(),
        config.admin_token.as_ref(),
        &config.data_dir,
    )
    .await?;
    let gate = admin::Gate::new(admin_token);
    let changes = Arc::new(tokio::sync::Mutex::new(()));
    tracker.spawn(refresh(
        Refreshed {
            pool: pool.clone(),
            clients: clients.clone(),
            store: store.clone(),
            vault: vault.clone(),
            gate: config.admin_token.is_none().then(|| gate.clone()),
            changes: changes.clone(),
        },
        shutdown.clone(),
    ));
    let admin = admin::Admin {
        pool: pool.clone(),
        store: store.clone(),
        ledger: ledger.clone(),
        vault,
        clients: clients.clone(),
        accountant: accountant.clone(),
        prober,
        audit: admin::Audit::new(store.clone()),
        gate,
        changes,
        shutdown: shutdown.clone(),
    };

    let edge = EdgeState::new(
        relay,
        clients,
        EdgeConfig {
            require_client_key: config.require_client_key,
            body_limit: config.server.body_limit,
            request_timeout: config.server.request_timeout,
            session_header: config.session_header.clone(),
        },
        Arc::new(StoreReadiness(store.clone())),
        metrics.clone(),
    );
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        // Small SSE frames must leave at once, not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
    });
    let admin_listener = tokio::net::TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (admin)", config.admin_listen))?;
    let admin_addr = admin_listener.local_addr()?;
    let gauges = {
        let pool = pool.clone();
        let accountant = accountant.clone();
        let metrics = metrics.clone();
        move || refresh_gauges(&pool, &accountant, &metrics)
    };
    let admin_router = admin::router(metrics.clone(), Arc::new(gauges), admin)
        .into_make_service_with_connect_info::<SocketAddr>();

    let stop = shutdown.clone();
    let router = edge::router(edge);
    let api = axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned());
    let admin_api = axum::serve(admin_listener, admin_router)
        .with_graceful_shutdown(stop.clone().cancelled_owned());
    tracker.spawn(async move {
        let (api, admin_api) = tokio::join!(api.into_future(), admin_api.into_future());
        for (name, served) in [("api", api), ("admin", admin_api)] {
            if let Err(e) = served {
                tracing::error!(error = %e, listener = name, "server stopped");
                stop.cancel();
            }
        }
        servers_done.cancel();
    });
    tracing::info!(
        %addr,
        %admin_addr,
        panel = %format_args!("http://{admin_addr}/admin/"),
        credentials = pool.len(),
        "keyloop is listening"
    );
    Ok(Running {
        addr,
        admin_addr,
        pool,
        store,
        ledger,
        accountant,
        metrics,
        shutdown,
        tracker,
        grace: config.server.shutdown_grace,
    })
}

/// Gauges read at scrape time: credential states and the ledger's counters.
fn refresh_gauges(pool: &KeyPool, accountant: &Accountant, metrics: &Metrics) {
    let mut counts: Vec<(&'static str, u64)> = ["active", "cooling_down", "probing", "disabled"]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
    for view in pool.snapshot(now_ms()) {
        if let Some(entry) = counts.iter_mut().find(|(s, _)| *s == view.state) {
            entry.1 += 1;
        }
    }
    metrics.set_credential_states(&counts);
    let stats = accountant.ledger_stats();
    metrics.ledger(stats.queued, stats.written, stats.dropped, stats.generated);
}

/// Deletes raw records and roll-ups past their retention, once at start-up and then hourly.
async fn retention(
    ledger: Arc<dyn Ledger>,
    config: crate::config::LedgerConfig,
    shutdown: CancellationToken,
) {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    loop {
        let now = now_ms();
        let cut = Retention {
            raw_before: now - ms(config.raw_retention),
            minute_before: now - ms(config.minute_retention),
            hour_before: now - ms(config.hour_retention),
        };
        match ledger.purge(&cut).await {
            Ok(purged) if purged.raw + purged.minute + purged.hour > 0 => {
                tracing::info!(
                    raw = purged.raw,
                    minute = purged.minute,
                    hour = purged.hour,
                    "usage retention applied"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "usage retention failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

/// Every credential transition is persisted, so health survives a restart.
async fn persist_transitions(
    pool: KeyPool,
    store: Arc<dyn Store>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let mut transitions = pool.subscribe();
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => break,
            received = transitions.recv() => received,
        };
        match received {
            Ok(t) => {
                metrics.credential_transition(t.from, t.to);
                let row = TransitionRow {
                    key_id: t.key_id.to_string(),
                    at: t.at,
                    from_state: t.from.to_owned(),
                    to_state: t.to.to_owned(),
                    reason: t.reason.clone(),
                    until: t.until,
                };
                if let Err(e) = store
                    .record_transition(&keyring::state_row(&t.state), &row)
                    .await
                {
                    tracing::error!(error = %e, key = %t.name, "could not persist a credential transition");
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "transition persistence fell behind; saving full state"
                );
                for state in pool.persisted() {
                    if let Err(e) = store.save_key_state(&keyring::state_row(&state)).await {
                        tracing::error!(error = %e, "could not persist credential state");
                    }
                }
            }
            Err(RecvError::Closed) => break,
        }
    }
    // Whatever happened last is on disk before the process ends.
    for state in pool.persisted() {
        let _ = store.save_key_state(&keyring::state_row(&state)).await;
    }
}

/// What the server re-reads from the store: changes made by the CLI while it runs.
struct Refreshed {
    pool: KeyPool,
    clients: ClientDirectory,
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    /// Set when the admin token is the stored one (not the config's): a reset takes over.
    gate: Option<admin::Gate>,
    /// Shared with the admin API's credential changes (see `admin::Admin::changes`).
    changes: Arc<tokio::sync::Mutex<()>>,
}

/// Picks up clients, credentials and an admin token changed by the CLI while the server runs.
async fn refresh(refreshed: Refreshed, shutdown: CancellationToken) {
    let Refreshed {
        pool,
        clients,
        store,
        vault,
        gate,
        changes,
    } = refreshed;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(REFRESH_EVERY) => {}
        }
        if let Err(e) = clients.refresh().await {
            tracing::warn!(error = %e, "could not refresh clients");
        }
        let synced = {
            let _changing = changes.lock().await;
            keyring::sync_pool(&pool, store.as_ref(), &vault).await
        };
        if let Err(e) = synced {
            tracing::warn!(error = %e, "could not refresh credentials");
        }
        if let Some(gate) = &gate {
            match admin::auth::stored_token(store.as_ref()).await {
                Ok(Some(digest)) => gate.set_token(digest),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not re-read the admin token"),
            }
        }
    }
}
