//! Raw YAML values -> typed [`Config`], collecting every problem.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use http::HeaderName;
use http::uri::{Authority, Uri};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::raw::*;
use super::*;

mod requests;

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
    let sessions = raw
        .sessions
        .as_ref()
        .and_then(|s| sessions(&mut c, s, &[listen, admin.listen], &revocation));
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
        auth.issuers.push(Issuer {
            issuer: s.issuer.clone(),
            audiences: vec![s.audience.clone()],
            keys: vec![Key {
                kid: Some(s.signing.kid.clone()),
                algorithm: s.signing.algorithm,
                verify: s.signing.verify.clone(),
                sign: Some(s.signing.key.clone()),
            }],
            jwks_file_keys: None,
            remote: None,
        });
    }
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
        reload,
        origin: String::new(),
        files: c.read,
        path: None,
        unset_env: c.unset_env,
    })
}

fn upstream(c: &mut Check<'_>, raw: &RawUpstream) -> UpstreamConfig {
    let fallback = Authority::from_static("127.0.0.1:1");
    let authority = match raw.url.value.parse::<Uri>() {
        Ok(uri) => {
            let mut why = None;
            if uri.scheme_str() != Some("http") {
                why = Some("must be an http:// URL: the app listens beside the proxy, in the same pod or host");
            } else if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
                why = Some("must not have a path or query: requests keep their own path");
            }
            match (why, uri.authority()) {
                (None, Some(a)) if a.port_u16().is_some() || !a.host().is_empty() => a.clone(),
                (Some(why), _) => {
                    c.problem("upstream.url", line(&raw.url), why);
                    fallback
                }
                _ => {
                    c.problem("upstream.url", line(&raw.url), "has no host");
                    fallback
                }
            }
        }
        Err(e) => {
            c.problem(
                "upstream.url",
                line(&raw.url),
                format!("`{}` is not a URL: {e}", raw.url.value),
            );
            fallback
        }
    };
    UpstreamConfig {
        authority,
        connect_timeout: c.positive_duration(
            "upstream.connect_timeout",
            raw.connect_timeout.as_ref(),
            Duration::from_secs(2),
        ),
        request_timeout: c.positive_duration(
            "upstream.request_timeout",
            raw.request_timeout.as_ref(),
            Duration::from_secs(60),
        ),
        pool_idle_timeout: c.positive_duration(
            "upstream.pool_idle_timeout",
            raw.pool_idle_timeout.as_ref(),
            Duration::from_secs(90),
        ),
        pool_max_idle: c.count("upstream.pool_max_idle", raw.pool_max_idle.as_ref(), 256, 0, 65_536) as usize,
        max_connections: c.count(
            "upstream.max_connections",
            raw.max_connections.as_ref(),
            1024,
            1,
            1_000_000,
        ) as usize,
    }
}

fn tls(c: &mut Check<'_>, raw: &RawTls) -> Option<TlsConfig> {
    let cert_pem = c.read("tls.cert_file", &raw.cert_file);
    let key_pem = c.read("tls.key_file", &raw.key_file);
    let certs: Vec<CertificateDer<'static>> = match cert_pem {
        Some(pem) => match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
            Ok(certs) if !certs.is_empty() => certs,
            Ok(_) => {
                c.problem("tls.cert_file", line(&raw.cert_file), "holds no PEM certificate");
                return None;
            }
            Err(e) => {
                c.problem(
                    "tls.cert_file",
                    line(&raw.cert_file),
                    format!("not a PEM certificate chain: {e}"),
                );
                return None;
            }
        },
        None => return None,
    };
    let key = match PrivateKeyDer::from_pem_slice(&key_pem?) {
        Ok(key) => key,
        Err(e) => {
            c.problem(
                "tls.key_file",
                line(&raw.key_file),
                format!("not a PEM private key: {e}"),
            );
            return None;
        }
    };
    Some(TlsConfig { certs, key })
}

