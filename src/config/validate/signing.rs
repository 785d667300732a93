//! The `sessions` section and its signing key.

use super::*;

pub(super) fn sessions(
    c: &mut Check<'_>,
    raw: &RawSessions,
    taken: &[SocketAddr],
    revocation: &RevocationConfig,
) -> Option<SessionsConfig> {
    let text = |v: Option<&S<String>>, default: &str| v.map_or_else(|| default.to_owned(), |v| v.value.clone());
    let issuer = text(raw.issuer.as_ref(), "tokengate");
    let audience = text(raw.audience.as_ref(), "tokengate");
    for (field, value, v) in [("issuer", &issuer, &raw.issuer), ("audience", &audience, &raw.audience)] {
        if value.is_empty() || value.chars().any(char::is_control) {
            c.problem(
                format!("sessions.{field}"),
                v.as_ref().and_then(line),
                "must be non-empty text without control characters",
            );
        }
    }
    let access_token_ttl = c.positive_duration(
        "sessions.access_token_ttl",
        raw.access_token_ttl.as_ref(),
        Duration::from_secs(300),
    );
    let refresh_token_ttl = c.positive_duration(
        "sessions.refresh_token_ttl",
        raw.refresh_token_ttl.as_ref(),
        Duration::from_secs(14 * 24 * 3600),
    );
    if access_token_ttl > refresh_token_ttl {
        c.problem(
            "sessions.access_token_ttl",
            raw.access_token_ttl.as_ref().and_then(line),
            "must not exceed refresh_token_ttl",
        );
    }
    if access_token_ttl > revocation.max_token_lifetime {
        c.problem(
            "sessions.access_token_ttl",
            raw.access_token_ttl.as_ref().and_then(line),
            "exceeds revocation.max_token_lifetime: logout-all cut-offs would be pruned while these tokens live",
        );
    }
    let reuse_grace = c.duration("sessions.reuse_grace", raw.reuse_grace.as_ref(), Duration::ZERO);
    if reuse_grace > Duration::from_secs(60) {
        c.problem(
            "sessions.reuse_grace",
            raw.reuse_grace.as_ref().and_then(line),
            "more than 60s would hide a stolen refresh token's replay for too long",
        );
    }
    let max_sessions_per_subject = raw.max_sessions_per_subject.as_ref().map(|v| {
        let n = c.count("sessions.max_sessions_per_subject", Some(v), 1, 1, 10_000);
        u32::try_from(n).unwrap_or(10_000)
    });
    let path_prefix = text(raw.path_prefix.as_ref(), "/.tokengate");
    let segments_ok = path_prefix.strip_prefix('/').is_some_and(|rest| {
        rest.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        })
    });
    if !segments_ok {
        c.problem(
            "sessions.path_prefix",
            raw.path_prefix.as_ref().and_then(line),
            format!(
                "`{path_prefix}` must be an absolute path of plain segments without a trailing slash, e.g. /.tokengate"
            ),
        );
    }
    let control = raw.control.as_ref();
    let listen_value = control.and_then(|r| r.listen.as_ref());
    let listen = c.addr("sessions.control.listen", listen_value, DEFAULT_CONTROL_LISTEN);
    if listen.port() != 0 && taken.contains(&listen) {
        c.problem(
            "sessions.control.listen",
            listen_value.and_then(line),
            "must differ from `listen` and `admin.listen`",
        );
    }
    let secret = match control {
        Some(r) if r.secret_file.is_some() || r.secret_env.is_some() => secret(
            c,
            "sessions.control",
            (r.secret_file.as_ref(), r.secret_env.as_ref()),
            None,
            "give exactly one of secret_file or secret_env",
        ),
        _ => None,
    };
    if secret.as_ref().is_some_and(|s| s.len() < 16) {
        c.problem("sessions.control", None, "the shared secret must be at least 16 bytes");
    }
    if !listen.ip().is_loopback() && secret.is_none() {
        c.problem(
            "sessions.control.listen",
            listen_value.and_then(line),
            "a control listener bound beyond loopback needs a shared secret (secret_file or secret_env): anyone reaching it could open sessions",
        );
    }
    let signing = signing_key(c, &raw.signing_key)?;
    Some(SessionsConfig {
        issuer,
        audience,
        signing,
        access_token_ttl,
        refresh_token_ttl,
        max_sessions_per_subject,
        reuse_grace,
        path_prefix,
        control: ControlConfig { listen, secret },
        // Judged with the issuers (`browser::browser`).
        browser: None,
    })
}

