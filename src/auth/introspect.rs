//! RFC 7662 introspection of one issuer's opaque tokens: the provider says
//! whether a token is active and whose it is. Results are cached under a
//! 128-bit keyed hash of the token (never the token): an active one until
//! its `exp` (at most `cache_max`), an inactive one for `negative_cache`;
//! failures are not cached. Concurrent requests with one uncached token
//! share one introspection.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use moka::sync::Cache;
use prometheus::{IntCounterVec, Opts, Registry};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::AuthError;
use super::claims::{Claims, numeric_date};
use crate::config::{ClientAuth, Introspection, Issuer};
use crate::jwks::KeyStore;
use crate::jwks::fetch::{HttpClient, https_client};

/// Largest introspection response read; real ones are under a kilobyte.
const MAX_RESPONSE: usize = 64 * 1024;
/// Distinct uncached tokens being introspected at once, at most.
const MAX_IN_FLIGHT: usize = 4096;

/// The counter of introspection outcomes, shared across reloads.
#[derive(Clone)]
pub struct IntrospectionMetrics(IntCounterVec);

impl IntrospectionMetrics {
    /// Registers `tokengate_introspections_total{result}`.
    pub fn new(registry: &Registry) -> Result<IntrospectionMetrics, prometheus::Error> {
        let counter = IntCounterVec::new(
            Opts::new(
                "tokengate_introspections_total",
                "Opaque-token checks, by result: cache_hit, active, inactive, unavailable.",
            ),
            &["result"],
        )?;
        registry.register(Box::new(counter.clone()))?;
        Ok(IntrospectionMetrics(counter))
    }

    fn count(&self, result: &str) {
        self.0.with_label_values(&[result]).inc();
    }
}

/// What the provider said about a token, as cached.
#[derive(Clone)]
enum Answer {
    Active(Arc<Claims>),
    Inactive,
}

#[derive(Clone)]
struct Entry {
    answer: Answer,
    ttl: Duration,
}

struct ForTtl;