fn limits(c: &mut Check<'_>, raw: Option<&RawLimits>) -> Limits {
    let max_header_bytes = c.count(
        "limits.max_header_bytes",
        raw.and_then(|r| r.max_header_bytes.as_ref()),
        32 * 1024,
        MIN_HEADER_BYTES,
        1024 * 1024,
    );
    let max_token_bytes = c.count(
        "limits.max_token_bytes",
        raw.and_then(|r| r.max_token_bytes.as_ref()),
        8 * 1024,
        256,
        max_header_bytes,
    );
    Limits {
        max_header_bytes: max_header_bytes as usize,
        max_token_bytes: max_token_bytes as usize,
        header_read_timeout: c.positive_duration(
            "limits.header_read_timeout",
            raw.and_then(|r| r.header_read_timeout.as_ref()),
            Duration::from_secs(30),
        ),
        idle_timeout: c.positive_duration(
            "limits.idle_timeout",
            raw.and_then(|r| r.idle_timeout.as_ref()),
            Duration::from_secs(120),
        ),
        tunnel_idle_timeout: c.positive_duration(
            "limits.tunnel_idle_timeout",
            raw.and_then(|r| r.tunnel_idle_timeout.as_ref()),
            DEFAULT_TUNNEL_IDLE_TIMEOUT,
        ),
        tls_handshake_timeout: c.positive_duration(
            "limits.tls_handshake_timeout",
            raw.and_then(|r| r.tls_handshake_timeout.as_ref()),
            Duration::from_secs(10),
        ),
        max_connections: c.count(
            "limits.max_connections",
            raw.and_then(|r| r.max_connections.as_ref()),
            10_000,
            1,
            1_000_000,
        ) as usize,
        max_concurrent_streams: c.count(
            "limits.max_concurrent_streams",
            raw.and_then(|r| r.max_concurrent_streams.as_ref()),
            256,
            1,
            10_000,
        ) as u32,
    }
}

fn auth(c: &mut Check<'_>, raw: &RawAuth, has_sessions: bool) -> AuthConfig {
    let leeway = c.duration("auth.leeway", raw.leeway.as_ref(), Duration::from_secs(30));
    if leeway > Duration::from_secs(600) {
        c.problem(
            "auth.leeway",
            raw.leeway.as_ref().and_then(line),
            "more than 10m of clock skew would let expired tokens through for too long",
        );
    }
    let realm = match &raw.realm {
        Some(r)
            if r.value.is_empty()
                || !r
                    .value
                    .chars()
                    .all(|ch| ch.is_ascii_graphic() && ch != '"' && ch != '\\' || ch == ' ') =>
        {
            c.problem(
                "auth.realm",
                line(r),
                "must be non-empty printable ASCII without quotes or backslashes (it is quoted in WWW-Authenticate)",
            );
            "tokengate".to_owned()
        }
        Some(r) => r.value.clone(),
        None => "tokengate".to_owned(),
    };
    let sources = match &raw.sources {
        None => vec![TokenSource::Bearer],
        Some(list) if list.is_empty() => {
            c.problem(
                "auth.sources",
                None,
                "needs at least one source, e.g. `- header: authorization`",
            );
            vec![TokenSource::Bearer]
        }
        Some(list) => {
            let mut out: Vec<TokenSource> = Vec::new();
            for (i, s) in list.iter().enumerate() {
                let path = format!("auth.sources[{i}]");
                if let Some(src) = source(c, &path, s) {
                    if out.contains(&src) {
                        c.problem(path, None, "is listed twice");
                    } else {
                        out.push(src);
                    }
                }
            }
            out
        }
    };
    if raw.issuers.is_empty() && !has_sessions {
        c.problem(
            "auth.issuers",
            None,
            "needs at least one issuer with keys (or a `sessions` section, whose issuer is added)",
        );
    }
    let mut issuers: Vec<Issuer> = Vec::new();
    for (i, ri) in raw.issuers.iter().enumerate() {
        let path = format!("auth.issuers[{i}]");
        if issuers.iter().any(|x| x.issuer == ri.issuer.value) {
            c.problem(format!("{path}.issuer"), line(&ri.issuer), "is listed twice");
        }
        issuers.push(issuer(c, &path, ri));
    }
    let identity = identity_headers(c, raw.identity_headers.as_ref());
    let cache = raw.verify_cache.as_ref();
    let verify_cache = VerifyCacheConfig {
        enabled: cache.and_then(|v| v.enabled.as_ref()).is_none_or(|e| e.value),
        max_entries: c.count(
            "auth.verify_cache.max_entries",
            cache.and_then(|v| v.max_entries.as_ref()),
            10_000,
            1,
            10_000_000,
        ),
    };
    AuthConfig {
        leeway,
        realm,
        sources,
        issuers,
        identity,
        verify_cache,
    }
}

