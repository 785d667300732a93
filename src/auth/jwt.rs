//! JWS verification with keys pinned to algorithms.
//!
//! Order matters: the header and payload are decoded first only to choose the
//! issuer (`iss`) and key (`kid`); nothing else is believed until the
//! signature verifies. Only then are `exp`, `nbf` and `aud` judged, so an
//! unsigned forgery learns nothing about which claim it got wrong.

use std::borrow::Cow;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::Value;

use super::AuthError;
use super::claims::{Claims, numeric_date};
use crate::config::{Issuer, Key};

/// Verifies tokens against the configured issuers.
pub struct Verifier {
    issuers: Vec<Issuer>,
    leeway: i64,
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
}

impl Verifier {
    /// A verifier over `issuers`, tolerating `leeway_secs` of clock skew.
    pub fn new(issuers: Vec<Issuer>, leeway_secs: u64) -> Self {
        Verifier {
            issuers,
            leeway: i64::try_from(leeway_secs).unwrap_or(i64::MAX),
        }
    }

    /// The configured issuers.
    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    /// Verifies `token` at time `now` (seconds since the epoch).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("not three dot-separated parts"));
        };
        if signature_b64.is_empty() {
            // Unsecured JWS (`alg: none`) carries an empty signature.
            return Err(AuthError::AlgorithmNotAllowed);
        }

        let header_json = decode_part(header_b64)?;
        let header: JoseHeader<'_> =
            serde_json::from_slice(&header_json).map_err(|_| AuthError::Malformed("header is not JSON"))?;
        if header.crit.is_some() {
            return Err(AuthError::Malformed("unsupported critical header"));
        }
        let alg = Algorithm::from_str(&header.alg).map_err(|_| AuthError::AlgorithmNotAllowed)?;

        let payload_json = decode_part(payload_b64)?;
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&payload_json) else {
            return Err(AuthError::Malformed("payload is not a JSON object"));
        };

        let iss = match map.get("iss") {
            None => return Err(AuthError::MissingClaim("iss")),
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(AuthError::Malformed("iss is not a string")),
        };
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or(AuthError::UnknownIssuer)?;
        let key = select_key(issuer, header.kid.as_deref())?;
        // The key pins the algorithm; the token's `alg` only has to agree.
        if key.algorithm != alg {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        match jsonwebtoken::crypto::verify(signature_b64, signing_input.as_bytes(), &key.verify, key.algorithm) {
            Ok(true) => {}
            Ok(false) | Err(_) => return Err(AuthError::BadSignature),
        }

        let exp = match map.get("exp") {
            None => return Err(AuthError::MissingClaim("exp")),
            Some(v) => numeric_date(v).ok_or(AuthError::Malformed("exp is not a NumericDate"))?,
        };
        if now >= exp.saturating_add(self.leeway) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = map.get("nbf") {
            let nbf = numeric_date(nbf).ok_or(AuthError::Malformed("nbf is not a NumericDate"))?;
            if now.saturating_add(self.leeway) < nbf {
                return Err(AuthError::NotYetValid);
            }
        }
        let iat = match map.get("iat") {
            None => None,
            Some(v) => Some(numeric_date(v).ok_or(AuthError::Malformed("iat is not a NumericDate"))?),
        };
        if !issuer.audiences.is_empty() {
            check_audience(map.get("aud"), &issuer.audiences)?;
        }
        Ok(Claims::new(map, exp, iat))
    }
}

fn decode_part(b64: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| AuthError::Malformed("a part is not unpadded base64url"))
}

fn select_key<'a>(issuer: &'a Issuer, kid: Option<&str>) -> Result<&'a Key, AuthError> {
    match kid {
        Some(kid) => issuer
            .keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .ok_or(AuthError::UnknownKid),
        // Without a `kid` only an issuer with exactly one key is unambiguous.
        None => match issuer.keys.as_slice() {
            [only] => Ok(only),
            _ => Err(AuthError::UnknownKid),
        },
    }
}

fn check_audience(aud: Option<&Value>, accepted: &[String]) -> Result<(), AuthError> {
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
