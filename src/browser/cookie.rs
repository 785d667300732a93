//! The browser's cookies: their names, how they are set and cleared, and
//! reading them from a request. Every cookie is HttpOnly (never readable by
//! scripts), `SameSite=Lax`, `Path=/`, host-only; `Secure` with the
//! `__Host-` prefix unless plain http on loopback was configured.

use http::{HeaderMap, HeaderValue};

/// Which of the browser's cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jar {
    /// The session's access token.
    Access,
    /// The session's refresh token.
    Refresh,
    /// The provider's ID token (the `id_token_hint` of a sign-out).
    Id,
}

/// Cookie names and attributes for one configuration.
#[derive(Debug, Clone)]
pub struct Cookies {
    /// `__Host-` when secure, nothing on plain http.
    prefix: &'static str,
    secure: bool,
}

const ACCESS: &str = "tokengate-access";
const REFRESH: &str = "tokengate-refresh";
const ID: &str = "tokengate-id";
const LOGIN: &str = "tokengate-login-";

impl Cookies {
    /// `secure: false` only for plain http on loopback (validated).
    pub fn new(secure: bool) -> Cookies {
        Cookies {
            prefix: if secure { "__Host-" } else { "" },
            secure,
        }
    }

    fn name(&self, jar: Jar) -> String {
        let base = match jar {
            Jar::Access => ACCESS,
            Jar::Refresh => REFRESH,
            Jar::Id => ID,
        };
        format!("{}{base}", self.prefix)
    }

    /// The name of the cookie of the sign-in with `state` (one per sign-in,
    /// so two tabs signing in at once do not overwrite each other's).
    pub fn login_name(&self, state: &str) -> String {
        format!("{}{LOGIN}{}", self.prefix, state.get(..16).unwrap_or(state))
    }

    fn attributes(&self, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("Path=/; Max-Age={max_age}; HttpOnly{secure}; SameSite=Lax")
    }

    /// True for a cookie name tokengate sets (with or without the
    /// `__Host-` prefix: a look-alike without it is not forwarded either).
    pub fn is_ours(&self, name: &str) -> bool {
        let base = name.strip_prefix("__Host-").unwrap_or(name);
        base == ACCESS || base == REFRESH || base == ID || base.starts_with(LOGIN)
    }

    /// `Set-Cookie` for `jar` holding `value` for `max_age` seconds.
    pub fn set(&self, jar: Jar, value: &str, max_age: u64) -> String {
        format!("{}={value}; {}", self.name(jar), self.attributes(max_age))
    }

    /// `Set-Cookie` for the login cookie of `state`.
    pub fn set_login(&self, state: &str, value: &str, max_age: u64) -> String {
        format!("{}={value}; {}", self.login_name(state), self.attributes(max_age))
    }

    /// `Set-Cookie` that deletes `jar`.
    pub fn clear(&self, jar: Jar) -> String {
        format!("{}=; {}", self.name(jar), self.attributes(0))
    }

    /// The names of the sign-in cookies the request carries.
    pub fn login_names(&self, headers: &HeaderMap) -> Vec<String> {
        let prefix = format!("{}{LOGIN}", self.prefix);
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .flat_map(|h| h.as_bytes().split(|&b| b == b';'))
            .filter_map(|pair| {
                let name = std::str::from_utf8(name_of(pair.trim_ascii())).ok()?;
                name.starts_with(&prefix).then(|| name.to_owned())
            })
            .collect()
    }

    /// `Set-Cookie` that deletes the cookie `name` (one of ours).
    pub fn clear_named(&self, name: &str) -> String {
        format!("{name}=; {}", self.attributes(0))
    }

    /// `Set-Cookie` that deletes the login cookie of `state`.
    pub fn clear_login(&self, state: &str) -> String {
        format!("{}=; {}", self.login_name(state), self.attributes(0))
    }

    /// The value of `jar` in the request, if sent exactly once (a cookie
    /// sent twice, as a planted one beside ours would be, counts as none).
    pub fn get<'h>(&self, headers: &'h HeaderMap, jar: Jar) -> Option<&'h str> {
        single(headers, &self.name(jar))
    }

    /// The value of the login cookie of `state`, if sent exactly once.
    pub fn get_login<'h>(&self, headers: &'h HeaderMap, state: &str) -> Option<&'h str> {
        single(headers, &self.login_name(state))
    }
}

/// The one value of cookie `name` across every `Cookie` header, or `None`
/// when it is absent, sent twice, or not visible ASCII. Headers are read as
/// bytes: another cookie's non-ASCII value (one a sibling subdomain can
/// set) must not hide ours.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found: Option<&[u8]> = None;
    for header in headers.get_all(http::header::COOKIE) {
        for pair in header.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if &pair[..eq] == name.as_bytes() {
                if found.is_some() {
                    return None;
                }
                found = Some(&pair[eq + 1..]);
            }
        }
    }
    let value = found?;
    if value.is_empty() || !value.iter().all(|&b| b.is_ascii_graphic() && b != b';' && b != b',') {
        return None;
    }
    std::str::from_utf8(value).ok()
}

