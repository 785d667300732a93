//! Verification keys: HMAC secrets (file or environment) and public keys (PEM).

use super::*;

pub(super) fn key(c: &mut Check<'_>, path: &str, raw: &RawKey) -> Option<Key> {
    let algorithm = match Alg::from_str(&raw.algorithm.value) {
        Ok(a) => a,
        Err(_) => {
            let hint = if raw.algorithm.value.eq_ignore_ascii_case("none") {
                "`none` is never accepted: every token must be signed".to_owned()
            } else {
                format!("use one of {}", Alg::names(&Alg::ALL))
            };
            c.problem(
                format!("{path}.algorithm"),
                line(&raw.algorithm),
                format!("`{}` is not supported: {hint}", raw.algorithm.value),
            );
            return None;
        }
    };
    if algorithm.family() == Family::Hmac {
        hmac_key(c, path, raw, algorithm)
    } else {
        public_key(c, path, raw, algorithm)
    }
}

pub(super) fn hmac_key(c: &mut Check<'_>, path: &str, raw: &RawKey, algorithm: Alg) -> Option<Key> {
    for (field, v) in [
        ("public_key_file", &raw.public_key_file),
        ("private_key_file", &raw.private_key_file),
    ] {
        if let Some(v) = v {
            c.problem(
                format!("{path}.{field}"),
                line(v),
                "an HMAC key is a shared secret: use secret_file or secret_env (public keys belong to RS/PS/ES/EdDSA keys)",
            );
        }
    }
    let secret = hmac_secret(
        c,
        path,
        (raw.secret_file.as_ref(), raw.secret_env.as_ref()),
        raw.secret_encoding.as_ref(),
        algorithm.name(),
        line(&raw.algorithm),
    )?;
    let secret = secret.as_slice();
    Some(Key {
        kid: raw.kid.as_ref().map(|k| k.value.clone()),
        algorithm,
        verify: DecodingKey::from_secret(secret),
        sign: Some(EncodingKey::from_secret(secret)),
    })
}

/// Reads a secret from exactly one of a file or an environment variable.
/// One trailing newline (`echo > file`) is not part of it; every other byte
/// is, so a random binary secret that ends in a tab or a space survives.
pub(super) fn secret(
    c: &mut Check<'_>,
    path: &str,
    (file, env): (Option<&S<String>>, Option<&S<String>>),
    missing_line: Option<u64>,
    missing: &str,
) -> Option<Vec<u8>> {
    let mut secret = match (file, env) {
        (Some(f), None) => c.read(&format!("{path}.secret_file"), f),
        (None, Some(e)) => c.env(&format!("{path}.secret_env"), e),
        _ => {
            c.problem(path, missing_line, missing);
            None
        }
    }?;
    let end = without_final_newline(&secret).len();
    secret.truncate(end);
    Some(secret)
}

/// `bytes` without one final `\n` or `\r\n`.
fn without_final_newline(bytes: &[u8]) -> &[u8] {
    match bytes.strip_suffix(b"\n") {
        Some(rest) => rest.strip_suffix(b"\r").unwrap_or(rest),
        None => bytes,
    }
}

/// Decodes a secret as `secret_encoding` says: `raw` (the default: the
/// bytes as they are), `base64` (standard or URL-safe, padding optional) or
/// `hex`.
fn decode_secret(c: &mut Check<'_>, path: &str, encoding: Option<&S<String>>, secret: Vec<u8>) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let Some(encoding) = encoding else {
        return Some(secret);
    };
    let text = String::from_utf8_lossy(&secret);
    let text = text.trim();
    let decoded = match encoding.value.as_str() {
        "raw" => return Some(secret),
        "base64" => {
            let padded = text.trim_end_matches('=');
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(padded)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(padded))
                .ok()
        }
        "hex" => text
            .len()
            .is_multiple_of(2)
            .then(|| {
                (0..text.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()
            })
            .flatten(),
        other => {
            c.problem(
                format!("{path}.secret_encoding"),
                line(encoding),
                format!("`{other}`: use raw, base64 or hex"),
            );
            return None;
        }
    };
    if decoded.is_none() {
        c.problem(
            format!("{path}.secret_encoding"),
            line(encoding),
            format!("the secret is not valid {}", encoding.value),
        );
    }
    decoded
}

