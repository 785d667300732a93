//! The `http:` section and a route's `upgrades`: how request spellings that
//! the app may read differently from us are treated.

use super::super::raw::{RawHttp, S};
use super::super::{CaseAmbiguousPaths, HeaderNames, HttpRules, PathParameters};
use super::{Check, line};

/// Upgrade tokens no route may allow: `h2c` switches the connection to
/// HTTP/2, whose requests would then reach the app unjudged.
const NEVER_UPGRADE: &[&str] = &["h2c", "h2"];

pub(super) fn http_rules(c: &mut Check<'_>, raw: Option<&RawHttp>) -> HttpRules {
    let mut rules = HttpRules::default();
    let Some(raw) = raw else { return rules };
    if let Some(v) = &raw.header_names {
        let choices = [("strict", HeaderNames::Strict), ("lenient", HeaderNames::Lenient)];
        if let Some(choice) = c.choice("http.header_names", v, &choices) {
            rules.header_names = choice;
        }
    }
    if let Some(list) = &raw.strip_headers {
        rules.strip.clear();
        for (i, v) in list.iter().enumerate() {
            match http::HeaderName::from_bytes(v.value.to_ascii_lowercase().as_bytes()) {
                Ok(name) => rules.strip.push(name),
                Err(_) => c.problem(
                    format!("http.strip_headers[{i}]"),
                    line(v),
                    format!("`{}` is not a header name", v.value),
                ),
            }
        }
    }
    if let Some(v) = &raw.path_parameters {
        let choices = [("reject", PathParameters::Reject), ("strip", PathParameters::Strip)];
        if let Some(choice) = c.choice("http.path_parameters", v, &choices) {
            rules.path_parameters = choice;
        }
    }
    if let Some(v) = &raw.case_ambiguous_paths {
        let choices = [
            ("reject", CaseAmbiguousPaths::Reject),
            ("allow", CaseAmbiguousPaths::Allow),
        ];
        if let Some(choice) = c.choice("http.case_ambiguous_paths", v, &choices) {
            rules.case_ambiguous_paths = choice;
        }
    }
    rules
}

/// The protocols a route lets clients switch to; WebSocket when unset.
pub(super) fn upgrades(c: &mut Check<'_>, path: &str, raw: Option<&[S<String>]>) -> Vec<String> {
    let Some(list) = raw else {
        return vec!["websocket".to_owned()];
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let token = v.value.to_ascii_lowercase();
        let at = format!("{path}.upgrades[{i}]");
        if token.is_empty()
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b))
        {
            c.problem(at, line(v), format!("`{}` is not a protocol name", v.value));
        } else if NEVER_UPGRADE.contains(&token.split('/').next().unwrap_or(&token)) {
            c.problem(
                at,
                line(v),
                format!(
                    "`{}` would open an HTTP/2 connection to the app whose requests the proxy never judges",
                    v.value
                ),
            );
        } else {
            out.push(token);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::table::{BASE, problems_of};
    use crate::config::{Config, FileBase, HeaderNames, PathParameters};

    fn problems(yaml: &str) -> Vec<String> {
        problems_of(&format!("{BASE}{yaml}"))
    }

    #[test]
    fn defaults_are_strict_names_rejected_parameters_and_websocket_only() {
        let c = Config::from_yaml_str(&format!("{BASE}routes: [{{ prefix: / }}]\n"), FileBase::Embedded, "t").unwrap();
        assert_eq!(c.http.header_names, HeaderNames::Strict);
        assert_eq!(c.http.path_parameters, PathParameters::Reject);
        assert_eq!(c.routes[0].upgrades, ["websocket"]);
    }

    #[test]
    fn table() {
        let cases: &[(&str, &[&str])] = &[
            (
                "http: { header_names: lenient, path_parameters: strip, case_ambiguous_paths: allow }\n",
                &[],
            ),
            ("http: { strip_headers: [X-Real-IP, forwarded] }\n", &[]),
            (
                "http: { strip_headers: [\"bad name\"] }\n",
                &["http.strip_headers[0]: `bad name` is not a header name"],
            ),
            (
                "http: { case_ambiguous_paths: insensitive }\n",
                &["http.case_ambiguous_paths: `insensitive` is not one of: reject, allow"],
            ),
            (
                "http: { header_names: drop }\n",
                &["http.header_names: `drop` is not one of: strict, lenient"],
            ),
            (
                "http: { path_parameters: keep }\n",
                &["http.path_parameters: `keep` is not one of: reject, strip"],
            ),
            ("routes: [{ prefix: /ws/, upgrades: [websocket, TLS/1.0] }]\n", &[]),
            ("routes: [{ prefix: /, upgrades: [] }]\n", &[]),
            (
                "routes: [{ prefix: /, upgrades: [H2C, \"a b\"] }]\n",
                &[
                    "routes[0].upgrades[0]: `H2C` would open an HTTP/2 connection to the app whose requests the proxy never judges",
                    "routes[0].upgrades[1]: `a b` is not a protocol name",
                ],
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(problems(yaml), *want, "{yaml}");
        }
    }
}
