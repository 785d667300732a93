//! JWKS documents from a provider are untrusted input: parsing must not panic.
#![no_main]

use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;

const ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA];

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = tokengate::keys::jwks::parse(data, ALGORITHMS) {
        assert!(!parsed.set.keys().is_empty());
    }
});
