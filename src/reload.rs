//! Hot reload: SIGHUP, or a change of the config file or a file it names,
//! reads the configuration again. A valid one replaces the request path's
//! snapshot (auth, keys, routes, upstream) while listeners keep running; an
//! invalid one is logged and counted, and the running configuration keeps
//! serving. Remote key sets whose settings did not change are carried over,
//! so a reload neither refetches them nor drops readiness.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError, Problem, ReloadConfig, SessionsConfig, UpstreamConfig};
use crate::jwks::{self, JwksMetrics, KeyStore, KeyStores};
use crate::proxy::forward::Upstream;
use crate::proxy::{Proxy, Snapshot};
use prometheus::{IntCounterVec, Opts, Registry};

/// Where the running configuration is read from again.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A file (relative paths inside it resolve against its directory).
    File(PathBuf),
    /// Text with no file behind it (the embedded dev config, a test's YAML):
    /// there is nothing to read again.
    Inline,
}

/// What a reload compares against and carries over.
pub(crate) struct State {
    upstream_config: UpstreamConfig,
    upstream: Arc<Upstream>,
    stores: Vec<Arc<KeyStore>>,
    listen: SocketAddr,
    admin: SocketAddr,
    files: Vec<PathBuf>,
    watch: ReloadConfig,
    /// The session service's settings, which only a restart may change.
    sessions: Option<String>,
    /// The back-channel logout receiver's settings, likewise.
    backchannel: Option<crate::config::BackchannelConfig>,
    /// Fetch tasks of the stores; finished ones are dropped on each reload.
    tasks: Vec<JoinHandle<()>>,
}

impl State {
    /// The remote key stores of this configuration.
    pub(crate) fn stores(&self) -> &[Arc<KeyStore>] {
        &self.stores
    }
}

/// The counters of an issuer's remote endpoints, registered once and
/// shared by every snapshot a reload builds.
#[derive(Clone)]
pub struct ProviderMetrics {
    /// `tokengate_jwks_fetches_total`, for the key stores.
    pub jwks: JwksMetrics,
    /// `tokengate_introspections_total`, for the introspecting issuer.
    pub introspection: crate::auth::IntrospectionMetrics,
}

/// Builds the reloadable request path for `config`, reusing the upstream
/// client and the key stores of `previous` where their settings are equal.
/// Returns the snapshot, the new state, and the stores that need a fetch task.
pub(crate) fn build(
    config: &Config,
    previous: Option<&State>,
    providers: &ProviderMetrics,
) -> (Snapshot, State, Vec<Arc<KeyStore>>) {
    let upstream = match previous {
        Some(p) if p.upstream_config == config.upstream => p.upstream.clone(),
        _ => Arc::new(Upstream::new(&config.upstream)),
    };
    let mut fresh = Vec::new();
    let stores: Vec<Arc<KeyStore>> = config
        .auth
        .issuers
        .iter()
        .filter_map(|issuer| {
            let remote = issuer.remote.as_ref()?;
            let kept = previous
                .into_iter()
                .flat_map(|p| p.stores.iter())
                .find(|s| s.issuer() == issuer.issuer && s.remote() == remote);
            Some(match kept {
                Some(store) => store.clone(),
                None => {
                    let store = KeyStore::new(&issuer.issuer, remote.clone(), providers.jwks.clone());
                    fresh.push(store.clone());
                    store
                }
            })
        })
        .collect();
    let snapshot = Snapshot::from_config(config, &stores, upstream.clone()).with_introspection(
        &config.auth,
        &stores,
        config.limits.max_token_bytes,
        &providers.introspection,
    );
    let files = config.path.iter().chain(&config.files).cloned().collect();
    let state = State {
        upstream_config: config.upstream.clone(),
        upstream,
        stores,
        listen: config.listen,
        admin: config.admin.listen,
        files,
        watch: config.reload.clone(),
        sessions: config.sessions.as_ref().map(SessionsConfig::fingerprint),
        backchannel: config.backchannel_logout.clone(),
        tasks: Vec::new(),
    };
    (snapshot, state, fresh)
}

/// The `result` label of `tokengate_config_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new configuration serves.
    Ok,
    /// Refused; the running configuration keeps serving.
    Invalid,
}

impl ReloadResult {
    /// Both results.
    pub const ALL: [ReloadResult; 2] = [ReloadResult::Ok, ReloadResult::Invalid];

    /// The `result` label value.
    pub const fn label(self) -> &'static str {
        match self {
            ReloadResult::Ok => "ok",
            ReloadResult::Invalid => "invalid",
        }
    }
}

/// `tokengate_config_reloads_total{result}`.
struct ReloadMetrics(IntCounterVec);

impl ReloadMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let reloads = IntCounterVec::new(
            Opts::new("tokengate_config_reloads_total", "Configuration reloads, by result."),
            &["result"],
        )?;
        for result in ReloadResult::ALL {
            reloads.with_label_values(&[result.label()]);
        }
        registry.register(Box::new(reloads.clone()))?;
        Ok(ReloadMetrics(reloads))
    }

    fn record(&self, result: ReloadResult) {
        self.0.with_label_values(&[result.label()]).inc();
    }
}

