//! Wiring only: build metrics, readiness, the authenticator and the proxy from
//! a validated config, then serve the proxy and admin listeners until the
//! shutdown future completes, and drain within the configured time.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::admin::AdminService;
use crate::backchannel::Backchannel;
use crate::config::{Config, Limits, ShutdownConfig};
use crate::decision::Decider;
use crate::jwks::{JwksMetrics, KeyStores};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::readiness::Readiness;
use crate::reload::{self, ConfigSource, Reloader};
use crate::revocation::{self, Revocations};
use crate::server::{self, Listener};
use crate::session::{self, Sessions, control::ControlService};
use prometheus::IntGauge;

/// The already-bound sockets `run` serves; tests bind port 0.
pub struct Listeners {
    /// The public proxy port.
    pub proxy: TcpListener,
    /// The admin port (metrics, health).
    pub admin: TcpListener,
    /// The session control port, when `sessions` is configured.
    pub control: Option<TcpListener>,
    /// The decision port for ingresses and meshes, when `decision` is configured.
    pub decision: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses named in `config`.
    pub async fn bind(config: &Config) -> Result<Listeners, RunError> {
        let control = match &config.sessions {
            Some(s) => Some(bind(s.control.listen).await?),
            None => None,
        };
        let decision = match &config.decision {
            Some(d) => Some(bind(d.listen).await?),
            None => None,
        };
        Ok(Listeners {
            proxy: bind(config.listen).await?,
            admin: bind(config.admin.listen).await?,
            control,
            decision,
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })
}

/// Why the app could not be built or served.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A listener address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate and key do not form a usable pair.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A metric could not be registered (a bug: names collide).
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The revocation mirror could not be set up.
    #[error("{0}")]
    Revocation(#[from] revocation::SetupError),
    /// The session service could not be set up.
    #[error("{0}")]
    Sessions(#[from] session::SetupError),
}

/// A built, not yet serving, tokengate.
pub struct App {
    proxy: Arc<Proxy>,
    reloader: Reloader,
    revocations: Revocations,
    metrics: Arc<Metrics>,
    connections: IntGauge,
    readiness: Readiness,
    sessions: Option<Arc<Sessions>>,
    decider: Option<Arc<Decider>>,
    decision_tls: Option<TlsAcceptor>,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: ShutdownConfig,
}

impl App {
    /// Builds every component; binds nothing. `check-config` stops here.
    /// Reloads read the file the config came from, if it came from one.
    pub fn new(config: Config) -> Result<App, RunError> {
        crate::install_crypto_providers();
        for note in &config.notes {
            tracing::info!(note, "configuration note");
        }
        let metrics = Arc::new(Metrics::new()?);
        let connections = crate::server::connections_gauge(metrics.registry())?;
        let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        let decision_tls = config
            .decision
            .as_ref()
            .and_then(|d| d.tls.as_ref())
            .map(crate::tls::acceptor)
            .transpose()?;
        let readiness = Readiness::new();
        let revocations = Revocations::new(&config.revocation, config.auth.leeway)?;
        revocations.register(metrics.registry())?;
        let mirror = revocations.clone();
        readiness.add_check(Arc::new(move || mirror.not_ready_reason()));
        let providers = reload::ProviderMetrics {
            jwks: JwksMetrics::new(metrics.registry())?,
            introspection: crate::auth::IntrospectionMetrics::new(metrics.registry())?,
        };
        let key_stores = KeyStores::default();
        key_stores.register(metrics.registry())?;
        let stores = key_stores.clone();
        readiness.add_check(Arc::new(move || stores.not_ready_reason()));
        let (snapshot, state, _) = reload::build(&config, None, &providers);
        key_stores.set(state.stores().to_vec());
        let sessions = match &config.sessions {
            Some(s) => Some(Arc::new(Sessions::new(
                s,
                &config.revocation,
                revocations.clone(),
                metrics.registry(),
            )?)),
            None => None,
        };
        let mut proxy = Proxy::new(snapshot, revocations.clone(), metrics.registry())?;
        if let Some(s) = &sessions {
            proxy = proxy.with_sessions(s.clone());
        }
        let browser = config
            .sessions
            .as_ref()
            .and_then(|c| Some((c, c.browser.as_ref()?)))
            .zip(sessions.as_ref());
        if let Some(((c, b), s)) = browser {
            proxy = proxy.with_browser(Arc::new(crate::browser::Browser::new(
                b.clone(),
                &c.path_prefix,
                s.clone(),
                metrics.registry(),
            )?));
        }
        if let Some(b) = &config.backchannel_logout {
            let mut receiver = Backchannel::new(
                b.clone(),
                revocations.clone(),
                config.revocation.max_token_lifetime,
                metrics.registry(),
            )?;
            // A logout at the provider ends the browser sessions it opened.
            if let Some(((_, b), s)) = browser {
                receiver = receiver.ending_sessions_of(&b.issuer, s.clone());
            }
            proxy = proxy.with_backchannel(Arc::new(receiver));
        }
        let proxy = Arc::new(proxy);
        let decider = match &config.decision {
            Some(d) => Some(Decider::new(proxy.clone(), d, metrics.registry())?),
            None => None,
        };
        let source = match &config.path {
            Some(path) => ConfigSource::File(path.clone()),
            None => ConfigSource::Inline,
        };
        let reloader = Reloader::new(source, proxy.clone(), metrics.registry(), key_stores, providers, state)?;
        Ok(App {
            proxy,
            reloader,
            revocations,
            metrics,
            connections,
            readiness,
            sessions,
            decider,
            decision_tls,
            tls,
            limits: config.limits,
            shutdown: config.shutdown,
        })
    }

    /// The handle that reloads the configuration (SIGHUP, file changes).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// The readiness shared with `/readyz`.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// The revocation mirror the request path consults.
    pub fn revocations(&self) -> Revocations {
        self.revocations.clone()
    }

    /// The metrics shared with `/metrics`.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serves until `shutdown` completes; then `/readyz` turns 503, the proxy
    /// keeps accepting for `shutdown.delay`, stops accepting, and drains for
    /// at most `shutdown.drain_timeout`. The admin listener outlives the drain.
    pub async fn run(self, listeners: Listeners, shutdown: impl Future<Output = ()> + Send) -> Result<(), RunError> {
        self.run_with_reloads(listeners, shutdown, None).await
    }

    /// [`App::run`], also reloading the configuration each time `reloads`
    /// yields: the binary feeds it SIGHUP ([`crate::signal::hangups`]), an
    /// embedder or a test its own trigger, so both behave alike. A refused
    /// reload is logged and counted; the running configuration keeps serving.
    pub async fn run_with_reloads(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send,
        reloads: Option<tokio::sync::mpsc::Receiver<()>>,
    ) -> Result<(), RunError> {
        let App {
            proxy,
            reloader,
            revocations,
            metrics,
            connections,
            readiness,
            sessions,
            decider,
            decision_tls,
            tls,
            limits,
            shutdown: shutdown_config,
        } = self;
        let addr = |l: &TcpListener| l.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string());
        tracing::info!(
            proxy = %addr(&listeners.proxy),
            admin = %addr(&listeners.admin),
            tls = tls.is_some(),
            "tokengate listening"
        );

        // Background tasks beside the request path; aborted after the drain.
        let mut background = Vec::new();
        if let Some(target) = revocations.redis() {
            background.push(revocation::sync::spawn(
                revocations.clone(),
                target.clone(),
                readiness.latch(),
            ));
        }
        background.push(tokio::spawn(revocations.clone().watch_staleness()));
        reloader.start().await;
        background.push(tokio::spawn(reloader.clone().watch()));
        if let Some(mut reloads) = reloads {
            let on_demand = reloader.clone();
            background.push(tokio::spawn(async move {
                while reloads.recv().await.is_some() {
                    let _ = on_demand.reload().await;
                }
            }));
        }

        let admin_service = AdminService::new(metrics.clone(), readiness.clone(), revocations);
        let one_second = std::time::Duration::from_secs(1);
        let admin = side_listener(
            listeners.admin,
            None,
            &limits,
            move |peer, _, _| admin_service.for_peer(peer),
            one_second,
        );

        // The control listener stops with the admin listener, after the drain,
        // so the app can still end sessions while requests finish.
        let control = match (sessions, listeners.control) {
            (Some(sessions), Some(socket)) => {
                tracing::info!(control = %addr(&socket), "session control listening");
                let service = ControlService::new(sessions);
                Some(side_listener(
                    socket,
                    None,
                    &limits,
                    move |peer, _, _| service.for_peer(peer),
                    one_second,
                ))
            }
            _ => None,
        };

        // The decision listener answers ingresses until the proxy has
        // drained: their requests in flight still need answers.
        let decision = match (decider, listeners.decision) {
            (Some(decider), Some(socket)) => {
                tracing::info!(decision = %addr(&socket), tls = decision_tls.is_some(), "decision listening");
                Some(side_listener(
                    socket,
                    decision_tls,
                    &limits,
                    move |peer, _, _| decider.service(peer),
                    shutdown_config.drain_timeout,
                ))
            }
            _ => None,
        };

        let draining = readiness.clone();
        let delay = shutdown_config.delay;
        let drained = server::serve(
            Listener {
                socket: listeners.proxy,
                tls,
                limits,
                new_service: move |peer, tls, lease| proxy.service(peer, tls, lease),
                drain_timeout: shutdown_config.drain_timeout,
                connections: Some(connections.clone()),
            },
            async move {
                shutdown.await;
                draining.set_draining();
                tracing::info!(delay = ?delay, "shutdown requested; /readyz now 503");
                tokio::time::sleep(delay).await;
            },
        )
        .await;
        tracing::info!(aborted = drained.aborted, "proxy drained");
        for (stop, task) in [Some(admin), control, decision].into_iter().flatten() {
            let _ = stop.send(());
            let _ = task.await;
        }
        for task in background {
            task.abort();
        }
        reloader.stop().await;
        Ok(())
    }
}

/// A listener beside the proxy's (admin, control, decision), served until
/// its stop signal, after the proxy has drained.
type SideListener = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<server::Drained>,
);

fn side_listener<F, S, B>(
    socket: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: &Limits,
    new_service: F,
    drain_timeout: std::time::Duration,
) -> SideListener
where
    F: Fn(SocketAddr, bool, server::Lease) -> S + Send + 'static,
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(
        Listener {
            socket,
            tls,
            limits: limits.clone(),
            new_service,
            drain_timeout,
            connections: None,
        },
        async {
            let _ = stopped.await;
        },
    ));
    (stop, task)
}

/// Builds and serves `config` on `listeners` until `shutdown` completes.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    App::new(config)?.run(listeners, shutdown).await
}
