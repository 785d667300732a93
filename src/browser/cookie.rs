//! The browser's cookies: their names, how they are set and cleared, and
//! reading them from a request. Every cookie is HttpOnly (never readable by
//! scripts), `SameSite=Lax`, `Path=/`, host-only; `Secure` with the
//! `__Host-` prefix unless plain http on loopback was configured.

use http::HeaderMap;

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
/// when it is absent, sent twice, or not visible ASCII.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found = None;
    for header in headers.get_all(http::header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((n, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if n == name {
                if found.is_some() {
                    return None;
                }
                found = Some(v);
            }
        }
    }
    found.filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b','))
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
    }
}
