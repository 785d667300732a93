//! Verified claims: what the rest of the request path may trust.

use serde_json::{Map, Value};

use crate::revocation::TokenRef;

/// The claims of a token whose signature, issuer, audience and times were
/// checked. The raw map is kept for identity headers and route requirements.
#[derive(Debug, Clone)]
pub struct Claims {
    map: Map<String, Value>,
    /// `exp`, seconds since the epoch (always present after verification).
    pub exp: i64,
    /// `nbf`, when the token carries one.
    pub nbf: Option<i64>,
    /// `iat`, when the token carries one; revocation treats absence as the epoch.
    pub iat: Option<i64>,
}

impl Claims {
    pub(super) fn new(map: Map<String, Value>, exp: i64, nbf: Option<i64>, iat: Option<i64>) -> Self {
        Claims { map, exp, nbf, iat }
    }

    /// Claims from a JSON object without verification, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(v: Value) -> Self {
        let Value::Object(map) = v else {
            panic!("claims must be an object")
        };
        let iat = map.get("iat").and_then(numeric_date);
        let exp = map.get("exp").and_then(numeric_date).unwrap_or(i64::MAX);
        let nbf = map.get("nbf").and_then(numeric_date);
        Claims { map, exp, nbf, iat }
    }

    /// Any claim by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    /// `sub`, when it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.map.get("sub").and_then(Value::as_str)
    }

    /// `sid` (the login session, OpenID Connect's claim name), when it is a string.
    pub fn session_id(&self) -> Option<&str> {
        self.map.get("sid").and_then(Value::as_str)
    }

    /// `jti`, when it is a string.
    pub fn jti(&self) -> Option<&str> {
        self.map.get("jti").and_then(Value::as_str)
    }

    /// What the revocation check reads of this token.
    pub fn token_ref(&self) -> TokenRef<'_> {
        TokenRef {
            jti: self.jti(),
            sid: self.session_id(),
            sub: self.subject(),
            iat: self.iat,
        }
    }

    /// Granted scopes: the space-separated `scope` claim (RFC 8693 §4.2), or
    /// the `scp` claim as an array or a space-separated string (Okta, Azure AD).
    /// Only the space (0x20) separates scopes (RFC 6749 §3.3): a tab or a
    /// newline is part of a (malformed) scope, never a second one.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        let from_scope = self
            .map
            .get("scope")
            .and_then(Value::as_str)
            .into_iter()
            .flat_map(scope_tokens);
        let scp = self.map.get("scp");
        let from_scp_str = scp.and_then(Value::as_str).into_iter().flat_map(scope_tokens);
        let from_scp_arr = scp
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        from_scope.chain(from_scp_str).chain(from_scp_arr)
    }
}

fn scope_tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(' ').filter(|t| !t.is_empty())
}

/// Reads a NumericDate (RFC 7519 §2): a JSON number of seconds, possibly
/// fractional, truncated towards the past.
pub fn numeric_date(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    // Out-of-range values are refused rather than saturated into something valid.
    (f.is_finite() && f.abs() < 1e15).then(|| f.floor() as i64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Claims {
        let Value::Object(map) = v else { unreachable!() };
        Claims::new(map, 0, None, None)
    }

    #[test]
    fn scopes_from_scope_and_scp() {
        let c = claims(json!({"scope": "read  write"}));
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["read", "write"]);
        let c = claims(json!({"scp": ["admin", 3, "read"]}));
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["admin", "read"]);
        let c = claims(json!({"scp": "a b"}));
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["a", "b"]);
        let c = claims(json!({"scope": ["not", "a", "string"]}));
        assert_eq!(c.scopes().count(), 0);
        let c = claims(json!({"scope": "read\tadmin x\nadmin"}));
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["read\tadmin", "x\nadmin"]);
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(numeric_date(&json!(1700000000)), Some(1700000000));
        assert_eq!(numeric_date(&json!(1700000000.9)), Some(1700000000));
        assert_eq!(numeric_date(&json!("1700000000")), None);
        assert_eq!(numeric_date(&json!(1e300)), None);
    }
}
