//! Token parsing and verification: any bytes as a token must give Ok or a
//! typed error, never a panic, and never Ok for a token this harness did not sign.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tokengate::Config;
use tokengate::auth::Verifier;
use tokengate::config::FileBase;

const CONFIG: &str = r#"
upstream: { url: "http://127.0.0.1:3000" }
auth:
  issuers:
    - issuer: "https://issuer.test/"
      audiences: ["app"]
      keys:
        - { kid: HS256, algorithm: HS256, secret_file: keys/hs32.secret }
        - { kid: ES256, algorithm: ES256, public_key_file: keys/ec256.pub.pem }
        - { kid: EdDSA, algorithm: EdDSA, public_key_file: keys/ed25519.pub.pem }
    - issuer: "single"
      keys:
        - { algorithm: RS256, public_key_file: keys/rsa.pub.pem }
"#;

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        tokengate::install_crypto_providers();
        let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures"));
        let config = Config::from_yaml_str(CONFIG, FileBase::Dir(&dir), "fuzz").expect("fuzz config loads");
        Verifier::new(&config.auth.issuers, 30)
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        // A random input verifying would mean a forgery: that is a finding.
        assert!(verifier().verify(token, 1_700_000_000).is_err());
    }
});
