//! The YAML shape exactly as operators write it. Every struct rejects unknown
//! fields; every scalar that validation may complain about is `Spanned` so the
//! complaint can name its line.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A scalar with the line it was written on.
pub(super) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) listen: Option<S<String>>,
    pub(super) upstream: RawUpstream,
    pub(super) tls: Option<RawTls>,
    pub(super) admin: Option<RawAdmin>,
    pub(super) limits: Option<RawLimits>,
    pub(super) http: Option<RawHttp>,
    pub(super) access_log: Option<S<bool>>,
    pub(super) shutdown: Option<RawShutdown>,
    pub(super) auth: RawAuth,
    #[serde(default)]
    pub(super) routes: Vec<RawRoute>,
    pub(super) revocation: Option<RawRevocation>,
    pub(super) reload: Option<RawReload>,
    pub(super) sessions: Option<RawSessions>,
    pub(super) decision: Option<RawDecision>,
    pub(super) backchannel_logout: Option<RawBackchannel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackchannel {
    pub(super) path: Option<S<String>>,
    pub(super) max_age: Option<S<String>>,
    pub(super) revoke: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIssuerLogout {
    #[serde(default)]
    pub(super) audiences: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDecision {
    pub(super) listen: Option<S<String>>,
    pub(super) secret_file: Option<S<String>>,
    pub(super) secret_env: Option<S<String>>,
    pub(super) cache_max_age: Option<S<String>>,
    pub(super) tls: Option<RawDecisionTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDecisionTls {
    pub(super) cert_file: S<String>,
    pub(super) key_file: S<String>,
    pub(super) client_ca_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSessions {
    pub(super) issuer: Option<S<String>>,
    pub(super) audience: Option<S<String>>,
    pub(super) signing_key: RawSigningKey,
    pub(super) access_token_ttl: Option<S<String>>,
    pub(super) refresh_token_ttl: Option<S<String>>,
    pub(super) max_sessions_per_subject: Option<S<u64>>,
    pub(super) reuse_grace: Option<S<String>>,
    pub(super) path_prefix: Option<S<String>>,
    pub(super) control: Option<RawControl>,
    pub(super) browser: Option<RawBrowser>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBrowser {
    pub(super) issuer: Option<S<String>>,
    pub(super) client_id: Option<S<String>>,
    pub(super) secret_file: Option<S<String>>,
    pub(super) secret_env: Option<S<String>>,
    pub(super) auth_method: Option<S<String>>,
    pub(super) private_key_file: Option<S<String>>,
    pub(super) key_algorithm: Option<S<String>>,
    pub(super) key_id: Option<S<String>>,
    pub(super) scopes: Option<Vec<S<String>>>,
    pub(super) claims: Option<Vec<S<String>>>,
    pub(super) public_url: Option<S<String>>,
    pub(super) prefixes: Option<Vec<S<String>>>,
    pub(super) post_logout_redirect_uri: Option<S<String>>,
    pub(super) end_session: Option<S<String>>,
    pub(super) insecure_http: Option<S<bool>>,
    pub(super) login_timeout: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSigningKey {
    pub(super) algorithm: Option<S<String>>,
    pub(super) kid: Option<S<String>>,
    pub(super) private_key_file: Option<S<String>>,
    pub(super) secret_file: Option<S<String>>,
    pub(super) secret_env: Option<S<String>>,
    pub(super) secret_encoding: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    pub(super) listen: Option<S<String>>,
    pub(super) secret_file: Option<S<String>>,
    pub(super) secret_env: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReload {
    pub(super) watch: Option<S<bool>>,
    pub(super) watch_interval: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub(super) url: S<String>,
    pub(super) connect_timeout: Option<S<String>>,
    pub(super) request_timeout: Option<S<String>>,
    pub(super) pool_idle_timeout: Option<S<String>>,
    pub(super) pool_max_idle: Option<S<u64>>,
    pub(super) max_connections: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert_file: S<String>,
    pub(super) key_file: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub(super) listen: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) max_header_bytes: Option<S<u64>>,
    pub(super) max_token_bytes: Option<S<u64>>,
    pub(super) header_read_timeout: Option<S<String>>,
    pub(super) idle_timeout: Option<S<String>>,
    pub(super) tunnel_idle_timeout: Option<S<String>>,
    pub(super) tls_handshake_timeout: Option<S<String>>,
    pub(super) max_connections: Option<S<u64>>,
    pub(super) max_concurrent_streams: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) header_names: Option<S<String>>,
    pub(super) strip_headers: Option<Vec<S<String>>>,
    pub(super) path_parameters: Option<S<String>>,
    pub(super) case_ambiguous_paths: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShutdown {
    pub(super) delay: Option<S<String>>,
    pub(super) drain_timeout: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) leeway: Option<S<String>>,
    pub(super) realm: Option<S<String>>,
    pub(super) sources: Option<Vec<RawSource>>,
    #[serde(default)]
    pub(super) issuers: Vec<RawIssuer>,
    pub(super) identity_headers: Option<RawIdentityHeaders>,
    pub(super) verify_cache: Option<RawVerifyCache>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerifyCache {
    pub(super) enabled: Option<S<bool>>,
    pub(super) max_entries: Option<S<u64>>,
}

/// One of `header:`, `cookie:` or `query:`; validation insists on exactly one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) header: Option<S<String>>,
    pub(super) cookie: Option<S<String>>,
    pub(super) query: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIssuer {
    pub(super) issuer: S<String>,
    #[serde(default)]
    pub(super) audiences: Vec<S<String>>,
    #[serde(default)]
    pub(super) keys: Vec<RawKey>,
    pub(super) jwks_url: Option<S<String>>,
    pub(super) jwks_file: Option<S<String>>,
    pub(super) discovery: Option<S<bool>>,
    pub(super) algorithms: Option<Vec<S<String>>>,
    pub(super) jwks: Option<RawJwks>,
    pub(super) token_type: Option<S<String>>,
    pub(super) backchannel_logout: Option<RawIssuerLogout>,
    pub(super) introspection: Option<RawIntrospection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntrospection {
    pub(super) endpoint: Option<S<String>>,
    pub(super) client_id: Option<S<String>>,
    pub(super) secret_file: Option<S<String>>,
    pub(super) secret_env: Option<S<String>>,
    pub(super) auth_method: Option<S<String>>,
    pub(super) timeout: Option<S<String>>,
    pub(super) cache_max: Option<S<String>>,
    pub(super) negative_cache: Option<S<String>>,
    pub(super) max_entries: Option<S<u64>>,
    pub(super) ca_file: Option<S<String>>,
    pub(super) allow_http: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwks {
    pub(super) ca_file: Option<S<String>>,
    pub(super) allow_http: Option<S<bool>>,
    pub(super) refresh_interval: Option<S<String>>,
    pub(super) min_refresh_interval: Option<S<String>>,
    pub(super) max_refresh_interval: Option<S<String>>,
    pub(super) unknown_kid_cooldown: Option<S<String>>,
    pub(super) fetch_timeout: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub(super) kid: Option<S<String>>,
    pub(super) algorithm: S<String>,
    pub(super) secret_file: Option<S<String>>,
    pub(super) secret_env: Option<S<String>>,
    pub(super) secret_encoding: Option<S<String>>,
    pub(super) public_key_file: Option<S<String>>,
    pub(super) private_key_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentityHeaders {
    pub(super) subject: Option<S<String>>,
    #[serde(default)]
    pub(super) claims: BTreeMap<String, S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) path: Option<S<String>>,
    pub(super) prefix: Option<S<String>>,
    pub(super) methods: Option<Vec<S<String>>>,
    pub(super) upgrades: Option<Vec<S<String>>>,
    pub(super) public: Option<S<bool>>,
    pub(super) require: Option<RawRequire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequire {
    #[serde(default)]
    pub(super) scopes: Vec<S<String>>,
    #[serde(default)]
    pub(super) claims: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRevocation {
    pub(super) backend: Option<S<String>>,
    pub(super) redis: Option<RawRedis>,
    pub(super) max_staleness: Option<S<String>>,
    pub(super) on_stale: Option<S<String>>,
    pub(super) max_token_lifetime: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedis {
    pub(super) url: S<String>,
    pub(super) password_file: Option<S<String>>,
    pub(super) password_env: Option<S<String>>,
    pub(super) prefix: Option<S<String>>,
    pub(super) connect_timeout: Option<S<String>>,
    pub(super) command_timeout: Option<S<String>>,
    pub(super) check_interval: Option<S<String>>,
    pub(super) page_size: Option<S<u64>>,
    pub(super) wait_for_replicas: Option<S<u64>>,
}