impl moka::Expiry<(u64, u64), Entry> for ForTtl {
    fn expire_after_create(&self, _: &(u64, u64), entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

type InFlight = Arc<OnceCell<Result<Answer, AuthError>>>;

/// The introspecting issuer's client, cache and in-flight requests.
pub(super) struct Introspector {
    issuer: String,
    audiences: Vec<String>,
    config: Introspection,
    /// The issuer's discovered metadata, when no endpoint is configured.
    store: Option<Arc<KeyStore>>,
    client: HttpClient,
    cache: Cache<(u64, u64), Entry>,
    hashers: (std::hash::RandomState, std::hash::RandomState),
    in_flight: Mutex<HashMap<(u64, u64), InFlight>>,
    metrics: IntrospectionMetrics,
}

impl Introspector {
    /// The introspector of the one issuer that has `introspection`, if any.
    pub(super) fn for_issuers(
        issuers: &[Issuer],
        stores: &[Arc<KeyStore>],
        metrics: &IntrospectionMetrics,
    ) -> Option<Introspector> {
        let issuer = issuers.iter().find(|i| i.introspection.is_some())?;
        let config = issuer.introspection.clone()?;
        Some(Introspector {
            issuer: issuer.issuer.clone(),
            audiences: issuer.audiences.clone(),
            store: stores.iter().find(|s| s.issuer() == issuer.issuer).cloned(),
            client: https_client(config.ca.as_deref(), config.timeout),
            cache: Cache::builder()
                .max_capacity(config.max_entries)
                .expire_after(ForTtl)
                .build(),
            hashers: (std::hash::RandomState::new(), std::hash::RandomState::new()),
            in_flight: Mutex::new(HashMap::new()),
            metrics: metrics.clone(),
            config,
        })
    }

    /// The claims of opaque `token` at `now`, from the cache or the provider.
    pub(super) async fn claims(&self, token: &str, now: i64, leeway: i64) -> Result<Arc<Claims>, AuthError> {
        let key = (self.hashers.0.hash_one(token), self.hashers.1.hash_one(token));
        if let Some(entry) = self.cache.get(&key) {
            self.metrics.count("cache_hit");
            return match entry.answer {
                Answer::Active(claims) => {
                    super::jwt::check_times(&claims, now, leeway)?;
                    Ok(claims)
                }
                Answer::Inactive => Err(AuthError::Inactive),
            };
        }
        let cell = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if in_flight.len() >= MAX_IN_FLIGHT && !in_flight.contains_key(&key) {
                // Entries whose every caller went away (the map holds the
                // only reference) are dropped; if that frees nothing, the
                // provider is being flooded with distinct tokens.
                in_flight.retain(|_, c| Arc::strong_count(c) > 1);
                if in_flight.len() >= MAX_IN_FLIGHT {
                    self.metrics.count("unavailable");
                    return Err(AuthError::IntrospectionUnavailable);
                }
            }
            in_flight.entry(key).or_default().clone()
        };
        // One introspection per token however many requests carry it; if
        // the caller running it goes away, the next waiter takes over.
        let answer = cell
            .get_or_init(|| async {
                let result = self.ask(token, now, leeway).await;
                match &result {
                    Ok(answer) => {
                        self.metrics.count(match answer {
                            Answer::Active(_) => "active",
                            Answer::Inactive => "inactive",
                        });
                        if let Some(ttl) = self.ttl(answer, now, leeway) {
                            self.cache.insert(
                                key,
                                Entry {
                                    answer: answer.clone(),
                                    ttl,
                                },
                            );
                        }
                    }
                    Err(_) => self.metrics.count("unavailable"),
                }
                result
            })
            .await
            .clone();
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if in_flight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                in_flight.remove(&key);
            }
        }
        match answer? {
            Answer::Active(claims) => Ok(claims),
            Answer::Inactive => Err(AuthError::Inactive),
        }
    }

    fn ttl(&self, answer: &Answer, now: i64, leeway: i64) -> Option<Duration> {
        match answer {
            Answer::Active(claims) => {
                let left = claims.exp.saturating_add(leeway).saturating_sub(now);
                let left = Duration::from_secs(u64::try_from(left).ok()?);
                Some(left.min(self.config.cache_max)).filter(|d| !d.is_zero())
            }
            Answer::Inactive => Some(self.config.negative_cache).filter(|d| !d.is_zero()),
        }
    }

    fn endpoint(&self) -> Option<Uri> {
        self.config.endpoint.clone().or_else(|| {
            self.store
                .as_ref()
                .and_then(|s| s.metadata())
                .and_then(|m| m.introspection_endpoint.clone())
        })
    }

    /// One request to the provider, judged.
    async fn ask(&self, token: &str, now: i64, leeway: i64) -> Result<Answer, AuthError> {
        let endpoint = self.endpoint().ok_or(AuthError::IntrospectionUnavailable)?;
        // In a block: the serializer is not `Send` and must be gone before any await.
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("token", token)
                .append_pair("token_type_hint", "access_token");
            if self.config.auth_method == ClientAuth::Post {
                form.append_pair("client_id", &self.config.client_id)
                    .append_pair("client_secret", &self.config.client_secret);
            }
            form.finish()
        };
        let mut request = Request::post(endpoint)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, concat!("tokengate/", env!("CARGO_PKG_VERSION")));
        match self.config.auth_method {
            ClientAuth::Basic => {
                // RFC 6749 §2.3.1: each part form-encoded before joining.
                let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", enc(&self.config.client_id), enc(&self.config.client_secret));
                let basic = base64::engine::general_purpose::STANDARD.encode(pair);
                request = request.header(header::AUTHORIZATION, format!("Basic {basic}"));
            }
            ClientAuth::Post => {}
        }
        let request = request
            .body(Full::new(Bytes::from(form)))
            .map_err(|_| AuthError::IntrospectionUnavailable)?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                tracing::warn!(issuer = %self.issuer, error = %e, "introspection request failed");
                AuthError::IntrospectionUnavailable
            })?;
            if response.status() != StatusCode::OK {
                tracing::warn!(issuer = %self.issuer, status = %response.status(), "introspection refused");
                return Err(AuthError::IntrospectionUnavailable);
            }
            Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|_| AuthError::IntrospectionUnavailable)
        };
        let body = tokio::time::timeout(self.config.timeout, exchange)
            .await
            .map_err(|_| {
                tracing::warn!(issuer = %self.issuer, timeout = ?self.config.timeout, "introspection timed out");
                AuthError::IntrospectionUnavailable
            })??;
        let Some(map) = crate::json::unique_object(&body) else {
            tracing::warn!(issuer = %self.issuer, "introspection answer is not a JSON object with unique members");
            return Err(AuthError::IntrospectionUnavailable);
        };
        self.judge(map, now, leeway)
    }

    /// RFC 7662 §2.2: only `active: true` means anything; then the claims
    /// must fit this issuer as a JWT's would.
    fn judge(&self, mut map: Map<String, Value>, now: i64, leeway: i64) -> Result<Answer, AuthError> {
        if map.remove("active") != Some(Value::Bool(true)) {
            return Ok(Answer::Inactive);
        }
        // A refresh token, or one bound to a key (`token_type` DPoP, `cnf`),
        // is not a bearer access token; the provider may still call it active.
        match map.get("token_type") {
            None => {}
            Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") || t == "access_token" => {}
            Some(_) => return Err(AuthError::WrongType),
        }
        super::jwt::check_bearer(&map)?;
        match map.get("iss") {
            None => {
                map.insert("iss".into(), self.issuer.clone().into());
            }
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(_) => return Err(AuthError::UnknownIssuer),
        }
        let date = |name: &'static str| -> Result<Option<i64>, AuthError> {
            map.get(name)
                .map(|v| numeric_date(v).ok_or(AuthError::Malformed("introspected date is not a NumericDate")))
                .transpose()
        };
        let (exp, nbf, iat) = (date("exp")?, date("nbf")?, date("iat")?);
        // Without `exp` the entry lives at most `cache_max`; the claims
        // carry that bound so a cache hit judges it like any other.
        let cap = i64::try_from(self.config.cache_max.as_secs()).unwrap_or(i64::MAX);
        let exp = exp.unwrap_or_else(|| now.saturating_add(cap));
        if !self.audiences.is_empty() {
            super::jwt::check_audience(map.get("aud"), &self.audiences)?;
        }
        let claims = Claims::new(map, exp, nbf, iat);
        super::jwt::check_times(&claims, now, leeway)?;
        Ok(Answer::Active(Arc::new(claims)))
    }
}

/// True when `token` cannot be a compact JWS (three dot-separated parts),
/// so only introspection can tell what it is.
pub(super) fn is_opaque(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() != 2
}

#[cfg(test)]
mod tests {
    use super::is_opaque;

    #[test]
    fn opaque_is_anything_but_three_parts() {
        assert!(is_opaque("SKGZNqq1y1W3-hisuuKS8WajctUxac4H_asPpIlIARl"));
        assert!(is_opaque("a.b"));
        assert!(is_opaque("a.b.c.d"));
        assert!(!is_opaque("a.b.c"));
        assert!(!is_opaque(".."));
    }
}