/// An HMAC secret of at least the length RFC 7518 §3.2 asks for `algorithm`.
pub(super) fn hmac_secret(
    c: &mut Check<'_>,
    path: &str,
    sources: (Option<&S<String>>, Option<&S<String>>),
    encoding: Option<&S<String>>,
    algorithm: &str,
    at: Option<u64>,
) -> Option<Vec<u8>> {
    let secret = secret(
        c,
        path,
        sources,
        at,
        "an HMAC key needs exactly one of secret_file or secret_env",
    )?;
    let secret = decode_secret(c, path, encoding, secret)?;
    let min = match algorithm {
        "HS384" => 48,
        "HS512" => 64,
        _ => 32,
    };
    if secret.len() < min {
        c.problem(
            path,
            at,
            format!(
                "the {algorithm} secret is {} bytes; at least {min} are required (RFC 7518 §3.2)",
                secret.len()
            ),
        );
        return None;
    }
    Some(secret)
}

pub(super) fn public_key(c: &mut Check<'_>, path: &str, raw: &RawKey, algorithm: Alg) -> Option<Key> {
    for (field, v) in [("secret_file", &raw.secret_file), ("secret_env", &raw.secret_env)] {
        if let Some(v) = v {
            c.problem(
                format!("{path}.{field}"),
                line(v),
                format!("a {algorithm} key is verified with a public key (public_key_file), never a secret"),
            );
        }
    }
    let Some(pub_file) = &raw.public_key_file else {
        c.problem(
            path,
            line(&raw.algorithm),
            format!("a {algorithm} key needs public_key_file"),
        );
        return None;
    };
    let pem = c.read(&format!("{path}.public_key_file"), pub_file)?;
    let family = algorithm.family();
    let verify = match family {
        Family::Rsa => DecodingKey::from_rsa_pem(&pem),
        Family::Ec => DecodingKey::from_ec_pem(&pem),
        _ => DecodingKey::from_ed_pem(&pem),
    };
    let verify = match verify {
        Ok(k) => k,
        Err(e) => {
            c.problem(
                format!("{path}.public_key_file"),
                line(pub_file),
                format!("not a {family:?} public key in PEM form ({e})"),
            );
            return None;
        }
    };
    // The EC point length tells the curve: a P-256 key must not be pinned to ES384.
    if let DecodingKeyKind::SecretOrDer(point) = verify.kind() {
        let expected = match algorithm {
            Alg::ES256 => Some(65),
            Alg::ES384 => Some(97),
            Alg::ES512 => Some(133),
            _ => None,
        };
        if expected.is_some_and(|n| n != point.len()) {
            c.problem(
                format!("{path}.public_key_file"),
                line(pub_file),
                format!("the key's curve does not match {algorithm} (ES256 needs P-256, ES384 P-384, ES512 P-521)"),
            );
            return None;
        }
    }
    let sign = match &raw.private_key_file {
        None => None,
        Some(f) => {
            let Some(signing) = algorithm.signable() else {
                c.problem(
                    format!("{path}.private_key_file"),
                    line(f),
                    format!("tokengate verifies {algorithm} but cannot sign with it (token mint, demo): leave private_key_file out"),
                );
                return None;
            };
            let pem = c.read(&format!("{path}.private_key_file"), f)?;
            let key = match family {
                Family::Rsa => EncodingKey::from_rsa_pem(&pem),
                Family::Ec => EncodingKey::from_ec_pem(&pem),
                _ => EncodingKey::from_ed_pem(&pem),
            };
            match key {
                Ok(k) if pair_matches(&k, &verify, signing) => Some(k),
                Ok(_) => {
                    c.problem(
                        format!("{path}.private_key_file"),
                        line(f),
                        "does not belong to public_key_file (a test signature did not verify)",
                    );
                    return None;
                }
                Err(e) => {
                    c.problem(
                        format!("{path}.private_key_file"),
                        line(f),
                        format!("not a {family:?} private key in PKCS#8 PEM form ({e})"),
                    );
                    return None;
                }
            }
        }
    };
    Some(Key {
        kid: raw.kid.as_ref().map(|k| k.value.clone()),
        algorithm,
        verify,
        sign,
    })
}

