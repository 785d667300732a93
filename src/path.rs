//! Path normalisation: the one spelling of a request path that route policy
//! judges and the app receives.
//!
//! The rule (RFC 3986 §6.2.2 plus refusals for spellings that apps disagree on):
//! 1. percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded,
//!    other percent-encodings keep their encoding with upper-case hex;
//! 2. an encoded `/` (`%2F`), `\` (`%5C`) or NUL (`%00`), a raw `\`, and a
//!    malformed `%` escape are refused (400): apps decode them differently, so
//!    no single answer is safe;
//! 3. repeated slashes collapse to one;
//! 4. `.` segments are removed and `..` removes the segment before it; `..` at
//!    the root stays at the root, so no input normalises outside it;
//! 5. a segment that is `.` or `..` followed by `;` (Tomcat-style path
//!    parameters, `/..;/admin`) is refused, since some servers treat it as `..`;
//! 6. a trailing slash is kept (`/a/b/` and `/a/b` are different paths).
//!
//! `;` path parameters are a separate step ([`parameters`]): Java servers
//! (Tomcat, Jetty, Spring) drop `;...` from each segment before routing while
//! other servers keep it, so `/admin;x/panel` names two different resources.
//! By default such a path is refused; with `strip`, the parameters are removed
//! and the app receives exactly the path the policy judged.

use std::borrow::Cow;

/// Why a path has no safe normal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Origin-form paths start with `/`; `*` and authority-form are not proxied.
    #[error("path does not start with '/'")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding")]
    BadPercentEncoding,
    /// `%2F`, `%5C` or `%00`: separators or NUL smuggled through encoding.
    #[error("encoded '/', '\\' or NUL in path")]
    EncodedSeparator,
    /// A raw backslash, which some servers treat as a separator.
    #[error("backslash in path")]
    Backslash,
    /// `.;` or `..;` segments, which some servers treat as dot segments.
    #[error("dot segment with path parameters")]
    DotSegmentParameter,
    /// `;` path parameters, refused by `http.path_parameters: reject`.
    #[error("path parameters (';')")]
    Parameters,
    /// `%3B`, an encoded `;` that a server may decode before stripping parameters.
    #[error("encoded ';' in path")]
    EncodedParameter,
    /// A case-insensitive router would serve the path under another rule.
    #[error("path falls under another route rule when case is ignored")]
    CaseAmbiguous,
    /// Decision mode: the path is not in normal form. The ingress forwards
    /// it as sent, so the app would not get the spelling that was judged.
    #[error("path is not in normal form")]
    NotNormal,
}

/// True when `path` carries `;` path parameters, raw or percent-encoded.
pub fn has_parameters(path: &str) -> bool {
    let b = path.as_bytes();
    b.contains(&b';')
        || b.windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'3' && w[2].eq_ignore_ascii_case(&b'b'))
}

/// Applies the path-parameter rule to a normalised `path`: with `strip`
/// false, any parameter is refused; with `strip`, `;...` is removed from
/// every segment and the result normalised again (`/a;x/b` -> `/a/b`,
/// `/;x/b` -> `/b`). An encoded `;` is refused either way: a server that
/// decodes before stripping would read parameters we did not see.
pub fn parameters(path: &str, strip: bool) -> Result<Cow<'_, str>, PathError> {
    if !has_parameters(path) {
        return Ok(Cow::Borrowed(path));
    }
    if !path.contains(';') {
        return Err(PathError::EncodedParameter);
    }
    if !strip {
        return Err(PathError::Parameters);
    }
    if has_parameters(&path.replace(';', "")) {
        return Err(PathError::EncodedParameter);
    }
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(segment.split(';').next().unwrap_or(""));
    }
    // Stripping can leave empty segments (`/;x/b`); normalising collapses them.
    Ok(Cow::Owned(normalise(&out)?.into_owned()))
}

