//! The `decision` section: the auth listener for ingresses and meshes.

use super::*;

/// Where the decision listens unless told: loopback, next to the ingress.
const DEFAULT_DECISION_LISTEN: &str = "127.0.0.1:9191";

pub(super) fn decision(
    c: &mut Check<'_>,
    raw: &RawDecision,
    taken: &[SocketAddr],
    sources: &[TokenSource],
) -> DecisionConfig {
    // The proxy removes a query token before forwarding; an ingress forwards
    // the URL as sent, so the token would reach the app, its logs and
    // Referer headers.
    if let Some(TokenSource::Query(name)) = sources.iter().find(|s| matches!(s, TokenSource::Query(_))) {
        c.problem(
            "auth.sources",
            None,
            format!("a `query: {name}` token source with decision mode: the ingress forwards the query, token and all, to the app; use a header or a cookie"),
        );
    }
    let listen = c.addr("decision.listen", raw.listen.as_ref(), DEFAULT_DECISION_LISTEN);
    if listen.port() != 0 && taken.contains(&listen) {
        c.problem(
            "decision.listen",
            raw.listen.as_ref().and_then(line),
            "must differ from the other listeners (listen, admin.listen, sessions.control.listen)",
        );
    }
    let secret = if raw.secret_file.is_some() || raw.secret_env.is_some() {
        secret(
            c,
            "decision",
            (raw.secret_file.as_ref(), raw.secret_env.as_ref()),
            None,
            "give exactly one of secret_file or secret_env",
        )
    } else {
        None
    };
    if secret.as_ref().is_some_and(|s| s.len() < 16) {
        c.problem("decision", None, "the shared secret must be at least 16 bytes");
    }
    let tls = raw.tls.as_ref().and_then(|t| {
        let mut tls = server_tls(c, "decision.tls", &t.cert_file, &t.key_file)?;
        if let Some(file) = &t.client_ca_file {
            let pem = c.read("decision.tls.client_ca_file", file)?;
            tls.client_ca = Some(certificates(c, "decision.tls.client_ca_file", file, &pem)?);
        }
        Some(tls)
    });
    let client_certificates = tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    if !listen.ip().is_loopback() && secret.is_none() && !client_certificates {
        c.problem(
            "decision.listen",
            raw.listen.as_ref().and_then(line),
            "a decision listener bound beyond loopback needs a shared secret (secret_file or secret_env) or client certificates (tls.client_ca_file): whoever reaches it names the request to judge",
        );
    }
    DecisionConfig {
        listen,
        secret,
        tls,
        cache_max_age: c.duration("decision.cache_max_age", raw.cache_max_age.as_ref(), Duration::ZERO),
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{BASE, check};

    #[test]
    fn table() {
        let open = format!("{BASE}decision:\n  listen: \"0.0.0.0:9191\"\n");
        let clash = format!("{BASE}decision:\n  listen: \"0.0.0.0:9090\"\n  secret_env: A\n  secret_file: b\n");
        let good = format!("{BASE}decision: {{ cache_max_age: 5s }}\n");
        let query = BASE.replace("auth:\n", "auth:\n  sources: [{ query: access_token }]\n") + "decision: {}\n";
        let bad_age = format!("{BASE}decision: {{ cache_max_age: soon }}\n");
        check(&[
            (
                &open,
                &[
                    "decision.listen: a decision listener bound beyond loopback needs a shared secret (secret_file or secret_env) or client certificates (tls.client_ca_file): whoever reaches it names the request to judge",
                ],
            ),
            (
                &clash,
                &[
                    "decision.listen: must differ from the other listeners (listen, admin.listen, sessions.control.listen)",
                    "decision: give exactly one of secret_file or secret_env",
                    "decision.listen: a decision listener bound beyond loopback needs a shared secret (secret_file or secret_env) or client certificates (tls.client_ca_file): whoever reaches it names the request to judge",
                ],
            ),
            (&good, &[]),
            (
                &query,
                &[
                    "auth.sources: a `query: access_token` token source with decision mode: the ingress forwards the query, token and all, to the app; use a header or a cookie",
                ],
            ),
            (
                &bad_age,
                &["decision.cache_max_age: `soon` is not a duration; write it like 500ms, 30s, 5m, 1h or 7d"],
            ),
        ]);
    }
}
