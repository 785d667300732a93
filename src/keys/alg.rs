//! The JWS algorithms tokengate verifies: jsonwebtoken's, plus the two it
//! lacks. `ES512` (ECDSA on P-521, which Envoy and most providers offer) is
//! verified with aws-lc-rs directly; `Ed25519` (RFC 9864's fully-specified
//! name, emitted by oidc-provider 9, jose 6 and joserfc) is the same
//! signature as `EdDSA` on an Ed25519 key, under the name that cannot mean
//! Ed448.

use std::fmt;
use std::str::FromStr;

use jsonwebtoken::Algorithm;

/// A JWS `alg` value tokengate can verify.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// EdDSA (Ed25519 keys only).
    EdDSA,
    /// Ed25519 by its fully-specified name (RFC 9864).
    Ed25519,
}

/// What kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A shared secret.
    Hmac,
    /// An RSA key.
    Rsa,
    /// An elliptic-curve (NIST) key.
    Ec,
    /// An Edwards-curve key.
    Ed,
}

impl Alg {
    /// Every algorithm, in the order error messages list them.
    pub const ALL: [Alg; 14] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
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

    /// The `alg` header value.
    pub const fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
            Alg::Ed25519 => "Ed25519",
        }
    }

    /// The kind of key it needs.
    pub const fn family(self) -> Family {
        match self {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => Family::Hmac,
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => Family::Rsa,
            Alg::ES256 | Alg::ES384 | Alg::ES512 => Family::Ec,
            Alg::EdDSA | Alg::Ed25519 => Family::Ed,
        }
    }

    /// jsonwebtoken's algorithm computing the same signature, if it has one
    /// (`Ed25519` is its `EdDSA`; it has no `ES512`). Signing (`token mint`,
    /// the session issuer) needs one.
    pub const fn jsonwebtoken(self) -> Option<Algorithm> {
        Some(match self {
            Alg::HS256 => Algorithm::HS256,
            Alg::HS384 => Algorithm::HS384,
            Alg::HS512 => Algorithm::HS512,
            Alg::RS256 => Algorithm::RS256,
            Alg::RS384 => Algorithm::RS384,
            Alg::RS512 => Algorithm::RS512,
            Alg::PS256 => Algorithm::PS256,
            Alg::PS384 => Algorithm::PS384,
            Alg::PS512 => Algorithm::PS512,
            Alg::ES256 => Algorithm::ES256,
            Alg::ES384 => Algorithm::ES384,
            Alg::EdDSA | Alg::Ed25519 => Algorithm::EdDSA,
            Alg::ES512 => return None,
        })
    }

    /// jsonwebtoken's algorithm when it writes this very `alg` name, so
    /// tokens it signs verify here: not `ES512` (it cannot) nor `Ed25519`
    /// (it would write `EdDSA`).
    pub fn signable(self) -> Option<Algorithm> {
        self.jsonwebtoken().filter(|a| Alg::of(*a) == Some(self))
    }

    /// Ours for jsonwebtoken's `a` (`None` only for a name it adds later).
    pub fn of(a: Algorithm) -> Option<Alg> {
        Alg::ALL.into_iter().find(|x| x.jsonwebtoken() == Some(a))
    }

    /// The curve an EC or OKP key must be on (its JWK `crv`), if any.
    pub const fn curve(self) -> Option<&'static str> {
        match self {
            Alg::ES256 => Some("P-256"),
            Alg::ES384 => Some("P-384"),
            Alg::ES512 => Some("P-521"),
            Alg::EdDSA | Alg::Ed25519 => Some("Ed25519"),
            _ => None,
        }
    }

    /// The names of `list`, space-separated, for error messages.
    pub fn names(list: &[Alg]) -> String {
        list.iter().map(|a| a.name()).collect::<Vec<_>>().join(" ")
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `alg` value tokengate does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported algorithm")]
pub struct UnknownAlg;

impl FromStr for Alg {
    type Err = UnknownAlg;

    fn from_str(s: &str) -> Result<Alg, UnknownAlg> {
        Alg::ALL.into_iter().find(|a| a.name() == s).ok_or(UnknownAlg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for a in Alg::ALL {
            assert_eq!(a.name().parse::<Alg>(), Ok(a));
        }
        for bad in ["none", "es256", "ED25519", "Ed448", "ES256K", ""] {
            assert!(bad.parse::<Alg>().is_err(), "{bad}");
        }
    }

    #[test]
    fn jsonwebtoken_names_map_back() {
        for a in Alg::ALL.into_iter().filter(|a| *a != Alg::Ed25519) {
            assert_eq!(a.jsonwebtoken().and_then(Alg::of), a.jsonwebtoken().map(|_| a), "{a}");
        }
        assert_eq!(Alg::Ed25519.signable(), None);
        assert_eq!(Alg::ES512.signable(), None);
        assert_eq!(Alg::EdDSA.signable(), Some(Algorithm::EdDSA));
    }
}