/// The name of a `name=value` pair (all of it when there is no `=`).
fn name_of(pair: &[u8]) -> &[u8] {
    pair.split(|&b| b == b'=').next().unwrap_or(pair)
}

impl Cookies {
    /// True for a pair (`name=value`, or a `Set-Cookie` value) whose name is ours.
    pub fn names_ours(&self, pair: &[u8]) -> bool {
        std::str::from_utf8(name_of(pair.trim_ascii())).is_ok_and(|n| self.is_ours(n.trim()))
    }
}

/// True when the request's `Cookie` headers need rewriting for the app: one
/// of ours is among them, or they are split over several headers.
pub fn needs_stripping(headers: &HeaderMap, cookies: &Cookies) -> bool {
    let mut values = headers.get_all(http::header::COOKIE).iter();
    let Some(first) = values.next() else { return false };
    values.next().is_some()
        || first
            .as_bytes()
            .split(|&b| b == b';')
            .any(|pair| cookies.names_ours(pair))
}

/// The `Cookie` header without tokengate's cookies, every `Cookie` header
/// joined into one (HTTP/2 may split them; HTTP/1.1 must not, RFC 9113
/// §8.2.3), read as bytes. `None` when nothing is left.
pub fn without_ours(headers: &HeaderMap, cookies: &Cookies) -> Option<HeaderValue> {
    let mut kept: Vec<u8> = Vec::new();
    for header in headers.get_all(http::header::COOKIE) {
        for pair in header.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() || cookies.names_ours(pair) {
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_bytes(&kept).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(http::header::COOKIE, c.parse().unwrap());
        }
        h
    }

    #[test]
    fn secure_cookies_are_host_only_http_only_lax() {
        let c = Cookies::new(true);
        assert_eq!(
            c.set(Jar::Access, "tok", 60),
            "__Host-tokengate-access=tok; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(
            c.clear(Jar::Refresh),
            "__Host-tokengate-refresh=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(
            c.set_login("0123456789abcdefXYZ", "v", 600),
            "__Host-tokengate-login-0123456789abcdef=v; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Lax"
        );
        let plain = Cookies::new(false);
        assert_eq!(
            plain.set(Jar::Id, "i", 5),
            "tokengate-id=i; Path=/; Max-Age=5; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn a_cookie_is_read_once_across_headers_and_refused_when_doubled() {
        let c = Cookies::new(true);
        let h = headers(&["a=1; __Host-tokengate-access=tok", "b=2"]);
        assert_eq!(c.get(&h, Jar::Access), Some("tok"));
        assert_eq!(c.get(&h, Jar::Refresh), None);
        let doubled = headers(&["__Host-tokengate-access=tok", "__Host-tokengate-access=planted"]);
        assert_eq!(c.get(&doubled, Jar::Access), None);
        // Without the prefix it is another cookie (one a subdomain could plant).
        let planted = headers(&["tokengate-access=planted"]);
        assert_eq!(c.get(&planted, Jar::Access), None);
        assert_eq!(c.get(&headers(&["__Host-tokengate-access="]), Jar::Access), None);
        // A non-ASCII cookie beside ours does not hide it.
        let mut h = HeaderMap::new();
        h.append(
            http::header::COOKIE,
            HeaderValue::from_bytes(b"x=\xc3\xa9; __Host-tokengate-access=tok").unwrap(),
        );
        assert_eq!(c.get(&h, Jar::Access), Some("tok"));
    }

    #[test]
    fn ours_are_removed_from_what_the_app_gets_whatever_else_is_there() {
        let c = Cookies::new(true);
        let mut h = headers(&["a=1; __Host-tokengate-access=tok", "tokengate-refresh=r; b=2"]);
        h.append(
            http::header::COOKIE,
            HeaderValue::from_bytes(b"x=\xc3\xa9; __Host-tokengate-login-abc=s").unwrap(),
        );
        let kept = without_ours(&h, &c).unwrap();
        assert_eq!(kept.as_bytes(), b"a=1; b=2; x=\xc3\xa9");
        assert_eq!(without_ours(&headers(&["__Host-tokengate-id=i"]), &c), None);
        // Left alone (no rewrite, no allocation) unless there is work.
        assert!(!needs_stripping(&headers(&["a=1; b=2"]), &c));
        assert!(!needs_stripping(&HeaderMap::new(), &c));
        assert!(needs_stripping(&headers(&["a=1", "b=2"]), &c));
        assert!(needs_stripping(&headers(&["a=1; tokengate-refresh=r"]), &c));
    }
}
