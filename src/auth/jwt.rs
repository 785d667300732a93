//! JWS verification with keys pinned to algorithms.
//!
//! Order matters: the header and payload are decoded first only to choose the
//! issuer (`iss`) and key (`kid`); nothing else is believed until the
//! signature verifies. Only then are `exp`, `nbf` and `aud` judged, so an
//! unsigned forgery learns nothing about which claim it got wrong.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use super::AuthError;
use super::claims::{Claims, numeric_date};
use crate::config::{Issuer, media_type};
use crate::jwks::KeyStore;
use crate::keys::{Alg, KeySet, VerifyKey};

/// Verifies tokens against the configured issuers.
pub struct Verifier {
    issuers: Vec<Trusted>,
    leeway: i64,
}

/// One issuer as the request path needs it.
struct Trusted {
    issuer: String,
    audiences: Vec<String>,
    /// Keys from the config (secrets, PEM files, a JWKS file).
    configured: KeySet,
    /// The issuer's JWKS URL, kept current by its fetch task.
    remote: Option<Arc<KeyStore>>,
    /// The `typ` its tokens must carry (normalised), if the config says.
    token_type: Option<String>,
    /// The `aud` values its back-channel logout tokens may carry; empty
    /// when it sends none.
    logout_audiences: Vec<String>,
}

/// What a token is checked as: its `typ` and audience rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// An access token: the issuer's `token_type`, its `audiences`.
    Access,
    /// A back-channel logout token: `typ` `logout+jwt` or none, the
    /// issuer's logout audiences.
    Logout,
    /// An ID token from a browser sign-in: `typ` `JWT` or none; the
    /// audience and the rest are the caller's.
    IdToken,
}

/// A failed verification, with the key store that might know the missing
/// `kid` after a refetch.
pub(super) struct Failure<'a> {
    pub(super) error: AuthError,
    pub(super) refetch: Option<&'a Arc<KeyStore>>,
}

impl From<AuthError> for Failure<'_> {
    fn from(error: AuthError) -> Self {
        Failure { error, refetch: None }
    }
}

/// The JOSE header fields we act on; others are ignored, except `crit`.
#[derive(Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    /// Extensions the issuer says we must understand; we understand none
    /// (RFC 7515 §4.1.11), so their presence refuses the token.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
    /// What the token is for (RFC 7515 §4.1.9, RFC 8725 §3.11).
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
}

/// A token meant for something else (`logout+jwt`, `dpop+jwt`, an ID token
/// where the issuer requires `at+jwt`) is refused: RFC 8725 §3.11's
/// defence against one kind of JWT passing as another.
fn check_type(typ: Option<&str>, required: Option<&str>) -> Result<(), AuthError> {
    let typ = typ.map(media_type);
    let ok = match (typ.as_deref(), required) {
        (Some(t), Some(r)) => t == r,
        (None, Some(_)) => false,
        (None, None) => true,
        (Some(t), None) => t == "jwt" || t == "at+jwt",
    };
    if ok { Ok(()) } else { Err(AuthError::WrongType) }
}

impl Verifier {
    /// A verifier over `issuers` and their configured keys, tolerating
    /// `leeway_secs` of clock skew. Issuers with a JWKS URL get their remote
    /// keys from [`Verifier::with_key_stores`].
    pub fn new(issuers: &[Issuer], leeway_secs: u64) -> Self {
        Verifier {
            issuers: issuers
                .iter()
                .map(|i| Trusted {
                    issuer: i.issuer.clone(),
                    audiences: i.audiences.clone(),
                    configured: i.key_set(),
                    remote: None,
                    token_type: i.token_type.clone(),
                    logout_audiences: i
                        .backchannel_logout
                        .as_ref()
                        .map(|b| b.audiences.clone())
                        .unwrap_or_default(),
                })
                .collect(),
            leeway: i64::try_from(leeway_secs).unwrap_or(i64::MAX),
        }
    }

    /// Attaches each issuer's remote key store (matched by issuer name).
    pub fn with_key_stores(mut self, stores: &[Arc<KeyStore>]) -> Self {
        for trusted in &mut self.issuers {
            trusted.remote = stores.iter().find(|s| s.issuer() == trusted.issuer).cloned();
        }
        self
    }

    /// The leeway in seconds.
    pub fn leeway(&self) -> i64 {
        self.leeway
    }

    /// The key generation of issuer `index`: verified-token cache entries
    /// made under another generation are verified again.
    pub fn generation(&self, index: usize) -> u64 {
        self.issuers
            .get(index)
            .and_then(|t| t.remote.as_ref())
            .map_or(0, |s| s.generation())
    }

