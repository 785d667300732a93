//! `backchannel_logout` and each issuer's `backchannel_logout`: where
//! providers post logout tokens, and which audiences they may carry.

use super::*;

/// Where providers post logout tokens unless told.
const DEFAULT_PATH: &str = "/.tokengate/backchannel-logout";

pub(super) fn issuer_logout(c: &mut Check<'_>, path: &str, raw: Option<&RawIssuerLogout>) -> Option<IssuerLogout> {
    let raw = raw?;
    let lpath = format!("{path}.backchannel_logout.audiences");
    if raw.audiences.is_empty() {
        c.problem(
            &lpath,
            None,
            "must name the client id(s) the provider addresses logout tokens to",
        );
    }
    for (i, a) in raw.audiences.iter().enumerate() {
        if a.value.is_empty() {
            c.problem(format!("{lpath}[{i}]"), line(a), "must not be empty");
        }
    }
    Some(IssuerLogout {
        audiences: raw.audiences.iter().map(|a| a.value.clone()).collect(),
    })
}

pub(super) fn backchannel(
    c: &mut Check<'_>,
    raw: Option<&RawBackchannel>,
    issuers: &[Issuer],
) -> Option<BackchannelConfig> {
    let any_issuer = issuers.iter().any(|i| i.backchannel_logout.is_some());
    if !any_issuer {
        if raw.is_some() {
            c.problem(
                "backchannel_logout",
                None,
                "no issuer sends logout tokens: add backchannel_logout: { audiences: [...] } to one under auth.issuers",
            );
        }
        return None;
    }
    let path = match raw.and_then(|r| r.path.as_ref()) {
        None => DEFAULT_PATH.to_owned(),
        Some(p) => {
            let normal = crate::path::normalise(&p.value).ok().filter(|n| *n == p.value.as_str());
            if !p.value.starts_with('/') || normal.is_none() || p.value.contains(['?', '#', ';']) {
                c.problem(
                    "backchannel_logout.path",
                    line(p),
                    "must be an absolute path in normal form (no `..`, `//`, `;`, query or fragment)",
                );
            }
            p.value.clone()
        }
    };
    let max_age = c.positive_duration(
        "backchannel_logout.max_age",
        raw.and_then(|r| r.max_age.as_ref()),
        Duration::from_secs(300),
    );
    let revoke = match raw.and_then(|r| r.revoke.as_ref()) {
        None => LogoutRevokes::Subject,
        Some(r) => match r.value.as_str() {
            "subject" => LogoutRevokes::Subject,
            "session" => LogoutRevokes::Session,
            _ => {
                c.problem(
                    "backchannel_logout.revoke",
                    line(r),
                    "must be subject (every token of the user, the default) or session (the tokens carrying the logout's sid)",
                );
                LogoutRevokes::Subject
            }
        },
    };
    Some(BackchannelConfig { path, max_age, revoke })
}

#[cfg(test)]
mod tests {
    use super::super::table::check;

    #[test]
    fn table() {
        let base = "upstream: { url: \"http://127.0.0.1:3000\" }\nauth:\n  issuers:\n";
        let k = "keys: [{ algorithm: HS256, secret_file: dev-hs256-secret.DEVELOPMENT-ONLY.txt }]";
        check(&[
            (
                &format!("{base}    - {{ issuer: a, {k}, backchannel_logout: {{ audiences: [] }} }}\n"),
                &[
                    "auth.issuers[0].backchannel_logout.audiences: must name the client id(s) the provider addresses logout tokens to",
                ],
            ),
            (
                &format!("{base}    - {{ issuer: a, {k} }}\nbackchannel_logout: {{ max_age: 1m }}\n"),
                &[
                    "backchannel_logout: no issuer sends logout tokens: add backchannel_logout: { audiences: [...] } to one under auth.issuers",
                ],
            ),
            (
                &format!(
                    "{base}    - {{ issuer: a, {k}, backchannel_logout: {{ audiences: [rp] }} }}\nbackchannel_logout: {{ path: \"/a/../b\", max_age: 0s, revoke: everything }}\n"
                ),
                &[
                    "backchannel_logout.path: must be an absolute path in normal form (no `..`, `//`, `;`, query or fragment)",
                    "backchannel_logout.max_age: must be greater than zero",
                    "backchannel_logout.revoke: must be subject (every token of the user, the default) or session (the tokens carrying the logout's sid)",
                ],
            ),
        ]);
    }
}