pub(super) fn signing_key(c: &mut Check<'_>, raw: &RawSigningKey) -> Option<SigningKey> {
    use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse, ThumbprintHash};
    let path = "sessions.signing_key";
    let at = raw.algorithm.as_ref().and_then(line);
    let algorithm = match &raw.algorithm {
        None => Algorithm::ES256,
        Some(a) => match Algorithm::from_str(&a.value) {
            Ok(alg) => alg,
            Err(_) => {
                c.problem(
                    format!("{path}.algorithm"),
                    at,
                    format!(
                        "`{}` is not supported: use ES256 (default), EdDSA, RS256 or HS256",
                        a.value
                    ),
                );
                return None;
            }
        },
    };
    let family = algorithm.family();
    // (signing key, published JWK, verification key when it is not derived from the JWK)
    let (key, public_jwk, secret_verify) = if family == AlgorithmFamily::Hmac {
        if let Some(f) = &raw.private_key_file {
            c.problem(
                format!("{path}.private_key_file"),
                line(f),
                "an HMAC key is a shared secret: use secret_file or secret_env",
            );
        }
        let secret = hmac_secret(
            c,
            path,
            (raw.secret_file.as_ref(), raw.secret_env.as_ref()),
            raw.secret_encoding.as_ref(),
            &format!("{algorithm:?}"),
            at,
        )?;
        (
            EncodingKey::from_secret(&secret),
            None,
            Some(DecodingKey::from_secret(&secret)),
        )
    } else {
        for (field, v) in [("secret_file", &raw.secret_file), ("secret_env", &raw.secret_env)] {
            if let Some(v) = v {
                c.problem(
                    format!("{path}.{field}"),
                    line(v),
                    format!("a {algorithm:?} key is a private key (private_key_file), not a secret"),
                );
            }
        }
        let Some(file) = &raw.private_key_file else {
            c.problem(path, at, format!("a {algorithm:?} signing key needs private_key_file"));
            return None;
        };
        let pem = c.read(&format!("{path}.private_key_file"), file)?;
        let key = match family {
            AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&pem),
            AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        };
        // Deriving the public half uses jsonwebtoken's crypto provider: the
        // one its single enabled backend names, or the one the binary
        // installs at start (`cli::main`); validation installs nothing.
        let jwk = key.and_then(|k| Jwk::from_encoding_key(&k, algorithm).map(|jwk| (k, jwk)));
        let (key, jwk) = match jwk {
            Ok(pair) => pair,
            Err(e) => {
                c.problem(
                    format!("{path}.private_key_file"),
                    line(file),
                    format!("not a {algorithm:?} private key in PKCS#8 PEM form ({e})"),
                );
                return None;
            }
        };
        if let AlgorithmParameters::RSA(rsa) = &jwk.algorithm
            && base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &rsa.n)
                .map_or(0, |n| n.len() * 8)
                < 2048
        {
            c.problem(
                format!("{path}.private_key_file"),
                line(file),
                "RSA keys must have at least 2048 bits",
            );
            return None;
        }
        (key, Some(jwk), None)
    };
    let kid = match (&raw.kid, &public_jwk) {
        (Some(k), _) if k.value.is_empty() || k.value.chars().any(char::is_control) => {
            c.problem(format!("{path}.kid"), line(k), "must be non-empty text");
            return None;
        }
        (Some(k), _) => k.value.clone(),
        (None, Some(jwk)) => jwk.thumbprint(ThumbprintHash::SHA256).ok()?,
        (None, None) => "tokengate-hmac".to_owned(),
    };
    let public_jwk = public_jwk.map(|mut jwk| {
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk
    });
    let verify = match &public_jwk {
        Some(jwk) => DecodingKey::from_jwk(jwk).ok(),
        None => secret_verify,
    };
    let Some(verify) = verify.filter(|v| pair_matches(&key, v, algorithm)) else {
        c.problem(
            path,
            at,
            format!("the key cannot sign {algorithm:?} tokens that verify (wrong curve for the algorithm?)"),
        );
        return None;
    };
    Some(SigningKey {
        kid,
        algorithm,
        key,
        public_jwk,
        verify,
    })
}

/// Signs and verifies a probe message, so a mismatched key pair fails at load.
pub(super) fn pair_matches(sign: &EncodingKey, verify: &DecodingKey, algorithm: Algorithm) -> bool {
    let probe = b"tokengate key pair check";
    jsonwebtoken::crypto::sign(probe, sign, algorithm)
        .and_then(|sig| jsonwebtoken::crypto::verify(&sig, probe, verify, algorithm))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::super::table::{BASE, check};

    #[test]
    fn table() {
        let yaml = format!(
            "{BASE}sessions:\n  signing_key: {{ algorithm: ES256 }}\n  access_token_ttl: 2d\n  reuse_grace: 2m\n  control: {{ listen: \"0.0.0.0:9091\" }}\n"
        );
        check(&[(
            &yaml,
            &[
                "sessions.access_token_ttl: exceeds revocation.max_token_lifetime: logout-all cut-offs would be pruned while these tokens live",
                "sessions.reuse_grace: more than 60s would hide a stolen refresh token's replay for too long",
                "sessions.control.listen: a control listener bound beyond loopback needs a shared secret (secret_file or secret_env): anyone reaching it could open sessions",
                "sessions.signing_key: a ES256 signing key needs private_key_file",
            ],
        )]);
    }
}
