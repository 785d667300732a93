//! Token extraction: find the token in the configured sources, in order.
//! Pure functions over headers and the query string.

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};

use super::AuthError;
use crate::config::TokenSource;

/// Returns the token from the first source that carries one.
///
/// A source that is absent, or an `Authorization` header with another scheme
/// (`Basic ...`), falls through to the next source. A source that is present
/// but unusable (two `Authorization` headers, `Bearer` with nothing after it,
/// bytes that are not visible ASCII) is an error: guessing which of two
/// credentials the client meant is how confused-deputy bugs start.
pub fn extract<'a>(
    sources: &[TokenSource],
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    max_token_bytes: usize,
) -> Result<&'a str, AuthError> {
    for source in sources {
        let found = match source {
            TokenSource::Bearer => bearer(headers)?,
            TokenSource::Header(name) => single_header(headers, name)?,
            TokenSource::Cookie(name) => cookie(headers, name)?,
            TokenSource::Query(name) => match query {
                Some(q) => query_param(q, name)?,
                None => None,
            },
        };
        if let Some(token) = found {
            if token.len() > max_token_bytes {
                return Err(AuthError::TokenTooLarge);
            }
            if token.is_empty() {
                return Err(AuthError::Malformed("empty token"));
            }
            return Ok(token);
        }
    }
    Err(AuthError::MissingToken)
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = single_header(headers, &AUTHORIZATION)? else {
        return Ok(None);
    };
    let Some((scheme, rest)) = value.split_once(' ') else {
        // `Bearer` alone is a bearer credential with no token.
        return if value.eq_ignore_ascii_case("bearer") {
            Err(AuthError::Malformed("empty bearer credential"))
        } else {
            Ok(None)
        };
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() {
        return Err(AuthError::Malformed("empty bearer credential"));
    }
    Ok(Some(token))
}

fn single_header<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Result<Option<&'a str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::Malformed("credential header sent twice"));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::Malformed("credential header is not visible ASCII"))?;
    Ok(Some(value.trim()))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    // HTTP/2 clients may split cookies over several headers (RFC 9113 §8.2.3).
    let mut found = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| same_name(k, name))
        .map(|(_, v)| v.trim().trim_matches('"'));
    let first = found.next();
    // Frameworks disagree on which of two same-named cookies wins.
    if found.next().is_some() {
        return Err(AuthError::Malformed("credential cookie sent twice"));
    }
    Ok(first)
}

