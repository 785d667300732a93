//! The Redis revocation protocol, an external contract that issuers in any
//! language write to. Everything about it lives here: key names, the channel,
//! the message JSON, and the Lua script that makes a revocation atomic.
//!
//! | key | type | content |
//! |---|---|---|
//! | `{prefix}:revoked:jti` | sorted set | member = jti, score = the token's `exp` |
//! | `{prefix}:revoked:sub` | sorted set | member = subject, score = cut-off (`iat <= score` is revoked) |
//! | `{prefix}:revoked:sid` | sorted set | member = session id (`sid` claim), score = the last `exp` of its tokens |
//! | `{prefix}:seq` | integer | incremented by every revocation |
//! | channel `prefix:revocations` | pub/sub | one JSON message per revocation, with its `seq` |
//!
//! The keys share the hash tag `{prefix}` so one script touches them all on
//! Redis Cluster too.

use serde::{Deserialize, Serialize};

/// The revoke script: bump `seq`, add to the set (keeping the later score if
/// the member exists), publish the message. One atomic step.
///
/// `KEYS[1]` the set, `KEYS[2]` the seq key; `ARGV[1]` kind (`jti`|`sub`|`sid`),
/// `ARGV[2]` id, `ARGV[3]` score (exp or cut-off), `ARGV[4]` channel.
/// Returns the new `seq`.
pub const REVOKE_SCRIPT: &str = include_str!("revoke.lua");

/// The same step as a Lua function, for scripts (the session store) that
/// revoke as part of a larger atomic change: `revoke(set, seq_key, kind, id,
/// score, channel)`.
pub const REVOKE_FUNCTION: &str = include_str!("revoke_function.lua");

/// The body run after [`REVOKE_FUNCTION`] by `Revocations::revoke_once`:
/// revoke unless a once key exists, and set it. `KEYS[1]` the set, `KEYS[2]`
/// the seq key, `KEYS[3]` the once key; `ARGV` as [`REVOKE_SCRIPT`] plus
/// `ARGV[5]`, the once key's TTL in seconds. Returns the seq, or -1.
pub const REVOKE_ONCE_SCRIPT: &str = include_str!("revoke_once.lua");

/// Key and channel names for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `{prefix}`: the hash tag every key starts with (the session store
    /// builds its own keys under it, so one script can touch them all).
    pub tag: String,
    /// `{prefix}:revoked:jti`
    pub jti: String,
    /// `{prefix}:revoked:sub`
    pub sub: String,
    /// `{prefix}:revoked:sid`
    pub sid: String,
    /// `{prefix}:seq`
    pub seq: String,
    /// `prefix:revocations`
    pub channel: String,
}

impl Keys {
    /// The names for `prefix` (default `tokengate`).
    pub fn new(prefix: &str) -> Keys {
        Keys {
            tag: format!("{{{prefix}}}"),
            jti: format!("{{{prefix}}}:revoked:jti"),
            sub: format!("{{{prefix}}}:revoked:sub"),
            sid: format!("{{{prefix}}}:revoked:sid"),
            seq: format!("{{{prefix}}}:seq"),
            channel: format!("{prefix}:revocations"),
        }
    }
}

/// One revocation, as written to Redis and carried on the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The token with this `jti`, which expires at `exp`.
    Jti {
        /// The token id.
        id: String,
        /// The token's `exp` (unix seconds): the entry is kept until then.
        exp: i64,
    },
    /// Every token of `subject` issued at or before `before` (unix seconds).
    Subject {
        /// The subject (`sub`).
        id: String,
        /// The cut-off.
        before: i64,
    },
    /// Every token carrying this `sid` claim (one login session).
    Session {
        /// The session id.
        id: String,
        /// The last `exp` of the session's tokens: the entry is kept until then.
        exp: i64,
    },
}

/// Which of the three sets an entry lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Token ids.
    Jti,
    /// Subject cut-offs.
    Sub,
    /// Session ids.
    Sid,
}

impl Kind {
    /// Every kind, in load order.
    pub const ALL: [Kind; 3] = [Kind::Jti, Kind::Sub, Kind::Sid];

    /// The `kind` field of a message and the metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Sub => "sub",
            Kind::Sid => "sid",
        }
    }
}

impl Keys {
    /// The sorted set holding `kind`.
    pub fn set(&self, kind: Kind) -> &str {
        match kind {
            Kind::Jti => &self.jti,
            Kind::Sub => &self.sub,
            Kind::Sid => &self.sid,
        }
    }
}

