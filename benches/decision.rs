//! The request path's decision alone, no sockets: normalise the path, match
//! the route, extract and verify the token (verified-token cache on: a
//! repeated token; off: every request verifies), check the revocation
//! mirror (empty, and holding 1,000,000 entries), authorize. Kept out of CI.
//!   cargo bench --bench decision

mod common;

use std::hint::black_box;
use std::sync::Arc;

use common::token;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use jsonwebtoken::Algorithm;
use tokengate::metrics::Metrics;
use tokengate::path;
use tokengate::proxy::forward::Upstream;
use tokengate::proxy::{Proxy, Snapshot};
use tokengate::revocation::{Revocation, Revocations};

const ROUTES: &str = r#"
routes:
  - { prefix: /public/, public: true }
  - { prefix: /admin/, require: { scopes: [admin] } }
  - prefix: /
"#;

/// A proxy over the bench issuer and `ROUTES` (no listener: only its decision is used).
fn proxy(cache: bool, revoked: usize) -> (Proxy, Arc<Snapshot>) {
    let config = common::config(ROUTES, cache);
    let metrics = Metrics::new().unwrap();
    let revocations = Revocations::new(&config.revocation, config.auth.leeway).unwrap();
    let exp = tokengate::clock::unix_now() + 3600;
    for i in 0..revoked {
        revocations.apply(&Revocation::Jti {
            id: format!("revoked-{i}"),
            exp,
        });
    }
    let snapshot = Snapshot::from_config(&config, &[], Arc::new(Upstream::new(&config.upstream)));
    let proxy = Proxy::new(snapshot, revocations, metrics.registry()).unwrap();
    let snapshot = proxy.snapshot();
    (proxy, snapshot)
}

fn bench(c: &mut Criterion) {
    tokengate::install_crypto_providers();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("decision");
    let run = |group: &mut criterion::BenchmarkGroup<'_, _>,
               name: &str,
               proxy: &Proxy,
               snapshot: &Snapshot,
               uri: &str,
               headers: &HeaderMap| {
        let uri: http::Uri = uri.parse().unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let normalised = path::normalise(uri.path()).unwrap();
                    let claims = proxy
                        .admit(snapshot, &Method::GET, &normalised, headers, uri.query())
                        .await
                        .unwrap();
                    black_box(claims)
                })
            })
        });
    };
    let bearer = |t: &str| {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_str(&format!("Bearer {t}")).unwrap());
        h.insert("accept", HeaderValue::from_static("*/*"));
        h.insert("user-agent", HeaderValue::from_static("bench-scripts/1"));
        h
    };
    let (cached, cached_snapshot) = proxy(true, 0);
    let (uncached, uncached_snapshot) = proxy(false, 0);
    run(
        &mut group,
        "public route",
        &cached,
        &cached_snapshot,
        "/public/page",
        &HeaderMap::new(),
    );
    for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let headers = bearer(&token(alg));
        run(
            &mut group,
            &format!("{alg:?} cache hit"),
            &cached,
            &cached_snapshot,
            "/api/items?page=2",
            &headers,
        );
        run(
            &mut group,
            &format!("{alg:?} no cache"),
            &uncached,
            &uncached_snapshot,
            "/api/items?page=2",
            &headers,
        );
    }
    let (big, big_snapshot) = proxy(true, 1_000_000);
    let headers = bearer(&token(Algorithm::ES256));
    run(
        &mut group,
        "ES256 cache hit, 1M revocations",
        &big,
        &big_snapshot,
        "/admin/x",
        &headers,
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