/// Whether a cookie or query parameter named `key` (as sent) is the one
/// named `name`, as some app would read it: PHP decodes names and turns `.`,
/// ` ` and `[` into `_` (`access.token` is `$_GET['access_token']`),
/// ASP.NET compares without case. So names are compared percent- and
/// `+`-decoded, trimmed, lower-cased, with every character other than a
/// letter or digit read as `_`. Over-matching an odd name costs nothing;
/// under-matching lets the app read a token the proxy never saw.
fn same_name(key: &str, name: &str) -> bool {
    if key == name {
        return true;
    }
    let fold = |s: &str| -> String {
        let decoded: String = form_urlencoded::parse(s.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default();
        decoded
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    // Cheap exit for the usual case: a plain name that differs.
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if plain(key) && plain(name) {
        return false;
    }
    fold(key) == fold(name)
}

/// True when the query pair `pair` is parameter `name`, in any spelling the
/// app could decode to it ([`same_name`]).
fn is_param(pair: &str, name: &str) -> bool {
    same_name(pair.split_once('=').map_or(pair, |(k, _)| k), name)
}

/// The query's pairs; `;` separates them too, as in Rack 2 and older Python.
fn query_pairs(query: &str) -> impl Iterator<Item = &str> {
    query.split(['&', ';'])
}

fn query_param<'a>(query: &'a str, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut found = query_pairs(query)
        .filter(|pair| is_param(pair, name))
        .map(|pair| pair.split_once('=').map_or("", |(_, v)| v));
    let first = found.next();
    if found.next().is_some() {
        return Err(AuthError::Malformed("credential parameter sent twice"));
    }
    match first {
        // A token is base64url and dots; an encoded one would be read
        // differently by the app than by us.
        Some(v) if v.contains('%') || v.contains('+') => Err(AuthError::Malformed("encoded credential parameter")),
        other => Ok(other),
    }
}

/// Whether `query` holds parameter `name` in any spelling the app could read
/// as it.
pub fn has_query_param(query: &str, name: &str) -> bool {
    query_pairs(query).any(|pair| is_param(pair, name))
}

/// The query string without parameter `name` in any spelling the app could
/// read as it, so a token sent in the query never reaches the app (or its
/// access logs). `None` when nothing remains.
pub fn remove_query_param(query: &str, name: &str) -> Option<String> {
    let kept: Vec<std::borrow::Cow<'_, str>> = query
        .split('&')
        .filter_map(|pair| {
            if !pair.contains(';') {
                return (!is_param(pair, name)).then_some(std::borrow::Cow::Borrowed(pair));
            }
            let parts: Vec<&str> = pair.split(';').filter(|p| !is_param(p, name)).collect();
            (!parts.is_empty()).then(|| std::borrow::Cow::Owned(parts.join(";")))
        })
        .collect();
    if kept.iter().all(|p| p.is_empty()) {
        None
    } else {
        Some(kept.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const ALL: &[TokenSource] = &[TokenSource::Bearer];

    #[test]
    fn bearer_variants() {
        assert_eq!(
            extract(ALL, &headers(&[("authorization", "Bearer abc")]), None, 100),
            Ok("abc")
        );
        assert_eq!(
            extract(ALL, &headers(&[("authorization", "bearer  abc ")]), None, 100),
            Ok("abc")
        );
        assert_eq!(
            extract(ALL, &headers(&[("authorization", "Basic dXNlcjpwYXNz")]), None, 100),
            Err(AuthError::MissingToken)
        );
        assert_eq!(extract(ALL, &headers(&[]), None, 100), Err(AuthError::MissingToken));
        assert!(matches!(
            extract(ALL, &headers(&[("authorization", "Bearer")]), None, 100),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            extract(ALL, &headers(&[("authorization", "Bearer ")]), None, 100),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            extract(
                ALL,
                &headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
                None,
                100
            ),
            Err(AuthError::Malformed(_))
        ));
        assert_eq!(
            extract(ALL, &headers(&[("authorization", "Bearer abcdef")]), None, 5),
            Err(AuthError::TokenTooLarge)
        );
    }

    #[test]
    fn sources_in_order() {
        let sources = [
            TokenSource::Bearer,
            TokenSource::Cookie("access_token".into()),
            TokenSource::Header(http::HeaderName::from_static("x-token")),
            TokenSource::Query("access_token".into()),
        ];
        let h = headers(&[
            ("cookie", "a=1; access_token=fromcookie; b=2"),
            ("x-token", "fromheader"),
        ]);
        assert_eq!(extract(&sources, &h, None, 100), Ok("fromcookie"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "access_token=split")]);
        assert_eq!(extract(&sources, &h, None, 100), Ok("split"));
        let h = headers(&[("x-token", "fromheader")]);
        assert_eq!(extract(&sources, &h, Some("access_token=q"), 100), Ok("fromheader"));
        assert_eq!(
            extract(&sources, &headers(&[]), Some("x=1&access_token=q"), 100),
            Ok("q")
        );
        let h = headers(&[("authorization", "Bearer first"), ("x-token", "second")]);
        assert_eq!(extract(&sources, &h, None, 100), Ok("first"));
    }

    #[test]
    fn duplicate_and_encoded_credentials_are_refused() {
        let cookie = [TokenSource::Cookie("at".into())];
        let h = headers(&[("cookie", "at=a; at=b")]);
        assert!(matches!(extract(&cookie, &h, None, 100), Err(AuthError::Malformed(_))));
        let h = headers(&[("cookie", "at=a"), ("cookie", "x=1; at=b")]);
        assert!(matches!(extract(&cookie, &h, None, 100), Err(AuthError::Malformed(_))));
        let query = [TokenSource::Query("access_token".into())];
        let none = HeaderMap::new();
        for q in [
            "access_token=a&access_token=b",
            "access_token=a&access%5Ftoken=b",
            "access_token=a&%61ccess_token=b",
            "access_token=a%2Eb",
        ] {
            assert!(
                matches!(extract(&query, &none, Some(q), 100), Err(AuthError::Malformed(_))),
                "{q}"
            );
        }
        assert_eq!(extract(&query, &none, Some("access%5Ftoken=abc"), 100), Ok("abc"));
        assert_eq!(
            remove_query_param("a=1&access%5ftoken=x", "access_token").as_deref(),
            Some("a=1")
        );
    }

    #[test]
    fn query_param_removal() {
        assert_eq!(remove_query_param("access_token=x", "access_token"), None);
        assert_eq!(
            remove_query_param("a=1&access_token=x&b=2", "access_token"),
            Some("a=1&b=2".into())
        );
        assert_eq!(
            remove_query_param("access_token=x&access_token=y&c", "access_token"),
            Some("c".into())
        );
        assert_eq!(
            remove_query_param("access_tokenx=1", "access_token"),
            Some("access_tokenx=1".into())
        );
    }
}
