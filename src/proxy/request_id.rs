//! `X-Request-Id`: one id per request, in the access log, forwarded to the
//! app and returned to the client, so a report ("request X failed") can be
//! followed through the proxy's and the app's logs.
//!
//! A client's id is kept when it is a plain identifier (letters, digits,
//! `-`, `_`, `.`, `:`, at most 128) and cannot be a token: an id with two
//! dots (a JWS is three dot-separated parts) is replaced, so a client that
//! puts a credential there never gets it into logs. Otherwise a new id is
//! made from a per-process random prefix and a counter: unique, cheap (no
//! syscall per request), and not guessable across restarts.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderName, HeaderValue};

/// The header name.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const MAX_LEN: usize = 128;

/// The client's id if it is usable, else a new one.
pub fn for_request(headers: &HeaderMap) -> HeaderValue {
    let mut values = headers.get_all(&X_REQUEST_ID).iter();
    if let (Some(v), None) = (values.next(), values.next())
        && acceptable(v.as_bytes())
    {
        return v.clone();
    }
    generate()
}

fn acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        && id.iter().filter(|&&b| b == b'.').count() < 2
}

fn generate() -> HeaderValue {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 8];
        // A failed read leaves a fixed prefix: ids stay unique in-process.
        let _ = getrandom::fill(&mut bytes);
        u64::from_le_bytes(bytes)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_bytes(&hex_id(prefix, n)).unwrap_or(HeaderValue::from_static("0"))
}

/// `prefix` and `n` as 32 lower-case hex digits, by hand: `format!` cost
/// several hundred instructions a request.
fn hex_id(prefix: u64, n: u64) -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 32];
    for (i, byte) in text.iter_mut().enumerate() {
        let word = if i < 16 { prefix } else { n };
        let shift = 60 - 4 * (i % 16);
        *byte = HEX[((word >> shift) & 0xf) as usize];
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_REQUEST_ID, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn plain_client_ids_are_kept_others_replaced() {
        assert_eq!(for_request(&with(&["req-42_a.b:c"])), "req-42_a.b:c");
        for bad in [
            &["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"][..],
            &["a b"],
            &[""],
            &["x", "y"],
        ] {
            let id = for_request(&with(bad));
            assert_eq!(id.len(), 32, "{bad:?}");
            assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit));
        }
        let long: &'static str = Box::leak("a".repeat(129).into_boxed_str());
        assert_eq!(for_request(&with(&[long])).len(), 32);
    }

    #[test]
    fn hex_ids_are_what_format_would_write() {
        for (p, n) in [(0, 0), (u64::MAX, 1), (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210)] {
            assert_eq!(hex_id(p, n).as_slice(), format!("{p:016x}{n:016x}").as_bytes());
        }
    }

    #[test]
    fn generated_ids_are_unique() {
        let a = for_request(&HeaderMap::new());
        let b = for_request(&HeaderMap::new());
        assert_ne!(a, b);
    }
}
