//! Verification cost per token, RS256 / ES256 / EdDSA / ES512 / Ed25519,
//! with the verified-token cache off and on (a repeated token hits it).
//!   cargo bench --bench verify

mod common;

use std::hint::black_box;

use common::token;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::Algorithm;
use tokengate::auth::{Authenticator, VerifyMetrics};

fn authenticator(cache: bool) -> Authenticator {
    Authenticator::new(&common::config("", cache).auth, &[], 8192)
}

fn bench(c: &mut Criterion) {
    tokengate::install_crypto_providers();
    let metrics = VerifyMetrics::new(&prometheus::Registry::new()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let tokens = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
        .map(|alg| (format!("{alg:?}"), token(alg)))
        .into_iter()
        .chain(["ES512", "Ed25519"].map(|alg| (alg.to_owned(), common::token_named(alg))));
    for (alg, t) in tokens {
        for cache in [false, true] {
            let auth = authenticator(cache);
            let name = format!("verify/{alg}/cache_{}", if cache { "on" } else { "off" });
            c.bench_function(&name, |b| {
                b.iter(|| runtime.block_on(auth.verify(black_box(&t), &metrics)).unwrap())
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
