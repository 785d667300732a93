//! Development tokens signed with a configured key (`tokengate token mint`,
//! `tokengate demo`, tests). Production tokens come from your issuer.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value};

use crate::config::AuthConfig;

/// What to put in a minted token.
#[derive(Debug, Clone, Default)]
pub(crate) struct MintOptions {
    /// `sub`.
    pub subject: String,
    /// Lifetime from now; ignored when `expires_at` is set.
    pub ttl: Duration,
    /// Absolute `exp` (the demo uses a past one to show an expired token).
    pub expires_at: Option<i64>,
    /// `scope`, space-separated.
    pub scope: Option<String>,
    /// Extra claims; they override the defaults above (a dev tool may need
    /// a wrong `aud` on purpose).
    pub claims: Vec<(String, Value)>,
    /// Key to sign with; default: the first key that can sign.
    pub kid: Option<String>,
}

/// Why no token could be minted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MintError {
    /// No configured key has signing material (secret or private_key_file).
    #[error("no configured key can sign: give an HMAC secret or a private_key_file")]
    NoSigningKey,
    /// `--kid` names no key that can sign.
    #[error("no key with kid `{0}` can sign (is private_key_file set?)")]
    UnknownKid(String),
    /// The signature could not be made.
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    /// The OS random number generator failed.
    #[error("no randomness for jti: {0}")]
    Random(#[from] getrandom::Error),
}

/// Signs a token with a key from `auth`, issued by that key's issuer.
pub(crate) fn mint(auth: &AuthConfig, options: &MintOptions, now: i64) -> Result<String, MintError> {
    let mut candidates = auth
        .issuers
        .iter()
        .flat_map(|i| i.keys.iter().map(move |k| (i, k)))
        .filter_map(|(i, k)| Some((i, k, k.sign.as_ref()?, k.algorithm.signable()?)));
    let (issuer, key, signing, algorithm): (_, _, &EncodingKey, _) = match &options.kid {
        Some(kid) => candidates
            .find(|(_, k, ..)| k.kid.as_deref() == Some(kid.as_str()))
            .ok_or_else(|| MintError::UnknownKid(kid.clone()))?,
        None => candidates.next().ok_or(MintError::NoSigningKey)?,
    };
    let ttl = i64::try_from(options.ttl.as_secs()).unwrap_or(i64::MAX);
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.issuer.clone().into());
    claims.insert("sub".into(), options.subject.clone().into());
    if let Some(aud) = issuer.audiences.first() {
        claims.insert("aud".into(), aud.clone().into());
    }
    claims.insert("iat".into(), now.into());
    claims.insert(
        "exp".into(),
        options.expires_at.unwrap_or(now.saturating_add(ttl)).into(),
    );
    claims.insert("jti".into(), random_id()?.into());
    if let Some(scope) = &options.scope {
        claims.insert("scope".into(), scope.clone().into());
    }
    for (name, value) in &options.claims {
        claims.insert(name.clone(), value.clone());
    }
    let mut header = Header::new(algorithm);
    header.kid = key.kid.clone();
    Ok(jsonwebtoken::encode(&header, &claims, signing)?)
}

/// 128 random bits as hex, for `jti`.
pub(crate) fn random_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