#[cfg(test)]
mod tests {
    use super::super::table::check;
    use super::without_final_newline;
    use crate::config::{Config, ConfigError, FileBase};

    #[test]
    fn only_one_final_newline_is_not_part_of_a_secret() {
        assert_eq!(without_final_newline(b"abc\n"), b"abc");
        assert_eq!(without_final_newline(b"abc\r\n"), b"abc");
        assert_eq!(without_final_newline(b"abc\n\n"), b"abc\n");
        assert_eq!(without_final_newline(b"abc\t"), b"abc\t");
        assert_eq!(without_final_newline(b"abc \n"), b"abc ");
        assert_eq!(without_final_newline(b"abc\r"), b"abc\r");
    }

    /// The problems of an HS256 key read from `file` holding `bytes`.
    fn problems(bytes: &[u8], encoding: &str) -> Vec<String> {
        let dir = std::env::temp_dir().join(format!("tokengate-secret-{}-{encoding}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s"), bytes).unwrap();
        let yaml = format!(
            "upstream: {{ url: \"http://127.0.0.1:3000\" }}\nauth:\n  issuers:\n    - issuer: t\n      keys: [{{ algorithm: HS256, secret_file: s{encoding} }}]\n"
        );
        match Config::from_yaml_str(&yaml, FileBase::Dir(&dir), "t") {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid { problems, .. }) => problems.iter().map(|p| p.message.clone()).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn binary_and_encoded_secrets() {
        // 32 random-looking bytes ending in a tab: the tab is key material
        // (it used to be stripped, leaving 31 bytes).
        let mut binary: Vec<u8> = (1..=31u8).map(|b| b.wrapping_mul(37)).collect();
        binary.push(b'\t');
        assert_eq!(problems(&binary, ""), Vec::<String>::new());
        let hex: String = binary.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            problems(format!("{hex}\n").as_bytes(), ", secret_encoding: hex"),
            Vec::<String>::new()
        );
        assert_eq!(
            problems(b"zz", ", secret_encoding: hex"),
            ["the secret is not valid hex"]
        );
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&binary);
        assert_eq!(
            problems(b64.as_bytes(), ", secret_encoding: base64"),
            Vec::<String>::new()
        );
        // Decoded, a short secret is still refused by length.
        assert_eq!(
            problems(b"00ff", ", secret_encoding: hex"),
            ["the HS256 secret is 2 bytes; at least 32 are required (RFC 7518 \u{a7}3.2)"]
        );
        assert_eq!(
            problems(b"x", ", secret_encoding: rot13"),
            ["`rot13`: use raw, base64 or hex"]
        );
    }

    #[test]
    fn table() {
        let yaml = "upstream: { url: \"http://127.0.0.1:3000\" }
auth:
  issuers:
    - issuer: t
      keys:
        - { kid: a, algorithm: HS512, secret_file: dev-hs256-secret.DEVELOPMENT-ONLY.txt }
        - { kid: b, algorithm: none, secret_file: x }
        - { kid: c, algorithm: RS256, secret_file: x }
        - { kid: d, algorithm: HS256, secret_env: TOKENGATE_TEST_NEVER_SET }
        - { kid: e, algorithm: HS256 }
";
        check(&[(
            yaml,
            &[
                "auth.issuers[0].keys[0]: the HS512 secret is 63 bytes; at least 64 are required (RFC 7518 \u{a7}3.2)",
                "auth.issuers[0].keys[1].algorithm: `none` is not supported: `none` is never accepted: every token must be signed",
                "auth.issuers[0].keys[2].secret_file: a RS256 key is verified with a public key (public_key_file), never a secret",
                "auth.issuers[0].keys[2]: a RS256 key needs public_key_file",
                "auth.issuers[0].keys[3].secret_env: environment variable `TOKENGATE_TEST_NEVER_SET` is not set or empty",
                "auth.issuers[0].keys[4]: an HMAC key needs exactly one of secret_file or secret_env",
            ],
        )]);
    }
}