fn source(c: &mut Check<'_>, path: &str, raw: &RawSource) -> Option<TokenSource> {
    match (&raw.header, &raw.cookie, &raw.query) {
        (Some(h), None, None) => {
            let name = h.value.to_ascii_lowercase();
            match HeaderName::from_str(&name) {
                Ok(n) if n == http::header::AUTHORIZATION => Some(TokenSource::Bearer),
                Ok(n) if n == http::header::COOKIE => {
                    c.problem(format!("{path}.header"), line(h), "use `cookie: NAME` for cookies");
                    None
                }
                Ok(n) => Some(TokenSource::Header(n)),
                Err(_) => {
                    c.problem(
                        format!("{path}.header"),
                        line(h),
                        format!("`{}` is not a header name", h.value),
                    );
                    None
                }
            }
        }
        (None, Some(k), None) => {
            if k.value.is_empty() || !k.value.bytes().all(is_token_char) {
                c.problem(
                    format!("{path}.cookie"),
                    line(k),
                    format!("`{}` is not a cookie name", k.value),
                );
                return None;
            }
            Some(TokenSource::Cookie(k.value.clone()))
        }
        (None, None, Some(q)) => {
            if q.value.is_empty()
                || !q
                    .value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
            {
                c.problem(
                    format!("{path}.query"),
                    line(q),
                    format!(
                        "`{}` must be a plain parameter name (letters, digits, - . _ ~)",
                        q.value
                    ),
                );
                return None;
            }
            Some(TokenSource::Query(q.value.clone()))
        }
        _ => {
            c.problem(path, None, "needs exactly one of `header`, `cookie` or `query`");
            None
        }
    }
}

/// RFC 9110 `tchar`, which cookie names must also be.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn issuer(c: &mut Check<'_>, path: &str, raw: &RawIssuer) -> Issuer {
    if raw.issuer.value.is_empty() {
        c.problem(format!("{path}.issuer"), line(&raw.issuer), "must not be empty");
    }
    let mut audiences = Vec::new();
    for (i, a) in raw.audiences.iter().enumerate() {
        if a.value.is_empty() {
            c.problem(format!("{path}.audiences[{i}]"), line(a), "must not be empty");
        }
        audiences.push(a.value.clone());
    }
    if raw.keys.is_empty() && raw.jwks_url.is_none() && raw.jwks_file.is_none() {
        c.problem(
            format!("{path}.keys"),
            line(&raw.issuer),
            "needs at least one key, a jwks_url or a jwks_file",
        );
    }
    let mut keys: Vec<Key> = Vec::new();
    for (i, rk) in raw.keys.iter().enumerate() {
        let kpath = format!("{path}.keys[{i}]");
        if raw.keys.len() > 1 && rk.kid.is_none() {
            c.problem(
                format!("{kpath}.kid"),
                line(&rk.algorithm),
                "is required when an issuer has more than one key",
            );
        }
        if let Some(kid) = &rk.kid {
            if kid.value.is_empty() {
                c.problem(format!("{kpath}.kid"), line(kid), "must not be empty");
            } else if keys.iter().any(|k| k.kid.as_deref() == Some(kid.value.as_str())) {
                c.problem(
                    format!("{kpath}.kid"),
                    line(kid),
                    format!("`{}` is used twice in this issuer", kid.value),
                );
            }
        }
        if let Some(k) = key(c, &kpath, rk) {
            keys.push(k);
        }
    }
    let algorithms = jwks_algorithms(c, path, raw.algorithms.as_deref());
    let jwks_file_keys = raw.jwks_file.as_ref().and_then(|file| {
        let fpath = format!("{path}.jwks_file");
        let doc = c.read(&fpath, file)?;
        match crate::keys::jwks::parse(&doc, &algorithms) {
            Ok(parsed) => {
                for why in parsed.skipped {
                    c.problem(&fpath, line(file), why);
                }
                Some(parsed.set)
            }
            Err(e) => {
                c.problem(&fpath, line(file), e.to_string());
                None
            }
        }
    });
    let remote = match (&raw.jwks_url, &raw.jwks) {
        (Some(url), jwks) => jwks_remote(c, path, url, jwks.as_ref(), algorithms),
        (None, Some(_)) => {
            c.problem(
                format!("{path}.jwks"),
                line(&raw.issuer),
                "tunes a jwks_url, and none is given",
            );
            None
        }
        (None, None) => None,
    };
    Issuer {
        issuer: raw.issuer.value.clone(),
        audiences,
        keys,
        jwks_file_keys,
        remote,
    }
}

