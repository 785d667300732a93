//! Key material: verification keys pinned to one algorithm, immutable sets
//! of them, and JWKS documents parsed into sets ([`jwks`]). A leaf: it
//! imports nothing of ours, so the config (which reads key files) and the
//! remote key stores (`crate::jwks`, which fetch documents) both build on it.

mod alg;
pub mod jwks;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;

pub use self::alg::{Alg, Family, UnknownAlg};

/// One verification key pinned to one algorithm.
#[derive(Clone)]
pub struct VerifyKey {
    /// The `kid` tokens name, if the key has one.
    pub kid: Option<String>,
    /// The only algorithm this key verifies.
    pub algorithm: Alg,
    /// The public key (or HMAC secret, for configured keys only).
    pub verify: DecodingKey,
}

impl VerifyKey {
    /// True when `signature_b64` (base64url) signs `message` under this key
    /// and its algorithm.
    pub fn verifies(&self, signature_b64: &str, message: &[u8]) -> bool {
        match self.algorithm.jsonwebtoken() {
            Some(alg) => jsonwebtoken::crypto::verify(signature_b64, message, &self.verify, alg).unwrap_or(false),
            None => verify_es512(signature_b64, message, &self.verify),
        }
    }
}

/// ES512 (RFC 7518 §3.4): the signature is r || s, 66 bytes each; the key
/// is the uncompressed P-521 point jsonwebtoken keeps as raw bytes.
fn verify_es512(signature_b64: &str, message: &[u8], key: &DecodingKey) -> bool {
    use aws_lc_rs::signature::{ECDSA_P521_SHA512_FIXED, UnparsedPublicKey};
    let (Ok(signature), Ok(point)) = (URL_SAFE_NO_PAD.decode(signature_b64), key.try_get_as_bytes()) else {
        return false;
    };
    UnparsedPublicKey::new(&ECDSA_P521_SHA512_FIXED, point)
        .verify(message, &signature)
        .is_ok()
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// An immutable set of keys, swapped whole when it changes.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
    /// How many source keys (JWKs or configured keys) the entries came from:
    /// an RSA JWK without `alg` yields one entry per allowed algorithm.
    sources: usize,
    fingerprint: u64,
}

impl KeySet {
    /// A set of `keys` that came from `sources` source keys.
    pub fn new(keys: Vec<VerifyKey>, sources: usize, fingerprint: u64) -> KeySet {
        KeySet {
            keys,
            sources,
            fingerprint,
        }
    }

    /// The entries, in document order.
    pub fn keys(&self) -> &[VerifyKey] {
        &self.keys
    }

    /// The number of source keys.
    pub fn sources(&self) -> usize {
        self.sources
    }

    /// A hash of the content, to tell a changed set from a refetched one.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}
