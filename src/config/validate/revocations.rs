//! The `revocation` section and its Redis connection.

use super::*;
use crate::redis_client::Endpoint;

pub(super) fn revocation(c: &mut Check<'_>, raw: Option<&RawRevocation>) -> RevocationConfig {
    let backend_name = raw.and_then(|r| r.backend.as_ref());
    let redis_section = raw.and_then(|r| r.redis.as_ref());
    let backend = match backend_name.map(|b| b.value.as_str()) {
        None | Some("memory") => {
            if let Some(r) = redis_section {
                c.problem(
                    "revocation.redis",
                    line(&r.url),
                    "is set but backend is memory; add `backend: redis` or remove it",
                );
            }
            RevocationBackend::Memory
        }
        Some("redis") => match redis_section {
            Some(r) => redis(c, r).map_or(RevocationBackend::Memory, |r| RevocationBackend::Redis(Box::new(r))),
            None => {
                c.problem(
                    "revocation.redis",
                    backend_name.and_then(line),
                    "backend redis needs a `redis:` section with `url`",
                );
                RevocationBackend::Memory
            }
        },
        Some(other) => {
            c.problem(
                "revocation.backend",
                backend_name.and_then(line),
                format!("`{other}` is not a backend; use memory or redis"),
            );
            RevocationBackend::Memory
        }
    };
    let on_stale = match raw.and_then(|r| r.on_stale.as_ref()) {
        None => OnStale::FailOpen,
        Some(v) if v.value == "fail_open" => OnStale::FailOpen,
        Some(v) if v.value == "fail_closed" => OnStale::FailClosed,
        Some(v) => {
            c.problem(
                "revocation.on_stale",
                line(v),
                format!("`{}`: use fail_open or fail_closed", v.value),
            );
            OnStale::FailOpen
        }
    };
    RevocationConfig {
        backend,
        max_staleness: c.positive_duration(
            "revocation.max_staleness",
            raw.and_then(|r| r.max_staleness.as_ref()),
            Duration::from_secs(30),
        ),
        on_stale,
        max_token_lifetime: c.positive_duration(
            "revocation.max_token_lifetime",
            raw.and_then(|r| r.max_token_lifetime.as_ref()),
            Duration::from_secs(24 * 3600),
        ),
    }
}

pub(super) fn redis(c: &mut Check<'_>, raw: &RawRedis) -> Option<RedisConfig> {
    let endpoint = Endpoint::parse(&raw.url.value)
        .map_err(|e| c.problem("revocation.redis.url", line(&raw.url), e.to_string()))
        .ok();
    let password = match (&raw.password_file, &raw.password_env) {
        (None, None) => None,
        (Some(f), None) => c
            .read("revocation.redis.password_file", f)
            .map(|b| String::from_utf8_lossy(b.trim_ascii_end()).into_owned()),
        (None, Some(e)) => c
            .env("revocation.redis.password_env", e)
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        (Some(f), Some(_)) => {
            c.problem(
                "revocation.redis.password_file",
                line(f),
                "give password_file or password_env, not both",
            );
            None
        }
    };
    let prefix = raw.prefix.as_ref().map_or("tokengate".to_owned(), |p| p.value.clone());
    if prefix.is_empty() || prefix.contains(['{', '}', ' ']) {
        c.problem(
            "revocation.redis.prefix",
            raw.prefix.as_ref().and_then(line),
            "must be non-empty, without braces or spaces (it becomes the {hash tag})",
        );
    }
    let connect_timeout = c.positive_duration(
        "revocation.redis.connect_timeout",
        raw.connect_timeout.as_ref(),
        Duration::from_secs(2),
    );
    let command_timeout = c.positive_duration(
        "revocation.redis.command_timeout",
        raw.command_timeout.as_ref(),
        Duration::from_secs(1),
    );
    let check_interval = c.positive_duration(
        "revocation.redis.check_interval",
        raw.check_interval.as_ref(),
        Duration::from_secs(2),
    );
    let page_size = c.count(
        "revocation.redis.page_size",
        raw.page_size.as_ref(),
        10_000,
        10,
        1_000_000,
    );
    let mut endpoint = match password {
        Some(pw) => endpoint?
            .with_password(pw)
            .map_err(|e| c.problem("revocation.redis.password_file", None, e.to_string()))
            .ok()?,
        None => endpoint?,
    };
    endpoint.connect_timeout = connect_timeout;
    endpoint.command_timeout = command_timeout;
    endpoint.wait_replicas = u32::try_from(c.count(
        "revocation.redis.wait_for_replicas",
        raw.wait_for_replicas.as_ref(),
        0,
        0,
        16,
    ))
    .unwrap_or(0);
    Some(RedisConfig {
        endpoint,
        prefix,
        check_interval,
        page_size,
    })
}

#[cfg(test)]
mod tests {
    use super::super::table::{BASE, check};

    #[test]
    fn table() {
        let unknown = format!("{BASE}revocation:\n  backend: cassandra\n");
        let redis = format!(
            "{BASE}revocation:\n  backend: redis\n  redis: {{ url: \"http://x\", password_file: p, password_env: Q, page_size: 1 }}\n  on_stale: maybe\n"
        );
        let missing = format!("{BASE}revocation:\n  backend: redis\n");
        let good = format!(
            "{BASE}revocation:\n  backend: redis\n  redis: {{ url: \"redis://127.0.0.1:6379\", prefix: app }}\n  on_stale: fail_closed\n"
        );
        check(&[
            (&good, &[]),
            (
                &unknown,
                &["revocation.backend: `cassandra` is not a backend; use memory or redis"],
            ),
            (
                &redis,
                &[
                    "revocation.redis.url: must start with redis://, rediss:// (TLS), redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://",
                    "revocation.redis.password_file: give password_file or password_env, not both",
                    "revocation.redis.page_size: 1 is outside 10..=1000000",
                    "revocation.on_stale: `maybe`: use fail_open or fail_closed",
                ],
            ),
            (
                &missing,
                &["revocation.redis: backend redis needs a `redis:` section with `url`"],
            ),
        ]);
    }
}
