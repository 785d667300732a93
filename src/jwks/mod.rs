//! Remote key stores: the keys an identity provider publishes as a JWKS,
//! kept current by one background task per remote set ([`fetch`]). The
//! request path only reads the current set (one atomic load); it never waits
//! for a fetch, except a request whose `kid` is unknown, which may wait for
//! one rate-limited, shared refetch.

pub mod fetch;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio::sync::{Notify, watch};

use crate::config::JwksRemote;
use crate::keys::KeySet;

/// Counters shared by every remote set.
#[derive(Clone)]
pub struct JwksMetrics {
    fetches: IntCounterVec,
}

impl JwksMetrics {
    /// Registers `tokengate_jwks_fetches_total{issuer, result}`.
    pub fn new(registry: &Registry) -> Result<JwksMetrics, prometheus::Error> {
        let fetches = IntCounterVec::new(
            Opts::new("tokengate_jwks_fetches_total", "JWKS fetches, by issuer and result."),
            &["issuer", "result"],
        )?;
        registry.register(Box::new(fetches.clone()))?;
        Ok(JwksMetrics { fetches })
    }

    fn fetched(&self, issuer: &str, result: Result<(), &fetch::FetchError>) {
        let label = result.map_or_else(fetch::FetchError::label, |()| "ok");
        self.fetches.with_label_values(&[issuer, label]).inc();
    }
}

/// Refetch bookkeeping for unknown `kid`s.
#[derive(Default)]
struct Refetch {
    /// A kid-triggered fetch was asked for and has not finished.
    in_flight: bool,
    /// When the last kid-triggered fetch was started.
    last: Option<Instant>,
}

/// The live key set of one issuer's JWKS URL.
pub struct KeyStore {
    issuer: String,
    remote: JwksRemote,
    current: ArcSwap<KeySet>,
    generation: AtomicU64,
    /// Unix ms of the last successful fetch; 0 before the first.
    last_success_ms: AtomicI64,
    refetch: Mutex<Refetch>,
    /// Wakes the fetch task early (an unknown kid).
    wake: Arc<Notify>,
    /// Bumped after every fetch attempt; waiters for a refetch watch it.
    attempts: watch::Sender<u64>,
    metrics: JwksMetrics,
    /// The last good metadata document, for an issuer using discovery.
    metadata: ArcSwapOption<fetch::Metadata>,
}

impl KeyStore {
    /// An empty store for `issuer`'s remote set; [`fetch::spawn`] fills it.
    pub fn new(issuer: &str, remote: JwksRemote, metrics: JwksMetrics) -> Arc<KeyStore> {
        Arc::new(KeyStore {
            issuer: issuer.to_owned(),
            remote,
            current: ArcSwap::from_pointee(KeySet::default()),
            generation: AtomicU64::new(0),
            last_success_ms: AtomicI64::new(0),
            refetch: Mutex::new(Refetch::default()),
            wake: Arc::new(Notify::new()),
            attempts: watch::channel(0).0,
            metrics,
            metadata: ArcSwapOption::empty(),
        })
    }

    /// The issuer this set belongs to.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The remote's configuration.
    pub fn remote(&self) -> &JwksRemote {
        &self.remote
    }

    /// The issuer's metadata document as last read, when it uses discovery.
    pub fn metadata(&self) -> Option<Arc<fetch::Metadata>> {
        self.metadata.load_full()
    }

    /// The current keys (one atomic load; never blocks).
    pub fn current(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.current.load()
    }

    /// Changes whenever the set's content changes; verified-token cache
    /// entries from an older generation are verified again.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// True once a fetch has succeeded.
    pub fn is_loaded(&self) -> bool {
        self.last_success_ms.load(Ordering::Acquire) != 0
    }

    /// Records a successful fetch at `now_ms`; replaces the set when its
    /// content differs, and says whether it did.
    fn publish(&self, set: KeySet, now_ms: i64) -> bool {
        let changed = set.fingerprint() != self.current.load().fingerprint();
        if changed {
            self.current.store(Arc::new(set));
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.last_success_ms.store(now_ms.max(1), Ordering::Release);
        changed
    }

    /// Called on a token whose `kid` this set lacks. Starts a refetch unless
    /// one ran within `unknown_kid_cooldown`, waits (at most the fetch
    /// timeout) for the refetch in flight, and returns true when the caller
    /// should look the kid up again.
    pub async fn refetch_for_unknown_kid(&self) -> bool {
        let mut attempts = self.attempts.subscribe();
        let start = {
            let mut r = self.refetch.lock().unwrap_or_else(|e| e.into_inner());
            if r.in_flight {
                false
            } else if r.last.is_some_and(|t| t.elapsed() < self.remote.unknown_kid_cooldown) {
                return false;
            } else {
                r.in_flight = true;
                r.last = Some(Instant::now());
                true
            }
        };
        if start {
            self.wake.notify_one();
        }
        let wait = async {
            loop {
                if !self.refetch.lock().unwrap_or_else(|e| e.into_inner()).in_flight {
                    return;
                }
                if attempts.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(self.remote.fetch_timeout + Duration::from_millis(100), wait)
            .await
            .is_ok()
    }
}

/// The remote key stores of the running configuration, for `/metrics` and
/// `/readyz`; replaced on reload.
#[derive(Clone, Default)]
pub struct KeyStores(Arc<ArcSwap<Vec<Arc<KeyStore>>>>);

impl KeyStores {
    /// Publishes the stores of a new configuration.
    pub fn set(&self, stores: Vec<Arc<KeyStore>>) {
        self.0.store(Arc::new(stores));
    }

    /// `Some(why)` while a remote set has never been fetched.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        self.0
            .load()
            .iter()
            .any(|s| !s.is_loaded())
            .then_some("jwks not fetched yet")
    }

    /// Registers `tokengate_jwks_keys{issuer}` and `tokengate_jwks_age_seconds{issuer}`.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(KeysCollector::new(self.clone())?))
    }
}

struct KeysCollector {
    stores: KeyStores,
    keys: IntGaugeVec,
    age: GaugeVec,
    descs: Vec<Desc>,
}

impl KeysCollector {
    fn new(stores: KeyStores) -> Result<KeysCollector, prometheus::Error> {
        let keys = IntGaugeVec::new(
            Opts::new("tokengate_jwks_keys", "Keys in the issuer's current JWKS."),
            &["issuer"],
        )?;
        let age = GaugeVec::new(
            Opts::new(
                "tokengate_jwks_age_seconds",
                "Seconds since the issuer's JWKS was last fetched successfully (+Inf before the first).",
            ),
            &["issuer"],
        )?;
        let descs = keys.desc().into_iter().chain(age.desc()).cloned().collect();
        Ok(KeysCollector {
            stores,
            keys,
            age,
            descs,
        })
    }
}

impl Collector for KeysCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.keys.reset();
        self.age.reset();
        let now = crate::clock::unix_ms();
        for store in self.stores.0.load().iter() {
            let set = store.current();
            self.keys
                .with_label_values(&[store.issuer()])
                .set(i64::try_from(set.sources()).unwrap_or(i64::MAX));
            let last = store.last_success_ms.load(Ordering::Acquire);
            let age = if last == 0 {
                f64::INFINITY
            } else {
                (now - last).max(0) as f64 / 1000.0
            };
            self.age.with_label_values(&[store.issuer()]).set(age);
        }
        let mut families = self.keys.collect();
        families.extend(self.age.collect());
        families
    }
}