/// Returns the normal form of `path` (borrowed when it is already normal).
///
/// ```
/// use tokengate::path::{normalise, PathError};
/// assert_eq!(normalise("/public/%2e%2e//%61dmin/./x").unwrap(), "/admin/x");
/// assert_eq!(normalise("/public/..;/admin"), Err(PathError::DotSegmentParameter));
/// ```
pub fn normalise(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if is_plainly_normal(bytes) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(bytes)?;
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    // The first piece is the empty string before the leading '/'.
    for segment in decoded.split('/').skip(1) {
        trailing_slash = true;
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => {
                let before_params = other.split(';').next().unwrap_or(other);
                if before_params == "." || before_params == ".." {
                    return Err(PathError::DotSegmentParameter);
                }
                segments.push(other);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// True when no rule above can change or refuse `bytes`, the common case.
fn is_plainly_normal(bytes: &[u8]) -> bool {
    !bytes.iter().any(|&b| b == b'%' || b == b'\\') && !bytes.windows(2).any(|w| w == b"//" || w == b"/.")
}

fn decode_unreserved(bytes: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\\' => return Err(PathError::Backslash),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&c| hex_value(c));
                let lo = bytes.get(i + 2).and_then(|&c| hex_value(c));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::BadPercentEncoding);
                };
                let value = hi << 4 | lo;
                if is_unreserved(value) {
                    out.push(char::from(value));
                } else if matches!(value, b'/' | b'\\' | 0) {
                    return Err(PathError::EncodedSeparator);
                } else {
                    out.push('%');
                    out.push(char::from(HEX_UPPER[usize::from(hi)]));
                    out.push(char::from(HEX_UPPER[usize::from(lo)]));
                }
                i += 3;
            }
            _ => {
                // Request paths are ASCII (http::Uri rejects anything else), so
                // pushing byte-wise keeps valid UTF-8; anything else is escaped.
                if b.is_ascii() {
                    out.push(char::from(b));
                } else {
                    out.push('%');
                    out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
                    out.push(char::from(HEX_UPPER[usize::from(b & 0xf)]));
                }
                i += 1;
            }
        }
    }
    Ok(out)
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        normalise(p).unwrap().into_owned()
    }

    #[test]
    fn already_normal_paths_are_borrowed() {
        for p in ["/", "/a", "/a/b/", "/a.b/c-d_e~f", "/a;x=1"] {
            assert!(matches!(normalise(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn dot_segments_and_slashes() {
        assert_eq!(n("/public/../admin/x"), "/admin/x");
        assert_eq!(n("//admin/x"), "/admin/x");
        assert_eq!(n("/admin/./x"), "/admin/x");
        assert_eq!(n("/a/b/.."), "/a/");
        assert_eq!(n("/a/b/."), "/a/b/");
        assert_eq!(n("/a//"), "/a/");
        assert_eq!(n("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(n("/.."), "/");
        assert_eq!(n("/.well-known/x"), "/.well-known/x");
        assert_eq!(n("/a/..."), "/a/...");
    }

    #[test]
    fn percent_decoding_of_unreserved_only() {
        assert_eq!(n("/%61dmin/x"), "/admin/x");
        assert_eq!(n("/public/%2e%2e/admin/x"), "/admin/x");
        assert_eq!(n("/public/%2E%2E/admin/x"), "/admin/x");
        assert_eq!(n("/a%20b"), "/a%20b");
        assert_eq!(n("/a%3fb"), "/a%3Fb");
        assert_eq!(n("/%7euser"), "/~user");
        assert_eq!(n("/%252e%252e/x"), "/%252e%252e/x");
    }

    #[test]
    fn refusals() {
        assert_eq!(normalise("admin"), Err(PathError::NotAbsolute));
        assert_eq!(normalise("*"), Err(PathError::NotAbsolute));
        assert_eq!(normalise(""), Err(PathError::NotAbsolute));
        assert_eq!(normalise("/a%2fb"), Err(PathError::EncodedSeparator));
        assert_eq!(normalise("/a%2Fb"), Err(PathError::EncodedSeparator));
        assert_eq!(normalise("/a%5cb"), Err(PathError::EncodedSeparator));
        assert_eq!(normalise("/a%00"), Err(PathError::EncodedSeparator));
        assert_eq!(normalise("/a\\b"), Err(PathError::Backslash));
        assert_eq!(normalise("/a%"), Err(PathError::BadPercentEncoding));
        assert_eq!(normalise("/a%g1"), Err(PathError::BadPercentEncoding));
        assert_eq!(normalise("/a%1"), Err(PathError::BadPercentEncoding));
        assert_eq!(normalise("/public/..;/admin"), Err(PathError::DotSegmentParameter));
        assert_eq!(normalise("/public/.;x/admin"), Err(PathError::DotSegmentParameter));
        assert_eq!(normalise("/public/%2e%2e;/admin"), Err(PathError::DotSegmentParameter));
    }

    #[test]
    fn path_parameters() {
        assert_eq!(parameters("/admin/panel", false).unwrap(), "/admin/panel");
        assert_eq!(
            parameters("/admin;jsessionid=0/panel", false),
            Err(PathError::Parameters)
        );
        assert_eq!(parameters("/admin%3Bx/panel", false), Err(PathError::EncodedParameter));
        assert_eq!(parameters("/admin%3bx/panel", true), Err(PathError::EncodedParameter));
        assert_eq!(parameters("/a;x%3B/b", true), Err(PathError::EncodedParameter));
        assert_eq!(parameters("/admin;jsessionid=0/panel", true).unwrap(), "/admin/panel");
        assert_eq!(
            parameters("/legacy/admin;x/panel;y", true).unwrap(),
            "/legacy/admin/panel"
        );
        assert_eq!(parameters("/;x/admin/", true).unwrap(), "/admin/");
        assert_eq!(parameters("/a/;x", true).unwrap(), "/a/");
        assert_eq!(parameters("/;", true).unwrap(), "/");
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for p in [
            "/public/../admin/x",
            "//a//b/./c/../d/",
            "/%61%62%2e/%7e/%3a",
            "/a/%252e%252e/",
            "/x/y/z/../../..",
        ] {
            let once = n(p);
            assert_eq!(n(&once), once, "{p}");
        }
    }
}