fn jwks_algorithms(c: &mut Check<'_>, path: &str, raw: Option<&[S<String>]>) -> Vec<Algorithm> {
    let Some(list) = raw else {
        return crate::keys::jwks::ASYMMETRIC_ALGORITHMS.to_vec();
    };
    if list.is_empty() {
        c.problem(format!("{path}.algorithms"), None, "must name at least one algorithm");
    }
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        match Algorithm::from_str(&a.value) {
            Ok(alg) if crate::keys::jwks::ASYMMETRIC_ALGORITHMS.contains(&alg) => out.push(alg),
            Ok(_) => c.problem(
                format!("{path}.algorithms[{i}]"),
                line(a),
                "HMAC keys are never taken from a JWKS; configure them under keys with secret_file",
            ),
            Err(_) => c.problem(
                format!("{path}.algorithms[{i}]"),
                line(a),
                format!(
                    "`{}` is not one of RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA",
                    a.value
                ),
            ),
        }
    }
    out
}

fn jwks_remote(
    c: &mut Check<'_>,
    path: &str,
    url: &S<String>,
    raw: Option<&RawJwks>,
    algorithms: Vec<Algorithm>,
) -> Option<JwksRemote> {
    let upath = format!("{path}.jwks_url");
    let allow_http = raw.and_then(|j| j.allow_http.as_ref()).is_some_and(|a| a.value);
    let uri = match url.value.parse::<Uri>() {
        Ok(u) if u.host().is_some() && u.authority().is_some_and(|a| !a.as_str().contains('@')) => u,
        _ => {
            c.problem(
                &upath,
                line(url),
                format!("`{}` is not an absolute http(s) URL without credentials", url.value),
            );
            return None;
        }
    };
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if allow_http || is_loopback_host(uri.host().unwrap_or_default()) => {}
        Some("http") => {
            c.problem(
                &upath,
                line(url),
                "plain http lets anyone on the path substitute keys; use https, a loopback address, or set jwks.allow_http: true",
            );
            return None;
        }
        _ => {
            c.problem(&upath, line(url), "must be an http:// or https:// URL");
            return None;
        }
    }
    let ca = raw.and_then(|j| j.ca_file.as_ref()).and_then(|f| {
        let fpath = format!("{path}.jwks.ca_file");
        let pem = c.read(&fpath, f)?;
        match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
            Ok(certs) if !certs.is_empty() => Some(certs),
            _ => {
                c.problem(&fpath, line(f), "holds no PEM certificate");
                None
            }
        }
    });
    let jpath = format!("{path}.jwks");
    let field = |f: fn(&RawJwks) -> Option<&S<String>>| raw.and_then(f);
    let refresh_interval = c.positive_duration(
        &format!("{jpath}.refresh_interval"),
        field(|j| j.refresh_interval.as_ref()),
        Duration::from_secs(300),
    );
    let min_refresh_interval = c.positive_duration(
        &format!("{jpath}.min_refresh_interval"),
        field(|j| j.min_refresh_interval.as_ref()),
        Duration::from_secs(30),
    );
    let max_refresh_interval = c.positive_duration(
        &format!("{jpath}.max_refresh_interval"),
        field(|j| j.max_refresh_interval.as_ref()),
        Duration::from_secs(3600),
    );
    if min_refresh_interval > max_refresh_interval {
        c.problem(
            format!("{jpath}.min_refresh_interval"),
            field(|j| j.min_refresh_interval.as_ref()).and_then(line),
            "is longer than max_refresh_interval",
        );
    }
    let unknown_kid_cooldown = c.positive_duration(
        &format!("{jpath}.unknown_kid_cooldown"),
        field(|j| j.unknown_kid_cooldown.as_ref()),
        Duration::from_secs(10),
    );
    let fetch_timeout = c.positive_duration(
        &format!("{jpath}.fetch_timeout"),
        field(|j| j.fetch_timeout.as_ref()),
        Duration::from_secs(5),
    );
    Some(JwksRemote {
        url: uri,
        ca,
        algorithms,
        refresh_interval,
        min_refresh_interval,
        max_refresh_interval,
        unknown_kid_cooldown,
        fetch_timeout,
    })
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn key(c: &mut Check<'_>, path: &str, raw: &RawKey) -> Option<Key> {
    let algorithm = match Algorithm::from_str(&raw.algorithm.value) {
        Ok(a) => a,
        Err(_) => {
            let hint = if raw.algorithm.value.eq_ignore_ascii_case("none") {
                "`none` is never accepted: every token must be signed"
            } else {
                "use one of HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA"
            };
            c.problem(
                format!("{path}.algorithm"),
                line(&raw.algorithm),
                format!("`{}` is not supported: {hint}", raw.algorithm.value),
            );
            return None;
        }
    };
    if algorithm.family() == AlgorithmFamily::Hmac {
        hmac_key(c, path, raw, algorithm)
    } else {
        public_key(c, path, raw, algorithm)
    }
}