/// Applies reloads; cheap to clone.
#[derive(Clone)]
pub struct Reloader(Arc<Inner>);

struct Inner {
    source: ConfigSource,
    proxy: Arc<Proxy>,
    metrics: ReloadMetrics,
    key_stores: KeyStores,
    providers: ProviderMetrics,
    state: Mutex<State>,
}

impl Reloader {
    pub(crate) fn new(
        source: ConfigSource,
        proxy: Arc<Proxy>,
        registry: &Registry,
        key_stores: KeyStores,
        providers: ProviderMetrics,
        state: State,
    ) -> Result<Reloader, prometheus::Error> {
        Ok(Reloader(Arc::new(Inner {
            source,
            proxy,
            metrics: ReloadMetrics::new(registry)?,
            key_stores,
            providers,
            state: Mutex::new(state),
        })))
    }

    /// Starts the fetch tasks of the initial key stores.
    pub(crate) async fn start(&self) {
        let mut state = self.0.state.lock().await;
        let handles: Vec<_> = state.stores.iter().map(jwks::fetch::spawn).collect();
        state.tasks.extend(handles);
    }

    /// Stops every fetch task (after the drain).
    pub(crate) async fn stop(&self) {
        for task in self.0.state.lock().await.tasks.drain(..) {
            task.abort();
        }
    }

    /// Reads the configuration again and applies it if it is valid. On error
    /// the running configuration stays; the error says why.
    pub async fn reload(&self) -> Result<(), ConfigError> {
        let ConfigSource::File(path) = &self.0.source else {
            tracing::warn!("this configuration was not read from a file; nothing to reload");
            return Ok(());
        };
        let config = match Config::load(path) {
            Ok(config) => config,
            Err(e) => {
                self.0.metrics.record(ReloadResult::Invalid);
                tracing::error!(error = %e, "reload refused; the running configuration keeps serving");
                return Err(e);
            }
        };
        let mut state = self.0.state.lock().await;
        // The running service signs with the old key; accepting a new
        // verifier key under it would refuse every token it issues. The
        // logout receiver is built once too: a change would silently not apply.
        let fixed = if config.sessions.as_ref().map(SessionsConfig::fingerprint) != state.sessions {
            Some((
                "sessions",
                "changed: the session service (key, issuer, lifetimes, listener) is fixed at start; restart to apply",
            ))
        } else if config.backchannel_logout != state.backchannel {
            Some((
                "backchannel_logout",
                "changed (or turned on or off by an issuer's backchannel_logout): the receiver is fixed at start; restart to apply",
            ))
        } else {
            None
        };
        if let Some((path, message)) = fixed {
            let e = ConfigError::Invalid {
                origin: config.origin.clone(),
                problems: vec![Problem {
                    path: path.into(),
                    line: None,
                    message: message.into(),
                }],
            };
            self.0.metrics.record(ReloadResult::Invalid);
            tracing::error!(error = %e, "reload refused; the running configuration keeps serving");
            return Err(e);
        }
        if config.listen != state.listen || config.admin.listen != state.admin {
            tracing::warn!(
                "listen and admin.listen changed: listeners are not rebound by a reload; restart to move them"
            );
        }
        let (snapshot, mut next, fresh) = build(&config, Some(&state), &self.0.providers);
        next.tasks = std::mem::take(&mut state.tasks);
        next.tasks.retain(|t| !t.is_finished());
        next.tasks.extend(fresh.iter().map(jwks::fetch::spawn));
        // Give new key sets one fetch before they serve, so a reload that adds
        // an issuer does not refuse its first tokens (or flap readiness).
        for store in &fresh {
            let deadline = tokio::time::Instant::now() + store.remote().fetch_timeout;
            while !store.is_loaded() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.0.key_stores.set(next.stores.clone());
        self.0.proxy.replace(snapshot);
        *state = next;
        self.0.metrics.record(ReloadResult::Ok);
        for note in &config.notes {
            tracing::info!(note, "configuration note");
        }
        tracing::info!(config = %config.origin, "configuration reloaded");
        Ok(())
    }

    /// Polls the config file and the files it names; reloads when one of
    /// them changes. Runs until aborted; does nothing unless `reload.watch`.
    pub async fn watch(self) {
        let mut seen = self.fingerprint().await;
        loop {
            let (watch, interval) = {
                let state = self.0.state.lock().await;
                (state.watch.watch, state.watch.watch_interval)
            };
            tokio::time::sleep(if watch { interval } else { Duration::from_secs(1) }).await;
            if !watch {
                continue;
            }
            let now = self.fingerprint().await;
            if now != seen {
                tracing::info!("a configuration file changed; reloading");
                // Whatever the outcome, wait for the next change: a broken
                // file is reported once, not on every poll.
                let _ = self.reload().await;
                seen = self.fingerprint().await;
            }
        }
    }

    async fn fingerprint(&self) -> Vec<Option<(SystemTime, u64, u64)>> {
        let files = self.0.state.lock().await.files.clone();
        files.iter().map(|f| stat(f)).collect()
    }
}

/// Modification time, length and inode: a ConfigMap update swaps a symlink,
/// which changes the inode even when the time and size look the same.
fn stat(path: &std::path::Path) -> Option<(SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}
