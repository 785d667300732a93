//! What both criterion benches build: tokens signed with the test fixtures'
//! keys, and a config with the verified-token cache on or off.
#![allow(dead_code)] // each bench uses a different subset

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokengate::Config;
use tokengate::config::FileBase;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys/").to_owned() + name).unwrap()
}

/// A 7-claim token for `https://issuer.test/` / `app`, with `kid` = the
/// algorithm's name, signed with the fixture key of that algorithm.
pub fn token(alg: Algorithm) -> String {
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(fixture("hs32.secret").trim_ascii_end()),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&fixture("rsa.key.pem")).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&fixture("ec256.key.pem")).unwrap(),
        _ => EncodingKey::from_ed_pem(&fixture("ed25519.key.pem")).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = Some(format!("{alg:?}"));
    let now = tokengate::clock::unix_now();
    let claims = serde_json::json!({
        "iss": "https://issuer.test/", "aud": "app", "sub": "user-1234",
        "iat": now, "exp": now + 3600, "jti": "0b9b6a52-7d1c-4c1e-9a55-3f1c8c2f6f10",
        "scope": "read write admin", "email": "user@example.com",
    });
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// A token like [`token`] for an algorithm jsonwebtoken cannot sign:
/// `ES512` (the P-521 fixture key) or `Ed25519` (RFC 9864's name, the
/// Ed25519 fixture key), signed with aws-lc-rs directly.
pub fn token_named(alg: &str) -> String {
    use aws_lc_rs::signature::{ECDSA_P521_SHA512_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let der = |name: &str| {
        let pem = String::from_utf8(fixture(name)).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(body).unwrap()
    };
    let now = tokengate::clock::unix_now();
    let claims = serde_json::json!({
        "iss": "https://issuer.test/", "aud": "app", "sub": "user-1234",
        "iat": now, "exp": now + 3600, "jti": "0b9b6a52-7d1c-4c1e-9a55-3f1c8c2f6f10",
        "scope": "read write admin", "email": "user@example.com",
    });
    let header = serde_json::json!({ "alg": alg, "kid": alg, "typ": "JWT" });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let signature = match alg {
        "ES512" => EcdsaKeyPair::from_pkcs8(&ECDSA_P521_SHA512_FIXED_SIGNING, &der("ec521.key.pem"))
            .unwrap()
            .sign(&rng, input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec(),
        "Ed25519" => Ed25519KeyPair::from_pkcs8(&der("ed25519.key.pem"))
            .unwrap()
            .sign(input.as_bytes())
            .as_ref()
            .to_vec(),
        other => panic!("no signer for {other}"),
    };
    format!("{input}.{}", b64(&signature))
}

/// The issuer `token` signs for, with one key per algorithm it signs with
/// (paths relative to tests/fixtures).
const ISSUER: &str = r#"
upstream: { url: "http://127.0.0.1:3000" }
auth:
  issuers:
    - issuer: "https://issuer.test/"
      audiences: ["app"]
      keys:
        - { kid: HS256, algorithm: HS256, secret_file: keys/hs32.secret }
        - { kid: RS256, algorithm: RS256, public_key_file: keys/rsa.pub.pem }
        - { kid: ES256, algorithm: ES256, public_key_file: keys/ec256.pub.pem }
        - { kid: EdDSA, algorithm: EdDSA, public_key_file: keys/ed25519.pub.pem }
        - { kid: ES512, algorithm: ES512, public_key_file: keys/ec521.pub.pem }
        - { kid: Ed25519, algorithm: Ed25519, public_key_file: keys/ed25519.pub.pem }
"#;

/// `ISSUER` plus `rest` (top-level sections such as `routes`), with the
/// verified-token cache on or off.
pub fn config(rest: &str, cache: bool) -> Config {
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"));
    let yaml = format!("{ISSUER}{rest}");
    let yaml = if cache {
        yaml
    } else {
        yaml.replace("auth:\n", "auth:\n  verify_cache: { enabled: false }\n")
    };
    Config::from_yaml_str(&yaml, FileBase::Dir(&dir), "bench").unwrap()
}