fn hmac_key(c: &mut Check<'_>, path: &str, raw: &RawKey, algorithm: Algorithm) -> Option<Key> {
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
        algorithm,
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

/// Reads a secret from exactly one of a file or an environment variable; a
/// trailing newline from `echo > file` or a Secret mount is not part of it.
fn secret(
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
    secret.truncate(secret.trim_ascii_end().len());
    Some(secret)
}

/// An HMAC secret of at least the length RFC 7518 §3.2 asks for `algorithm`.
fn hmac_secret(
    c: &mut Check<'_>,
    path: &str,
    sources: (Option<&S<String>>, Option<&S<String>>),
    algorithm: Algorithm,
    at: Option<u64>,
) -> Option<Vec<u8>> {
    let secret = secret(
        c,
        path,
        sources,
        at,
        "an HMAC key needs exactly one of secret_file or secret_env",
    )?;
    let min = match algorithm {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    };
    if secret.len() < min {
        c.problem(
            path,
            at,
            format!(
                "the {algorithm:?} secret is {} bytes; at least {min} are required (RFC 7518 §3.2)",
                secret.len()
            ),
        );
        return None;
    }
    Some(secret)
}

fn public_key(c: &mut Check<'_>, path: &str, raw: &RawKey, algorithm: Algorithm) -> Option<Key> {
    for (field, v) in [("secret_file", &raw.secret_file), ("secret_env", &raw.secret_env)] {
        if let Some(v) = v {
            c.problem(
                format!("{path}.{field}"),
                line(v),
                format!("a {algorithm:?} key is verified with a public key (public_key_file), never a secret"),
            );
        }
    }
    let Some(pub_file) = &raw.public_key_file else {
        c.problem(
            path,
            line(&raw.algorithm),
            format!("a {algorithm:?} key needs public_key_file"),
        );
        return None;
    };
    let pem = c.read(&format!("{path}.public_key_file"), pub_file)?;
    let family = algorithm.family();
    let verify = match family {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(&pem),
        AlgorithmFamily::Ec => DecodingKey::from_ec_pem(&pem),
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
            Algorithm::ES256 => Some(65),
            Algorithm::ES384 => Some(97),
            _ => None,
        };
        if expected.is_some_and(|n| n != point.len()) {
            c.problem(
                format!("{path}.public_key_file"),
                line(pub_file),
                format!("the key's curve does not match {algorithm:?} (ES256 needs P-256, ES384 needs P-384)"),
            );
            return None;
        }
    }
    let sign = match &raw.private_key_file {
        None => None,
        Some(f) => {
            let pem = c.read(&format!("{path}.private_key_file"), f)?;
            let key = match family {
                AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&pem),
                AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&pem),
                _ => EncodingKey::from_ed_pem(&pem),
            };
            match key {
                Ok(k) if pair_matches(&k, &verify, algorithm) => Some(k),
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

fn sessions(
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
    })
}

