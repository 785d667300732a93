//! `routes[]`: matchers, methods, upgrades and requirements.

use super::*;

pub(super) fn route(c: &mut Check<'_>, path: &str, raw: &RawRoute) -> Option<Route> {
    let matcher = match (&raw.path, &raw.prefix) {
        (Some(p), None) => PathMatch::Exact(route_path(c, &format!("{path}.path"), p)?),
        (None, Some(p)) => PathMatch::Prefix(route_path(c, &format!("{path}.prefix"), p)?),
        _ => {
            c.problem(path, None, "needs exactly one of `path` (exact) or `prefix`");
            return None;
        }
    };
    let methods = match &raw.methods {
        None => None,
        Some(list) => {
            let mut out = Vec::new();
            for (i, m) in list.iter().enumerate() {
                match http::Method::from_bytes(m.value.to_ascii_uppercase().as_bytes()) {
                    Ok(method) => out.push(method),
                    Err(_) => c.problem(
                        format!("{path}.methods[{i}]"),
                        line(m),
                        format!("`{}` is not a method", m.value),
                    ),
                }
            }
            Some(out)
        }
    };
    let upgrades = requests::upgrades(c, path, raw.upgrades.as_deref());
    let public = raw.public.as_ref().is_some_and(|p| p.value);
    let access = match (public, &raw.require) {
        (true, Some(_)) => {
            c.problem(
                format!("{path}.require"),
                raw.public.as_ref().and_then(line),
                "a public route has no token to check; drop `public: true` or `require`",
            );
            return None;
        }
        (true, None) => Access::Public,
        (false, None) => Access::Token(Requirements::default()),
        (false, Some(req)) => Access::Token(requirements(c, &format!("{path}.require"), req)),
    };
    Some(Route {
        matcher,
        methods,
        upgrades,
        access,
    })
}

pub(super) fn route_path(c: &mut Check<'_>, path: &str, v: &S<String>) -> Option<String> {
    if crate::path::has_parameters(&v.value) {
        c.problem(
            path,
            line(v),
            format!(
                "`{}`: `;` path parameters are refused or stripped before routes are matched",
                v.value
            ),
        );
        return None;
    }
    match crate::path::normalise(&v.value) {
        Ok(n) if n == v.value => Some(n.into_owned()),
        Ok(n) => {
            c.problem(
                path,
                line(v),
                format!(
                    "`{}` is not in normal form; requests are matched after normalisation, write `{n}`",
                    v.value
                ),
            );
            None
        }
        Err(e) => {
            c.problem(path, line(v), format!("`{}`: {e}", v.value));
            None
        }
    }
}

pub(super) fn requirements(c: &mut Check<'_>, path: &str, raw: &RawRequire) -> Requirements {
    let mut out = Requirements::default();
    for (i, s) in raw.scopes.iter().enumerate() {
        if s.value.is_empty() || s.value.contains(char::is_whitespace) {
            c.problem(format!("{path}.scopes[{i}]"), line(s), "a scope is one non-empty word");
        } else {
            out.scopes.push(s.value.clone());
        }
    }
    for (name, value) in &raw.claims {
        match value {
            serde_json::Value::String(_) | serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                out.claims.push((name.clone(), value.clone()));
            }
            _ => c.problem(
                format!("{path}.claims.{name}"),
                None,
                "must be a string, number or boolean",
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::table::{BASE, check};

    #[test]
    fn table() {
        let bad = format!(
            "{BASE}routes:\n  - prefix: /a/../b\n  - path: /x\n    prefix: /y\n  - prefix: /p\n    public: true\n    require: {{ scopes: [a] }}\n  - prefix: /m\n    methods: [\"GE T\"]\n    require: {{ scopes: [\"two words\"] }}\n  - prefix: \"/a;b\"\n"
        );
        let good = format!(
            "{BASE}routes:\n  - prefix: /a/\n    methods: [get, DELETE]\n    require: {{ scopes: [x], claims: {{ role: admin }} }}\n  - path: /p\n    public: true\n"
        );
        check(&[
            (&good, &[]),
            (
                &bad,
                &[
                    "routes[0].prefix: `/a/../b` is not in normal form; requests are matched after normalisation, write `/b`",
                    "routes[1]: needs exactly one of `path` (exact) or `prefix`",
                    "routes[2].require: a public route has no token to check; drop `public: true` or `require`",
                    "routes[3].methods[0]: `GE T` is not a method",
                    "routes[3].require.scopes[0]: a scope is one non-empty word",
                    "routes[4].prefix: `/a;b`: `;` path parameters are refused or stripped before routes are matched",
                ],
            ),
        ]);
    }
}
