//! Raw YAML values -> typed [`Config`], collecting every problem.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use http::HeaderName;
use http::uri::{Authority, Uri};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};

use crate::keys::{Alg, Family};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::raw::*;
use super::*;

mod backchannel;
mod browser;
mod decision;
mod introspection;
mod issuers;
mod listeners;
mod requests;
mod revocations;
mod routes;
mod secrets;
mod signing;
mod sources;

use self::backchannel::*;
use self::decision::*;
use self::introspection::*;
use self::issuers::*;
use self::listeners::*;
use self::revocations::*;
use self::routes::*;
use self::secrets::*;
use self::signing::*;
use self::sources::*;

const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:9090";
/// The session control API: loopback, since the app shares the pod's network.
const DEFAULT_CONTROL_LISTEN: &str = "127.0.0.1:9091";
/// hyper refuses an HTTP/1 read buffer below 8 KiB.
const MIN_HEADER_BYTES: u64 = 8 * 1024;

/// Headers that must never be identity headers: the proxy strips identity
/// headers from every inbound request, so naming one of these would break
/// requests or let claims overwrite framing and forwarding information.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

struct Check<'a> {
    problems: Vec<Problem>,
    env: Env,
    /// Variables that were unset under `Env::MayBeUnset`.
    unset_env: Vec<String>,
    /// See [`Config::notes`].
    notes: Vec<String>,
    files: FileBase<'a>,
    /// Files read so far, for the reload watcher.
    read: Vec<std::path::PathBuf>,
}

fn line<T>(s: &S<T>) -> Option<u64> {
    let l = s.referenced.line();
    (l > 0).then_some(l)
}

impl Check<'_> {
    fn problem(&mut self, path: impl Into<String>, line: Option<u64>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            line,
            message: message.into(),
        });
    }

    fn duration(&mut self, path: &str, value: Option<&S<String>>, default: Duration) -> Duration {
        let Some(v) = value else { return default };
        match parse_duration(&v.value) {
            Ok(d) => d,
            Err(message) => {
                self.problem(path, line(v), message);
                default
            }
        }
    }

    fn positive_duration(&mut self, path: &str, value: Option<&S<String>>, default: Duration) -> Duration {
        let d = self.duration(path, value, default);
        if d.is_zero() {
            self.problem(path, value.and_then(line), "must be greater than zero");
            return default;
        }
        d
    }

    fn addr(&mut self, path: &str, value: Option<&S<String>>, default: &str) -> SocketAddr {
        let fallback = || SocketAddr::from(([127, 0, 0, 1], 0));
        let Some(v) = value else {
            return default.parse().unwrap_or_else(|_| fallback());
        };
        match v.value.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                self.problem(
                    path,
                    line(v),
                    format!(
                        "`{}` is not an IP:port address (e.g. 0.0.0.0:8080 or [::]:8080)",
                        v.value
                    ),
                );
                fallback()
            }
        }
    }

    fn count(&mut self, path: &str, value: Option<&S<u64>>, default: u64, min: u64, max: u64) -> u64 {
        let Some(v) = value else { return default };
        if v.value < min || v.value > max {
            self.problem(path, line(v), format!("{} is outside {min}..={max}", v.value));
            return default;
        }
        v.value
    }

    /// The value of the environment variable `value` names. Unset or empty
    /// is a problem when running; when checking, the name is noted and a
    /// placeholder (long enough for any HMAC key) stands in.
    fn env(&mut self, path: &str, value: &S<String>) -> Option<Vec<u8>> {
        match std::env::var(&value.value) {
            Ok(v) if !v.is_empty() => Some(v.into_bytes()),
            _ if self.env == Env::MayBeUnset => {
                self.unset_env.push(value.value.clone());
                Some(vec![b'0'; 64])
            }
            _ => {
                self.problem(
                    path,
                    line(value),
                    format!("environment variable `{}` is not set or empty", value.value),
                );
                None
            }
        }
    }

    /// The value `v` spells among `choices`, or a problem that lists them.
    fn choice<T: Copy>(&mut self, path: &str, v: &S<String>, choices: &[(&str, T)]) -> Option<T> {
        let found = choices.iter().find(|(name, _)| *name == v.value).map(|(_, t)| *t);
        if found.is_none() {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            self.problem(
                path,
                line(v),
                format!("`{}` is not one of: {}", v.value, names.join(", ")),
            );
        }
        found
    }

    fn read(&mut self, path: &str, value: &S<String>) -> Option<Vec<u8>> {
        self.read.extend(self.files.resolve(&value.value));
        match self.files.read(&value.value) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                let at = match self.files.resolve(&value.value) {
                    Some(p) if p.as_os_str() != value.value.as_str() => format!(" (looked for {})", p.display()),
                    _ => String::new(),
                };
                self.problem(path, line(value), format!("cannot read `{}`{at}: {e}", value.value));
                None
            }
        }
    }
}