fn signing_key(c: &mut Check<'_>, raw: &RawSigningKey) -> Option<SigningKey> {
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
            algorithm,
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
fn pair_matches(sign: &EncodingKey, verify: &DecodingKey, algorithm: Algorithm) -> bool {
    let probe = b"tokengate key pair check";
    jsonwebtoken::crypto::sign(probe, sign, algorithm)
        .and_then(|sig| jsonwebtoken::crypto::verify(&sig, probe, verify, algorithm))
        .unwrap_or(false)
}

fn identity_headers(c: &mut Check<'_>, raw: Option<&RawIdentityHeaders>) -> IdentityHeaders {
    let mut out = IdentityHeaders::default();
    let header = |c: &mut Check<'_>, path: String, v: &S<String>| -> Option<HeaderName> {
        let name = match HeaderName::from_str(&v.value.to_ascii_lowercase()) {
            Ok(n) => n,
            Err(_) => {
                c.problem(path, line(v), format!("`{}` is not a header name", v.value));
                return None;
            }
        };
        if RESERVED_HEADERS.contains(&name.as_str()) {
            c.problem(path, line(v), format!("`{name}` is reserved and cannot carry identity"));
            return None;
        }
        Some(name)
    };
    match raw.and_then(|r| r.subject.as_ref()) {
        Some(v) => out.subject = header(c, "auth.identity_headers.subject".into(), v),
        None => out.subject = Some(HeaderName::from_static("x-auth-subject")),
    }
    if let Some(raw) = raw {
        for (claim, v) in &raw.claims {
            let path = format!("auth.identity_headers.claims.{claim}");
            if let Some(name) = header(c, path.clone(), v) {
                if out.names().any(|n| *n == name) {
                    c.problem(
                        path,
                        line(v),
                        format!("`{name}` is already used by another identity header"),
                    );
                } else {
                    out.claims.push((claim.clone(), name));
                }
            }
        }
    }
    out
}

fn route(c: &mut Check<'_>, path: &str, raw: &RawRoute) -> Option<Route> {
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

fn route_path(c: &mut Check<'_>, path: &str, v: &S<String>) -> Option<String> {
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

fn requirements(c: &mut Check<'_>, path: &str, raw: &RawRequire) -> Requirements {
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

fn revocation(c: &mut Check<'_>, raw: Option<&RawRevocation>) -> RevocationConfig {
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

fn redis(c: &mut Check<'_>, raw: &RawRedis) -> Option<RedisConfig> {
    use redis::IntoConnectionInfo;
    let scheme_ok = raw.url.value.starts_with("redis://") || raw.url.value.starts_with("rediss://");
    let info = match raw.url.value.as_str().into_connection_info() {
        Ok(info) if scheme_ok => Some(info),
        Ok(_) => {
            c.problem(
                "revocation.redis.url",
                line(&raw.url),
                "must start with redis:// or rediss:// (TLS)",
            );
            None
        }
        Err(e) => {
            c.problem("revocation.redis.url", line(&raw.url), format!("not a Redis URL: {e}"));
            None
        }
    };
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
    let mut info = info?;
    if let Some(pw) = password {
        let settings = info.redis_settings().clone().set_password(pw);
        info = info.set_redis_settings(settings);
    }
    Some(RedisConfig {
        display_url: redact_url(&raw.url.value),
        connection_info: info,
        prefix,
        connect_timeout,
        command_timeout,
        check_interval,
        page_size,
    })
}

/// The URL with any password replaced, for logs.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
