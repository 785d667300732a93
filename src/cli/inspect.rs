//! `tokengate token inspect`: what a token says and, against a config, why
//! it would be refused: the detail a 401 keeps from clients, for the
//! operator whose user says "I get 401".

use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::auth::{Verifier, authorize};
use crate::clock::unix_now;
use crate::config::{Access, Config};
use crate::route::RoutePolicy;

/// Exit codes: 0 the token passes (and the route, when given, admits it),
/// 1 it would be refused, 2 it is not a JWT at all.
pub(super) fn inspect(token: &str, config: Option<&Config>, route: Option<(&str, &str)>) -> ExitCode {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
        eprintln!("not a JWT: expected header.payload.signature");
        return ExitCode::from(2);
    };
    let decode = |part: &str| -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let (Some(header), Some(claims)) = (decode(header), decode(payload)) else {
        eprintln!("not a JWT: the header or payload is not base64url JSON");
        return ExitCode::from(2);
    };
    println!("header: {header}");
    println!(
        "claims: {}",
        serde_json::to_string_pretty(&claims).unwrap_or_else(|_| claims.to_string())
    );
    let now = unix_now();
    for name in ["iat", "nbf", "exp"] {
        if let Some(t) = claims.get(name).and_then(Value::as_i64) {
            println!("  {name}: {} ({})", rfc3339(t), relative(t - now));
        }
    }
    let Some(config) = config else {
        println!("not checked: give --config FILE to check it as the proxy would");
        return ExitCode::SUCCESS;
    };
    let verifier = Verifier::new(&config.auth.issuers, config.auth.leeway.as_secs());
    let verified = match verifier.verify(token, now) {
        Ok(claims) => claims,
        Err(e) => {
            let remote = claims
                .get("iss")
                .and_then(Value::as_str)
                .and_then(|iss| config.issuer(iss))
                .and_then(|i| i.remote.as_ref());
            match remote {
                Some(r) => println!(
                    "check ({}): refused: {e}; this issuer's keys come from {} (not fetched here), so an unknown kid or bad signature may only mean that",
                    config.origin, r.url
                ),
                None => println!("check ({}): refused: {e}", config.origin),
            }
            return ExitCode::from(1);
        }
    };
    println!(
        "check ({}): valid (signature, issuer, audience, times); the revocation mirror is not consulted here",
        config.origin
    );
    let Some((method, path)) = route else {
        return ExitCode::SUCCESS;
    };
    let policy = RoutePolicy::new(config.routes.clone());
    let Ok(method) = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
        eprintln!("`{method}` is not a method");
        return ExitCode::from(2);
    };
    let path = match crate::path::normalise(path) {
        Ok(p) => p.into_owned(),
        Err(e) => {
            println!("route {method} {path}: refused (400): {e}");
            return ExitCode::from(1);
        }
    };
    match policy.access(&method, &path) {
        Access::Public => println!("route {method} {path}: public, no token needed"),
        Access::Token(requirements) => match authorize(requirements, &verified) {
            Ok(()) => println!("route {method} {path}: allowed (requires {})", describe(requirements)),
            Err(e) => {
                println!(
                    "route {method} {path}: refused (403): {e} (requires {})",
                    describe(requirements)
                );
                return ExitCode::from(1);
            }
        },
    }
    ExitCode::SUCCESS
}

fn describe(r: &crate::config::Requirements) -> String {
    let mut parts = Vec::new();
    if r.scopes.is_empty() && r.claims.is_empty() {
        parts.push("any valid token".to_owned());
    }
    if !r.scopes.is_empty() {
        parts.push(format!("scopes {}", r.scopes.join(" ")));
    }
    for (name, value) in &r.claims {
        parts.push(format!("claim {name} = {value}"));
    }
    parts.join(", ")
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian).
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn relative(delta: i64) -> String {
    let s = delta.unsigned_abs();
    let span = match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    };
    if delta >= 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