pub(super) fn validate(raw: RawConfig, files: FileBase<'_>, env: Env) -> Result<Config, Vec<Problem>> {
    let mut c = Check {
        problems: Vec::new(),
        env,
        unset_env: Vec::new(),
        notes: Vec::new(),
        files,
        read: Vec::new(),
    };
    let listen = c.addr("listen", raw.listen.as_ref(), DEFAULT_LISTEN);
    let upstream = upstream(&mut c, &raw.upstream);
    let tls = raw.tls.as_ref().and_then(|t| tls(&mut c, t));
    let admin_listen = raw.admin.as_ref().and_then(|a| a.listen.as_ref());
    let admin = AdminConfig {
        listen: c.addr("admin.listen", admin_listen, DEFAULT_ADMIN_LISTEN),
    };
    if admin.listen == listen && listen.port() != 0 {
        c.problem(
            "admin.listen",
            admin_listen.and_then(line),
            "must differ from `listen`: metrics and health stay off the proxy port",
        );
    }
    let limits = limits(&mut c, raw.limits.as_ref());
    let http = requests::http_rules(&mut c, raw.http.as_ref());
    let shutdown = ShutdownConfig {
        delay: c.duration(
            "shutdown.delay",
            raw.shutdown.as_ref().and_then(|s| s.delay.as_ref()),
            Duration::ZERO,
        ),
        drain_timeout: c.positive_duration(
            "shutdown.drain_timeout",
            raw.shutdown.as_ref().and_then(|s| s.drain_timeout.as_ref()),
            Duration::from_secs(25),
        ),
    };
    let mut auth = auth(&mut c, &raw.auth, raw.sessions.is_some());
    let routes = raw
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| route(&mut c, &format!("routes[{i}]"), r))
        .collect();
    let revocation = revocation(&mut c, raw.revocation.as_ref());
    let mut sessions = raw
        .sessions
        .as_ref()
        .and_then(|s| sessions(&mut c, s, &[listen, admin.listen], &revocation));
    if let (Some(s), Some(raw_sessions)) = (&mut sessions, raw.sessions.as_ref())
        && let Some(b) = &raw_sessions.browser
    {
        s.browser = browser::browser(&mut c, b, &auth.issuers, s, raw_sessions.reuse_grace.is_some());
    }
    if let Some(s) = &sessions {
        // The proxy accepts its own tokens without further configuration.
        if auth.issuers.iter().any(|i| i.issuer == s.issuer) {
            c.problem(
                "sessions.issuer",
                raw.sessions.as_ref().and_then(|r| r.issuer.as_ref()).and_then(line),
                format!(
                    "`{}` is also listed under auth.issuers; the session issuer is added there by itself",
                    s.issuer
                ),
            );
        }
        // Every algorithm the session issuer signs with has a name of ours;
        // were one missing, its tokens would fail closed (401).
        if let Some(algorithm) = Alg::of(s.signing.algorithm) {
            auth.issuers.push(Issuer {
                issuer: s.issuer.clone(),
                audiences: vec![s.audience.clone()],
                keys: vec![Key {
                    kid: Some(s.signing.kid.clone()),
                    algorithm,
                    verify: s.signing.verify.clone(),
                    sign: Some(s.signing.key.clone()),
                }],
                jwks_file_keys: None,
                remote: None,
                // RFC 9068 access tokens: an ID token of the same key never passes.
                token_type: Some("at+jwt".to_owned()),
                backchannel_logout: None,
                introspection: None,
            });
        }
    }
    let mut taken = vec![listen, admin.listen];
    taken.extend(sessions.as_ref().map(|s| s.control.listen));
    let decision = raw
        .decision
        .as_ref()
        .map(|d| decision(&mut c, d, &taken, &auth.sources));
    let backchannel_logout = backchannel(&mut c, raw.backchannel_logout.as_ref(), &auth.issuers);
    one_introspecting_issuer(&mut c, &auth.issuers);
    let reload = ReloadConfig {
        watch: raw
            .reload
            .as_ref()
            .and_then(|r| r.watch.as_ref())
            .is_none_or(|w| w.value),
        watch_interval: c.positive_duration(
            "reload.watch_interval",
            raw.reload.as_ref().and_then(|r| r.watch_interval.as_ref()),
            Duration::from_secs(2),
        ),
    };

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    Ok(Config {
        listen,
        upstream,
        tls,
        admin,
        limits,
        access_log: raw.access_log.as_ref().is_some_and(|v| v.value),
        http,
        shutdown,
        auth,
        routes,
        revocation,
        sessions,
        decision,
        backchannel_logout,
        reload,
        origin: String::new(),
        files: c.read,
        path: None,
        unset_env: c.unset_env,
        notes: c.notes,
    })
}

/// Table-test support for the section modules: the exact problems of a
/// config made of a minimal valid base plus `yaml`.
#[cfg(test)]
pub(super) mod table {
    use crate::config::{Config, ConfigError, FileBase};

    /// A valid config with one HS256 issuer (the embedded dev secret).
    pub(crate) const BASE: &str = "upstream: { url: \"http://127.0.0.1:3000\" }
auth:
  issuers:
    - issuer: t
      keys: [{ algorithm: HS256, secret_file: dev-hs256-secret.DEVELOPMENT-ONLY.txt }]
";

    /// `path: message` for every problem of `yaml` (a whole config).
    pub(crate) fn problems_of(yaml: &str) -> Vec<String> {
        match Config::from_yaml_str(yaml, FileBase::Embedded, "t") {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect()
            }
            Err(e) => vec![e.to_string()],
        }
    }

    /// Asserts each `(yaml, problems)` pair, where `yaml` is whole.
    pub(crate) fn check(cases: &[(&str, &[&str])]) {
        for (yaml, want) in cases {
            assert_eq!(problems_of(yaml), *want, "{yaml}");
        }
    }
}
