//! Parsing a JWKS document (RFC 7517) into keys pinned to algorithms.
//!
//! Each JWK is judged on its own: one bad key is skipped with a reason, it
//! does not spoil the set. A key is used only when its `kty`/`crv`, its `alg`
//! (if given), its `use`/`key_ops` (if given) and the configured allow-list
//! all agree. Symmetric (`oct`) keys are never taken from a JWKS: a published
//! HMAC key would let anyone who can read the set mint tokens.

use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{AlgorithmFamily, DecodingKey};
use serde_json::Value;

use super::{Alg, KeySet, VerifyKey};

/// Every algorithm a JWK can serve (never HMAC); RSA ones first.
pub const ASYMMETRIC_ALGORITHMS: &[Alg] = &[
    Alg::RS256,
    Alg::RS384,
    Alg::RS512,
    Alg::PS256,
    Alg::PS384,
    Alg::PS512,
    Alg::ES256,
    Alg::ES384,
    Alg::ES512,
    Alg::EdDSA,
    Alg::Ed25519,
];
const RSA_ALGORITHMS: &[Alg] = ASYMMETRIC_ALGORITHMS.split_at(6).0;

/// The most JWKs one document may hold; providers publish a handful.
pub const MAX_KEYS: usize = 100;
/// RSA moduli shorter than this (bits) are refused (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;

/// Why a whole JWKS document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not a JSON object with a `keys` array.
    #[error("not a JWKS (a JSON object with a \"keys\" array): {0}")]
    NotJwks(String),
    /// More than [`MAX_KEYS`] entries.
    #[error("{0} keys, more than the {MAX_KEYS} accepted")]
    TooManyKeys(usize),
    /// No entry passed the checks; the reasons of each are given.
    #[error("no usable key ({})", .0.join("; "))]
    NoUsableKey(Vec<String>),
}

/// A parsed document: the usable keys and why the others were skipped.
#[derive(Debug)]
pub struct Parsed {
    /// The usable keys.
    pub set: KeySet,
    /// One line per skipped JWK, for logs.
    pub skipped: Vec<String>,
}

/// Parses `doc`, keeping the keys whose algorithm is in `allowed`.
pub fn parse(doc: &[u8], allowed: &[Alg]) -> Result<Parsed, JwksError> {
    let value: Value = serde_json::from_slice(doc).map_err(|e| JwksError::NotJwks(e.to_string()))?;
    let Some(entries) = value.get("keys").and_then(Value::as_array) else {
        // The commonest mistake: the discovery URL pasted as the JWKS URL.
        if value.get("jwks_uri").is_some() {
            return Err(JwksError::NotJwks(
                "this is a provider's metadata document, not its JWKS: use discovery: true (or its jwks_uri as jwks_url)"
                    .into(),
            ));
        }
        return Err(JwksError::NotJwks("no \"keys\" array".into()));
    };
    if entries.len() > MAX_KEYS {
        return Err(JwksError::TooManyKeys(entries.len()));
    }
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    let mut sources = 0;
    // Change detection only; a collision merely delays cache invalidation
    // until the next real change, so a fixed-key hasher is fine.
    let mut fingerprint =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().build_hasher();
    for (i, entry) in entries.iter().enumerate() {
        let kid = entry.get("kid").and_then(Value::as_str);
        match jwk_keys(entry, allowed) {
            Ok(found) => {
                sources += 1;
                fingerprint.write(entry.to_string().as_bytes());
                keys.extend(found);
            }
            Err(why) => skipped.push(format!("key {i} (kid {}): {why}", kid.unwrap_or("none"))),
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKey(skipped));
    }
    Ok(Parsed {
        set: KeySet::new(keys, sources, fingerprint.finish()),
        skipped,
    })
}

/// The keys one JWK yields (several when an RSA key names no `alg` and more
/// than one RSA algorithm is allowed), or why it yields none.
fn jwk_keys(entry: &Value, allowed: &[Alg]) -> Result<Vec<VerifyKey>, String> {
    let kty = entry.get("kty").and_then(Value::as_str).ok_or("no kty")?;
    if kty == "oct" {
        return Err("symmetric (oct) keys are never taken from a JWKS".into());
    }
    match entry.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(other) => return Err(format!("use is {other}, not \"sig\"")),
    }
    if let Some(ops) = entry.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err("key_ops does not include \"verify\"".into());
        }
    }
    let kid = match entry.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() => Some(k.clone()),
        Some(_) => return Err("kid is not a non-empty string".into()),
    };
    let crv = entry.get("crv").and_then(Value::as_str);
    // What the key material can do, from its type and curve.
    let capable: &[Alg] = match (kty, crv) {
        ("RSA", _) => RSA_ALGORITHMS,
        ("EC", Some("P-256")) => &[Alg::ES256],
        ("EC", Some("P-384")) => &[Alg::ES384],
        ("EC", Some("P-521")) => &[Alg::ES512],
        ("OKP", Some("Ed25519")) => &[Alg::EdDSA, Alg::Ed25519],
        (kty, crv) => return Err(format!("unsupported key type {kty} (crv {})", crv.unwrap_or("none"))),
    };
    let algorithms: Vec<Alg> = match entry.get("alg") {
        Some(Value::String(alg)) => {
            let alg = Alg::from_str(alg).map_err(|_| format!("unsupported alg {alg}"))?;
            if !capable.contains(&alg) {
                return Err(format!("alg {alg} does not fit a {kty} key"));
            }
            if !allowed.contains(&alg) {
                return Err(format!("alg {alg} is not in the issuer's algorithms"));
            }
            vec![alg]
        }
        Some(_) => return Err("alg is not a string".into()),
        None => capable.iter().copied().filter(|a| allowed.contains(a)).collect(),
    };
    if algorithms.is_empty() {
        return Err(format!("no algorithm of the issuer's list fits a {kty} key"));
    }
    // `alg` is judged above; jsonwebtoken's JWK type knows fewer names
    // (not `Ed25519`) and would refuse the key over it.
    let mut material = entry.clone();
    if let Some(fields) = material.as_object_mut() {
        fields.remove("alg");
    }
    let jwk: Jwk = serde_json::from_value(material).map_err(|e| format!("malformed: {e}"))?;
    let verify = DecodingKey::from_jwk(&jwk).map_err(|e| format!("malformed: {e}"))?;
    check_material(kty, crv, entry, &verify)?;
    Ok(algorithms
        .into_iter()
        .map(|algorithm| VerifyKey {
            kid: kid.clone(),
            algorithm,
            verify: verify.clone(),
        })
        .collect())
}