/// The channel message, `{"seq": 42, "kind": "jti", "id": "...", "exp": 1767225600}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The value of `{prefix}:seq` after this revocation.
    pub seq: u64,
    /// `jti`, `sub` or `sid`.
    pub kind: String,
    /// The jti, subject or session id.
    pub id: String,
    /// For `jti` and `sid`: the expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<f64>,
    /// For `sub`: the cut-off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<f64>,
}

/// Why a channel message was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not JSON, or missing fields.
    #[error("not a revocation message: {0}")]
    Json(String),
    /// `kind` is not `jti`, `sub` or `sid`, or its time field is missing.
    #[error("revocation message has kind `{0}` without its time field")]
    Kind(String),
}

impl Message {
    /// Parses a channel payload into its `seq` and revocation.
    pub fn parse(payload: &[u8]) -> Result<(u64, Revocation), MessageError> {
        let m: Message = serde_json::from_slice(payload).map_err(|e| MessageError::Json(e.to_string()))?;
        let time = |v: Option<f64>| v.filter(|t| t.is_finite()).map(|t| t.floor() as i64);
        let revocation = match (m.kind.as_str(), time(m.exp), time(m.before)) {
            ("jti", Some(exp), _) if !m.id.is_empty() => Revocation::Jti { id: m.id, exp },
            ("sub", _, Some(before)) if !m.id.is_empty() => Revocation::Subject { id: m.id, before },
            ("sid", Some(exp), _) if !m.id.is_empty() => Revocation::Session { id: m.id, exp },
            _ => return Err(MessageError::Kind(m.kind)),
        };
        Ok((m.seq, revocation))
    }
}

impl Revocation {
    /// `(kind, id, score)` as the script takes them.
    pub fn script_args(&self) -> (Kind, &str, i64) {
        match self {
            Revocation::Jti { id, exp } => (Kind::Jti, id, *exp),
            Revocation::Subject { id, before } => (Kind::Sub, id, *before),
            Revocation::Session { id, exp } => (Kind::Sid, id, *exp),
        }
    }
}

/// Runs the revoke script; returns the new `seq`.
pub async fn revoke<C>(conn: &mut C, keys: &Keys, revocation: &Revocation) -> redis::RedisResult<u64>
where
    C: redis::aio::ConnectionLike + Send,
{
    let (kind, id, score) = revocation.script_args();
    redis::Script::new(REVOKE_SCRIPT)
        .key(keys.set(kind))
        .key(&keys.seq)
        .arg(kind.label())
        .arg(id)
        .arg(score)
        .arg(&keys.channel)
        .invoke_async(conn)
        .await
}

/// The revoke step inside tokengate's script guard (see
/// `redis_client::guarded_script`), for the revocations tokengate writes
/// itself: the same keys, arguments and answer as [`REVOKE_SCRIPT`], then
/// the guard's key and argument.
pub fn guarded_revoke() -> &'static redis::Script {
    static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        crate::redis_client::guarded_script(&format!(
            "{REVOKE_FUNCTION}\nreturn revoke(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])"
        ))
    });
    &SCRIPT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_follow_the_contract() {
        let k = Keys::new("tokengate");
        assert_eq!(k.jti, "{tokengate}:revoked:jti");
        assert_eq!(k.sub, "{tokengate}:revoked:sub");
        assert_eq!(k.sid, "{tokengate}:revoked:sid");
        assert_eq!(k.seq, "{tokengate}:seq");
        assert_eq!(k.channel, "tokengate:revocations");
    }

    #[test]
    fn messages_parse() {
        assert_eq!(
            Message::parse(br#"{"seq": 42, "kind": "jti", "id": "abc", "exp": 1767225600}"#),
            Ok((
                42,
                Revocation::Jti {
                    id: "abc".into(),
                    exp: 1767225600
                }
            ))
        );
        assert_eq!(
            Message::parse(br#"{"seq":43,"kind":"sub","id":"alice","before":1767225600}"#),
            Ok((
                43,
                Revocation::Subject {
                    id: "alice".into(),
                    before: 1767225600
                }
            ))
        );
        assert_eq!(
            Message::parse(br#"{"seq":44,"kind":"sid","id":"s1","exp":1767225600}"#),
            Ok((
                44,
                Revocation::Session {
                    id: "s1".into(),
                    exp: 1767225600
                }
            ))
        );
        for bad in [
            &br#"not json"#[..],
            br#"{"seq": 1, "kind": "jti", "id": "x"}"#,
            br#"{"seq": 1, "kind": "sid", "id": "x", "before": 1}"#,
            br#"{"seq": 1, "kind": "session", "id": "x", "exp": 1}"#,
            br#"{"seq": 1, "kind": "jti", "id": "", "exp": 1}"#,
            br#"{"kind": "jti", "id": "x", "exp": 1}"#,
        ] {
            assert!(Message::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