    /// Verifies `token` at time `now` (seconds since the epoch).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        self.verify_detailed(token, now)
            .map(|(claims, ..)| claims)
            .map_err(|f| f.error)
    }

    /// [`Verifier::verify`], also giving the issuer's index and key generation
    /// on success, and the store to refetch on an unknown `kid`.
    pub(super) fn verify_detailed(&self, token: &str, now: i64) -> Result<(Claims, usize, u64), Failure<'_>> {
        let (map, index, generation) = self.verify_signed(token, Purpose::Access)?;
        let exp = match map.get("exp") {
            None => return Err(AuthError::MissingClaim("exp").into()),
            Some(v) => numeric_date(v).ok_or(AuthError::Malformed("exp is not a NumericDate"))?,
        };
        if now >= exp.saturating_add(self.leeway) {
            return Err(AuthError::Expired.into());
        }
        let nbf = match map.get("nbf") {
            None => None,
            Some(v) => Some(numeric_date(v).ok_or(AuthError::Malformed("nbf is not a NumericDate"))?),
        };
        if nbf.is_some_and(|nbf| now.saturating_add(self.leeway) < nbf) {
            return Err(AuthError::NotYetValid.into());
        }
        let iat = match map.get("iat") {
            None => None,
            Some(v) => Some(numeric_date(v).ok_or(AuthError::Malformed("iat is not a NumericDate"))?),
        };
        let audiences = &self.issuers[index].audiences;
        if !audiences.is_empty() {
            check_audience(map.get("aud"), audiences)?;
        }
        Ok((Claims::new(map, exp, nbf, iat), index, generation))
    }

    /// The claims of a back-channel logout token whose signature verifies
    /// with its issuer's keys, whose `typ` (if any) is `logout+jwt` and whose
    /// `aud` names one of the issuer's logout audiences. The events, `iat`,
    /// `jti`, `sub`/`sid` and `nonce` rules are the caller's.
    pub(super) fn verify_logout(&self, token: &str) -> Result<serde_json::Map<String, Value>, Failure<'_>> {
        let (map, index, _) = self.verify_signed(token, Purpose::Logout)?;
        check_audience(map.get("aud"), &self.issuers[index].logout_audiences)?;
        Ok(map)
    }

    /// The discovery metadata of `issuer`, if its keys come from discovery.
    pub fn metadata(&self, issuer: &str) -> Option<Arc<crate::jwks::fetch::Metadata>> {
        self.issuers
            .iter()
            .find(|i| i.issuer == issuer)
            .and_then(|i| i.remote.as_ref())
            .and_then(|s| s.metadata())
    }

    /// The claims of an ID token whose signature verifies with the keys of
    /// `issuer`, whose `typ` (if any) is `JWT`, and which carries no logout
    /// event or confirmation. Audience, times and nonce are the caller's.
    pub(super) fn verify_id_token(
        &self,
        token: &str,
        issuer: &str,
    ) -> Result<serde_json::Map<String, Value>, Failure<'_>> {
        let (map, index, _) = self.verify_signed(token, Purpose::IdToken)?;
        if self.issuers[index].issuer != issuer {
            return Err(AuthError::UnknownIssuer.into());
        }
        Ok(map)
    }

    /// The payload of `token` once its issuer's key verifies the signature
    /// and its `typ` fits `purpose`; with the issuer's index and key generation.
    fn verify_signed(
        &self,
        token: &str,
        purpose: Purpose,
    ) -> Result<(serde_json::Map<String, Value>, usize, u64), Failure<'_>> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("not three dot-separated parts").into());
        };
        if signature_b64.is_empty() {
            // Unsecured JWS (`alg: none`) carries an empty signature.
            return Err(AuthError::AlgorithmNotAllowed.into());
        }

        let header_json = decode_part(header_b64)?;
        let header: JoseHeader<'_> =
            serde_json::from_slice(&header_json).map_err(|_| AuthError::Malformed("header is not JSON"))?;
        if header.crit.is_some() {
            return Err(AuthError::Malformed("unsupported critical header").into());
        }
        let alg = Alg::from_str(&header.alg).map_err(|_| AuthError::AlgorithmNotAllowed)?;

        let payload_json = decode_part(payload_b64)?;
        let Some(map) = crate::json::unique_object(&payload_json) else {
            return Err(AuthError::Malformed("payload is not a JSON object with unique claim names").into());
        };

        let iss = match map.get("iss") {
            None => return Err(AuthError::MissingClaim("iss").into()),
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(AuthError::Malformed("iss is not a string").into()),
        };
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.issuer == iss)
            .filter(|(_, i)| purpose != Purpose::Logout || !i.logout_audiences.is_empty())
            .ok_or(AuthError::UnknownIssuer)?;
        // The generation is read before the keys: if they change in between,
        // a cache entry made from this result is born stale, never trusted
        // longer than its keys.
        let generation = issuer.remote.as_ref().map_or(0, |s| s.generation());
        let remote = issuer.remote.as_ref().map(|s| s.current());
        let key = select_key(
            &issuer.configured,
            remote.as_ref().map(|g| &***g),
            header.kid.as_deref(),
            alg,
        )
        .map_err(|error| {
            Failure {
                // Only a named kid can appear after a refetch.
                refetch: (error == AuthError::UnknownKid && header.kid.is_some())
                    .then_some(issuer.remote.as_ref())
                    .flatten(),
                error,
            }
        })?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        if !key.verifies(signature_b64, signing_input.as_bytes()) {
            return Err(AuthError::BadSignature.into());
        }
        // After the signature, like every claim check: a forger learns nothing.
        match purpose {
            Purpose::Access => {
                check_type(header.typ.as_deref(), issuer.token_type.as_deref())?;
                check_bearer(&map)?;
            }
            Purpose::Logout => check_type(header.typ.as_deref(), Some("logout+jwt")).or_else(|e| {
                // OIDC Back-Channel Logout §2.4: `typ` is recommended, not required.
                if header.typ.is_none() { Ok(()) } else { Err(e) }
            })?,
            Purpose::IdToken => {
                if header.typ.as_deref().map(media_type).is_some_and(|t| t != "jwt") {
                    return Err(AuthError::WrongType.into());
                }
                check_bearer(&map)?;
            }
        }
        Ok((map, index, generation))
    }
}