/// Refuses material that would verify nothing, or too weakly.
fn check_material(kty: &str, crv: Option<&str>, entry: &Value, key: &DecodingKey) -> Result<(), String> {
    let decoded_len = |field: &str| {
        entry
            .get(field)
            .and_then(Value::as_str)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .map(|b| b.iter().skip_while(|&&x| x == 0).count())
    };
    match (kty, crv) {
        ("RSA", _) => {
            let bits = decoded_len("n").ok_or("n is not base64url")? * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!("RSA modulus of {bits} bits is shorter than {MIN_RSA_BITS}"));
            }
        }
        ("EC", Some(curve)) => {
            let coordinate = match curve {
                "P-256" => 32,
                "P-384" => 48,
                _ => 66,
            };
            let point_len = key.try_get_as_bytes().map(<[u8]>::len).unwrap_or(0);
            if point_len != 1 + 2 * coordinate {
                return Err(format!("x/y do not form a {curve} point"));
            }
        }
        ("OKP", _) if key.try_get_as_bytes().map(<[u8]>::len).unwrap_or(0) != 32 => {
            return Err("x is not a 32-byte Ed25519 key".into());
        }
        _ => {}
    }
    debug_assert!(key.family() != AlgorithmFamily::Hmac);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Alg] = &[Alg::RS256, Alg::PS256, Alg::ES256, Alg::EdDSA];

    fn ed_jwk(kid: &str) -> Value {
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": URL_SAFE_NO_PAD.encode([7u8; 32])})
    }

    #[test]
    fn symmetric_and_encryption_keys_are_skipped_not_fatal() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
            {"kty": "OKP", "crv": "Ed25519", "use": "enc", "x": URL_SAFE_NO_PAD.encode([1u8; 32])},
            ed_jwk("good"),
        ]});
        let parsed = parse(doc.to_string().as_bytes(), ALL).unwrap();
        assert_eq!(parsed.set.keys().len(), 1);
        assert_eq!(parsed.skipped.len(), 2, "{:?}", parsed.skipped);
        assert!(parsed.skipped[0].contains("symmetric"));
    }

    #[test]
    fn alg_must_fit_the_key_and_the_allow_list() {
        let mut jwk = ed_jwk("k");
        jwk["alg"] = "RS256".into();
        let err = parse(serde_json::json!({"keys": [jwk]}).to_string().as_bytes(), ALL).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        let err = parse(
            serde_json::json!({"keys": [ed_jwk("k")]}).to_string().as_bytes(),
            &[Alg::RS256],
        )
        .unwrap_err();
        assert!(err.to_string().contains("no algorithm"), "{err}");
    }

    #[test]
    fn short_rsa_and_bad_points_are_refused() {
        let rsa = serde_json::json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xC5u8; 128]), "e": "AQAB"});
        let err = parse(serde_json::json!({"keys": [rsa]}).to_string().as_bytes(), ALL).unwrap_err();
        assert!(err.to_string().contains("1024 bits"), "{err}");
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"});
        let err = parse(serde_json::json!({"keys": [ec]}).to_string().as_bytes(), ALL).unwrap_err();
        assert!(err.to_string().contains("point"), "{err}");
    }

    #[test]
    fn rsa_without_alg_serves_every_allowed_rsa_algorithm() {
        let rsa =
            serde_json::json!({"kty": "RSA", "kid": "r", "n": URL_SAFE_NO_PAD.encode([0xC5u8; 256]), "e": "AQAB"});
        let parsed = parse(serde_json::json!({"keys": [rsa]}).to_string().as_bytes(), ALL).unwrap();
        let algs: Vec<_> = parsed.set.keys().iter().map(|k| k.algorithm).collect();
        assert_eq!(algs, [Alg::RS256, Alg::PS256]);
        assert_eq!(parsed.set.sources(), 1);
    }

    #[test]
    fn not_a_jwks() {
        assert!(matches!(parse(b"[]", ALL), Err(JwksError::NotJwks(_))));
        assert!(matches!(parse(b"{\"keys\": 1}", ALL), Err(JwksError::NotJwks(_))));
        let metadata = br#"{"issuer": "https://op", "jwks_uri": "https://op/jwks"}"#;
        let err = parse(metadata, ALL).unwrap_err().to_string();
        assert!(err.contains("use discovery: true"), "{err}");
        let many: Vec<Value> = (0..=MAX_KEYS).map(|i| ed_jwk(&i.to_string())).collect();
        let doc = serde_json::json!({ "keys": many }).to_string();
        assert_eq!(
            parse(doc.as_bytes(), ALL).unwrap_err(),
            JwksError::TooManyKeys(MAX_KEYS + 1)
        );
    }
}
