//! Key material: verification keys pinned to one algorithm, immutable sets
//! of them, and JWKS documents parsed into sets ([`jwks`]). A leaf: it
//! imports nothing of ours, so the config (which reads key files) and the
//! remote key stores (`crate::jwks`, which fetch documents) both build on it.

pub mod jwks;

use jsonwebtoken::{Algorithm, DecodingKey};

/// One verification key pinned to one algorithm.
#[derive(Clone)]
pub struct VerifyKey {
    /// The `kid` tokens name, if the key has one.
    pub kid: Option<String>,
    /// The only algorithm this key verifies.
    pub algorithm: Algorithm,
    /// The public key (or HMAC secret, for configured keys only).
    pub verify: DecodingKey,
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