/// Claims that say a token is not a bearer access token, whatever its
/// `typ` (which is optional): a back-channel logout token's event (an
/// untyped one would otherwise pass where audiences overlap), and a
/// confirmation (`cnf`: DPoP or mTLS binding), which tokengate cannot
/// check, so a thief could use a bound token as a bearer one.
pub(super) fn check_bearer(claims: &serde_json::Map<String, Value>) -> Result<(), AuthError> {
    if claims.contains_key("cnf") {
        return Err(AuthError::WrongType);
    }
    let logout = claims
        .get("events")
        .and_then(Value::as_object)
        .is_some_and(|e| e.contains_key("http://schemas.openid.net/event/backchannel-logout"));
    if logout { Err(AuthError::WrongType) } else { Ok(()) }
}

/// `exp` and `nbf` of already verified claims at `now`, with `leeway`.
pub(super) fn check_times(claims: &Claims, now: i64, leeway: i64) -> Result<(), AuthError> {
    if now >= claims.exp.saturating_add(leeway) {
        return Err(AuthError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(AuthError::NotYetValid);
    }
    Ok(())
}

fn decode_part(b64: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| AuthError::Malformed("a part is not unpadded base64url"))
}

/// The key for `kid` and `alg` among the configured and the remote keys. A
/// key pins its algorithm: the token's `alg` only has to agree with it.
fn select_key<'a>(
    configured: &'a KeySet,
    remote: Option<&'a KeySet>,
    kid: Option<&str>,
    alg: Alg,
) -> Result<&'a VerifyKey, AuthError> {
    let mut all = configured.keys().iter().chain(remote.map_or(&[][..], KeySet::keys));
    match kid {
        Some(kid) => {
            let mut known = false;
            for key in all.filter(|k| k.kid.as_deref() == Some(kid)) {
                if key.algorithm == alg {
                    return Ok(key);
                }
                known = true;
            }
            Err(if known {
                AuthError::AlgorithmNotAllowed
            } else {
                AuthError::UnknownKid
            })
        }
        // Without a `kid` only an issuer with exactly one key is unambiguous.
        None => {
            if configured.sources() + remote.map_or(0, KeySet::sources) != 1 {
                return Err(AuthError::UnknownKid);
            }
            all.find(|k| k.algorithm == alg).ok_or(AuthError::AlgorithmNotAllowed)
        }
    }
}

pub(super) fn check_audience(aud: Option<&Value>, accepted: &[String]) -> Result<(), AuthError> {
    let ok = match aud {
        None => return Err(AuthError::MissingClaim("aud")),
        Some(Value::String(s)) => accepted.iter().any(|a| a == s),
        Some(Value::Array(list)) => list
            .iter()
            .any(|v| v.as_str().is_some_and(|s| accepted.iter().any(|a| a == s))),
        Some(_) => return Err(AuthError::Malformed("aud is not a string or array")),
    };
    if ok { Ok(()) } else { Err(AuthError::WrongAudience) }
}

#[cfg(test)]
mod tests {
    use super::check_type;

    #[test]
    fn token_types() {
        for (typ, required, ok) in [
            (None, None, true),
            (Some("JWT"), None, true),
            (Some("at+jwt"), None, true),
            (Some("application/at+JWT"), None, true),
            (Some("logout+jwt"), None, false),
            (Some("dpop+jwt"), None, false),
            (Some("secevent+jwt"), None, false),
            (Some("at+jwt"), Some("at+jwt"), true),
            (Some("application/AT+JWT"), Some("at+jwt"), true),
            (Some("JWT"), Some("at+jwt"), false),
            (None, Some("at+jwt"), false),
        ] {
            assert_eq!(check_type(typ, required).is_ok(), ok, "{typ:?} {required:?}");
        }
    }
}
