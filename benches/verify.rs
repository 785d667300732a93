//! Verification cost per token, RS256 / ES256 / EdDSA, with the
//! verified-token cache off and on (a repeated token hits it).
//!   cargo bench --bench verify

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokengate::Config;
use tokengate::auth::Authenticator;
use tokengate::config::FileBase;
use tokengate::metrics::Metrics;

const CONFIG: &str = r#"
upstream: { url: "http://127.0.0.1:3000" }
auth:
  issuers:
    - issuer: "https://issuer.test/"
      audiences: ["app"]
      keys:
        - { kid: RS256, algorithm: RS256, public_key_file: keys/rsa.pub.pem }
        - { kid: ES256, algorithm: ES256, public_key_file: keys/ec256.pub.pem }
        - { kid: EdDSA, algorithm: EdDSA, public_key_file: keys/ed25519.pub.pem }
"#;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys/").to_owned() + name).unwrap()
}

fn token(alg: Algorithm) -> String {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&fixture("rsa.key.pem")),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&fixture("ec256.key.pem")),
        _ => EncodingKey::from_ed_pem(&fixture("ed25519.key.pem")),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = Some(format!("{alg:?}"));
    let now = tokengate::auth::unix_now();
    let claims = serde_json::json!({
        "iss": "https://issuer.test/", "aud": "app", "sub": "user-1234",
        "iat": now, "exp": now + 3600, "jti": "0b9b6a52-7d1c-4c1e-9a55-3f1c8c2f6f10",
        "scope": "read write", "email": "user@example.com",
    });
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn authenticator(cache: bool) -> Authenticator {
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"));
    let yaml = if cache {
        CONFIG.to_owned()
    } else {
        CONFIG.replace("auth:\n", "auth:\n  verify_cache: { enabled: false }\n")
    };
    let config = Config::from_yaml_str(&yaml, FileBase::Dir(&dir), "bench").unwrap();
    Authenticator::new(&config.auth, &[], 8192)
}

fn bench(c: &mut Criterion) {
    tokengate::install_crypto_providers();
    let metrics = Metrics::new(prometheus::Registry::new()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let t = token(alg);
        for cache in [false, true] {
            let auth = authenticator(cache);
            let name = format!("verify/{alg:?}/cache_{}", if cache { "on" } else { "off" });
            c.bench_function(&name, |b| {
                b.iter(|| runtime.block_on(auth.verify(black_box(&t), &metrics)).unwrap())
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
