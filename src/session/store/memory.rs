//! The memory backend: the session state machine in-process, for one instance.

use std::collections::HashMap;

use super::*;

struct Session {
    sub: String,
    created: i64,
    refreshed: i64,
    expires: i64,
    current: TokenHash,
    previous: Option<TokenHash>,
    rotated_ms: i64,
    claims: String,
    access_exp: i64,
}

/// The memory backend's state.
#[derive(Default)]
pub struct Memory {
    sessions: HashMap<String, Session>,
    /// Every refresh token not yet expired, current or spent: (sid, exp).
    tokens: HashMap<TokenHash, (String, i64)>,
    /// Session ids per subject, oldest first.
    subjects: HashMap<String, Vec<String>>,
    swept_at: i64,
}

impl Memory {
    /// The session a refresh token (current or spent) belongs to.
    pub(super) fn lookup(&self, token: &TokenHash) -> Option<String> {
        self.tokens.get(token).map(|(sid, _)| sid.clone())
    }

    /// Drops what has expired, at most once a minute; keeps memory bounded
    /// by the live sessions as Redis TTLs do.
    pub(super) fn sweep(&mut self, now: i64) {
        if now - self.swept_at < 60 {
            return;
        }
        self.swept_at = now;
        self.tokens.retain(|_, (_, exp)| *exp >= now);
        self.sessions.retain(|_, s| s.expires >= now);
        let sessions = &self.sessions;
        self.subjects.retain(|_, sids| {
            sids.retain(|sid| sessions.contains_key(sid));
            !sids.is_empty()
        });
    }

    pub(super) fn open(&mut self, s: &NewSession<'_>) -> Opened {
        let now = s.now_ms / 1000;
        self.sweep(now);
        self.sessions.insert(
            s.sid.to_owned(),
            Session {
                sub: s.sub.to_owned(),
                created: now,
                refreshed: now,
                expires: s.token_exp,
                current: s.token,
                previous: None,
                rotated_ms: s.now_ms,
                claims: s.claims.to_owned(),
                access_exp: s.access_exp,
            },
        );
        self.tokens.insert(s.token, (s.sid.to_owned(), s.token_exp));
        let sids = self.subjects.entry(s.sub.to_owned()).or_default();
        sids.push(s.sid.to_owned());
        let sessions = &self.sessions;
        sids.retain(|sid| sessions.get(sid).is_some_and(|x| x.expires >= now));
        let excess = s.cap.map_or(0, |cap| sids.len().saturating_sub(cap as usize));
        let oldest: Vec<String> = sids.drain(..excess).collect();
        let mut opened = Opened::default();
        for sid in oldest {
            if let Some(gone) = self.sessions.remove(&sid) {
                self.tokens.remove(&gone.current);
                opened.evicted.push(Revocation::Session {
                    id: sid,
                    exp: gone.access_exp,
                });
            }
        }
        opened
    }

    pub(super) fn refresh(&mut self, r: &Rotation) -> Refreshed {
        let now = r.now_ms / 1000;
        self.sweep(now);
        let Some((sid, token_exp)) = self.tokens.get(&r.presented).cloned() else {
            return Refreshed::Invalid;
        };
        if token_exp < now {
            return Refreshed::Expired;
        }
        let Some(session) = self.sessions.get_mut(&sid) else {
            return Refreshed::Invalid;
        };
        if session.current != r.presented {
            if r.grace_ms > 0 && session.previous == Some(r.presented) && r.now_ms - session.rotated_ms <= r.grace_ms {
                return Refreshed::Concurrent;
            }
            let exp = session.access_exp;
            let current = session.current;
            let sub = session.sub.clone();
            self.sessions.remove(&sid);
            self.tokens.remove(&current);
            if let Some(sids) = self.subjects.get_mut(&sub) {
                sids.retain(|s| *s != sid);
            }
            return Refreshed::Reused {
                revocation: Revocation::Session { id: sid, exp },
            };
        }
        if session.expires < now {
            return Refreshed::Expired;
        }
        session.previous = Some(session.current);
        session.current = r.next;
        session.rotated_ms = r.now_ms;
        session.refreshed = now;
        session.expires = r.next_exp;
        session.access_exp = r.access_exp;
        let refreshed = Refreshed::Rotated {
            sid: sid.clone(),
            sub: session.sub.clone(),
            claims: session.claims.clone(),
            cutoff: None,
        };
        self.tokens.insert(r.next, (sid, r.next_exp));
        refreshed
    }

    pub(super) fn end(&mut self, sid: &str, min_exp: i64) -> (Option<Revocation>, bool) {
        let Some(session) = self.sessions.remove(sid) else {
            let revocation = (min_exp > 0).then(|| Revocation::Session {
                id: sid.to_owned(),
                exp: min_exp,
            });
            return (revocation, false);
        };
        self.tokens.remove(&session.current);
        if let Some(sids) = self.subjects.get_mut(&session.sub) {
            sids.retain(|s| s != sid);
        }
        let revocation = Revocation::Session {
            id: sid.to_owned(),
            exp: session.access_exp.max(min_exp),
        };
        (Some(revocation), true)
    }

    pub(super) fn end_subject(&mut self, sub: &str) -> usize {
        let sids = self.subjects.remove(sub).unwrap_or_default();
        let mut ended = 0;
        for sid in sids {
            if let Some(session) = self.sessions.remove(&sid) {
                self.tokens.remove(&session.current);
                ended += 1;
            }
        }
        ended
    }

    pub(super) fn list(&self, sub: &str, now: i64) -> Vec<SessionInfo> {
        let Some(sids) = self.subjects.get(sub) else {
            return Vec::new();
        };
        sids.iter()
            .filter_map(|sid| {
                let s = self.sessions.get(sid).filter(|s| s.expires >= now)?;
                Some(SessionInfo {
                    sid: sid.clone(),
                    created: s.created,
                    last_refreshed: s.refreshed,
                    expires: s.expires,
                })
            })
            .collect()
    }
}
