//! One sign-in in flight: the `state`, `nonce` and PKCE verifier sent to the
//! provider, and the page first asked for, kept in a short-lived HttpOnly
//! cookie signed with a key every sidecar of the app derives alike (so the
//! callback may reach another sidecar than the one that redirected).

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// A sign-in started by this proxy, as the cookie carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// The `state` sent to the provider (and the cookie's name suffix).
    #[serde(rename = "s")]
    pub state: String,
    /// The `nonce` the ID token must carry.
    #[serde(rename = "n")]
    pub nonce: String,
    /// The PKCE `code_verifier`.
    #[serde(rename = "v")]
    pub verifier: String,
    /// Where to send the browser afterwards: a path on this origin.
    #[serde(rename = "r")]
    pub return_to: String,
    /// Unix seconds after which the cookie is refused.
    #[serde(rename = "e")]
    pub expires: i64,
}

/// Why a login cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Not `payload.mac`, or not base64/JSON.
    #[error("malformed sign-in cookie")]
    Malformed,
    /// The MAC does not verify: not ours, or altered.
    #[error("sign-in cookie not signed by this app")]
    BadSignature,
    /// Older than the sign-in timeout.
    #[error("sign-in took too long")]
    Expired,
    /// Its state is not the one the provider sent back.
    #[error("state does not match")]
    StateMismatch,
}

/// Signs and checks login cookies.
pub struct Signer {
    key: hmac::Key,
}

impl Signer {
    /// A signer keyed by `secret` (the client secret or the client's key
    /// file, which every sidecar of the app holds), under a label of its own
    /// so the key is used for nothing else.
    pub fn new(secret: &[u8]) -> Signer {
        let derive = hmac::Key::new(hmac::HMAC_SHA256, b"tokengate browser sign-in state v1");
        let key = hmac::sign(&derive, secret);
        Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()),
        }
    }

    /// The cookie value for `login`.
    pub fn seal(&self, login: &Login) -> String {
        // Serializing a struct of strings and an integer cannot fail.
        let json = serde_json::to_vec(login).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mac = hmac::sign(&self.key, payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))
    }

    /// The login in `value`, if it is ours, unexpired at `now` and for `state`.
    pub fn open(&self, value: &str, state: &str, now: i64) -> Result<Login, LoginError> {
        let (payload, mac) = value.split_once('.').ok_or(LoginError::Malformed)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| LoginError::Malformed)?;
        hmac::verify(&self.key, payload.as_bytes(), &mac).map_err(|_| LoginError::BadSignature)?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| LoginError::Malformed)?;
        let login: Login = serde_json::from_slice(&json).map_err(|_| LoginError::Malformed)?;
        if login.expires < now {
            return Err(LoginError::Expired);
        }
        if !constant_time_eq(login.state.as_bytes(), state.as_bytes()) {
            return Err(LoginError::StateMismatch);
        }
        Ok(login)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// `n` random bytes as base64url (43 characters for 32 bytes).
pub fn random_b64(n: usize) -> Option<String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).ok()?;
    Some(URL_SAFE_NO_PAD.encode(buf))
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2).
pub fn challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// `target` if it is a path on this origin (one leading `/`, no `//` or
/// `/\` a browser would read as another host, no control characters);
/// otherwise `/`. The one place a return address is judged.
pub fn same_origin_path(target: &str) -> &str {
    let bytes = target.as_bytes();
    let ok = bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && bytes.iter().all(|&b| b > 0x20 && b != 0x7f && b != b'\\');
    if ok { target } else { "/" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> Login {
        Login {
            state: "st".into(),
            nonce: "no".into(),
            verifier: "ve".into(),
            return_to: "/orders?x=1".into(),
            expires: 1000,
        }
    }

    #[test]
    fn a_sealed_login_opens_only_unaltered_in_time_and_for_its_state() {
        let signer = Signer::new(b"client-secret");
        let sealed = signer.seal(&login());
        assert_eq!(signer.open(&sealed, "st", 999), Ok(login()));
        assert_eq!(signer.open(&sealed, "st", 1001), Err(LoginError::Expired));
        assert_eq!(signer.open(&sealed, "other", 999), Err(LoginError::StateMismatch));
        assert_eq!(
            Signer::new(b"another-secret").open(&sealed, "st", 999),
            Err(LoginError::BadSignature)
        );
        // A payload swapped under the same MAC.
        let (_, mac) = sealed.split_once('.').unwrap();
        let mut other = login();
        other.return_to = "https://evil.example/".into();
        let forged = format!("{}.{mac}", signer.seal(&other).split_once('.').unwrap().0);
        assert_eq!(signer.open(&forged, "st", 999), Err(LoginError::BadSignature));
        assert_eq!(signer.open("nodot", "st", 999), Err(LoginError::Malformed));
    }

    #[test]
    fn only_paths_on_this_origin_are_return_targets() {
        for good in ["/", "/orders", "/a/b?c=d#e", "/%2F%2Fevil"] {
            assert_eq!(same_origin_path(good), good);
        }
        for bad in [
            "",
            "//evil.example/",
            "/\\evil.example/",
            "https://evil.example/",
            "evil",
            "/a\\b",
            "/a b",
            "/a\tb",
            "/\r\nSet-Cookie: x",
        ] {
            assert_eq!(same_origin_path(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn pkce_challenge_matches_rfc_7636() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
