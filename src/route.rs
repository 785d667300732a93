//! Route policy: which rule covers a (normalised) path, and so what a request
//! must carry. Rules are tried in order; the first match wins; a path no rule
//! covers requires a valid token.

use http::Method;

use crate::config::{Access, PathMatch, Requirements, Route};

/// The ordered route rules.
#[derive(Debug, Clone)]
pub struct RoutePolicy {
    routes: Vec<Route>,
    /// Some route pattern has an upper-case letter.
    upper_case_patterns: bool,
    /// What an unmatched request gets: any valid token, WebSocket allowed.
    fallback: Route,
}

impl RoutePolicy {
    /// The policy over `routes`, in configured order.
    pub fn new(routes: Vec<Route>) -> Self {
        let upper_case_patterns = routes.iter().any(|r| match &r.matcher {
            PathMatch::Exact(p) | PathMatch::Prefix(p) => p.bytes().any(|b| b.is_ascii_uppercase()),
        });
        RoutePolicy {
            routes,
            upper_case_patterns,
            fallback: Route {
                matcher: PathMatch::Prefix("/".to_owned()),
                methods: None,
                upgrades: vec!["websocket".to_owned()],
                access: Access::Token(Requirements::default()),
            },
        }
    }

    /// The rule for `method` on the normalised `path`.
    pub fn rule(&self, method: &Method, path: &str) -> &Route {
        self.routes
            .iter()
            .find(|r| r.matcher.matches(path) && r.methods.as_ref().is_none_or(|m| m.contains(method)))
            .unwrap_or(&self.fallback)
    }

    /// Whether a case-insensitive router could serve `path` under another
    /// rule than [`rule`](Self::rule) picked: the rule matched ignoring case
    /// differs (`/ADMIN/x` when `/admin/` is protected and `/` is not).
    pub fn case_ambiguous(&self, method: &Method, path: &str, rule: &Route) -> bool {
        if !self.upper_case_patterns && !path.bytes().any(|b| b.is_ascii_uppercase()) {
            return false;
        }
        let folded = self
            .routes
            .iter()
            .find(|r| r.matcher.matches_ignoring_case(path) && r.methods.as_ref().is_none_or(|m| m.contains(method)))
            .unwrap_or(&self.fallback);
        !std::ptr::eq(folded, rule)
    }

    /// The access rule for `method` on the normalised `path`.
    pub fn access(&self, method: &Method, path: &str) -> &Access {
        &self.rule(method, path).access
    }
}

impl Route {
    /// Whether a client may switch this route's connection to `protocol`,
    /// one whole `Upgrade` token compared without case (`websocket`).
    pub fn allows_upgrade(&self, protocol: &str) -> bool {
        self.upgrades.iter().any(|u| u.eq_ignore_ascii_case(protocol))
    }
}

impl PathMatch {
    /// Whether this matcher covers the normalised `path`. Prefixes match whole
    /// segments: `/admin` and `/admin/` both cover `/admin`, `/admin/` and
    /// `/admin/x`, never `/administrator`.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => p == path,
            PathMatch::Prefix(prefix) => {
                let base = prefix.strip_suffix('/').unwrap_or(prefix);
                match path.strip_prefix(base) {
                    Some(rest) => rest.is_empty() || rest.starts_with('/'),
                    None => false,
                }
            }
        }
    }
}

impl PathMatch {
    /// [`matches`](Self::matches) with ASCII letters compared without case.
    pub fn matches_ignoring_case(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => p.eq_ignore_ascii_case(path),
            PathMatch::Prefix(prefix) => {
                let base = prefix.strip_suffix('/').unwrap_or(prefix);
                match path.get(..base.len()) {
                    Some(head) if head.eq_ignore_ascii_case(base) => {
                        let rest = &path[base.len()..];
                        rest.is_empty() || rest.starts_with('/')
                    }
                    _ => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(m: PathMatch, access: Access) -> Route {
        Route {
            matcher: m,
            methods: None,
            upgrades: vec!["websocket".into()],
            access,
        }
    }

    #[test]
    fn prefix_matches_whole_segments() {
        let p = PathMatch::Prefix("/admin/".into());
        assert!(p.matches("/admin"));
        assert!(p.matches("/admin/"));
        assert!(p.matches("/admin/x/y"));
        assert!(!p.matches("/administrator"));
        assert!(!p.matches("/"));
        let p = PathMatch::Prefix("/admin".into());
        assert!(p.matches("/admin/x"));
        assert!(!p.matches("/adminx"));
        let root = PathMatch::Prefix("/".into());
        assert!(root.matches("/"));
        assert!(root.matches("/anything/at/all"));
    }

    #[test]
    fn first_match_wins_and_default_requires_token() {
        let policy = RoutePolicy::new(vec![
            route(PathMatch::Exact("/healthz".into()), Access::Public),
            route(
                PathMatch::Prefix("/admin/".into()),
                Access::Token(Requirements {
                    scopes: vec!["admin".into()],
                    claims: vec![],
                }),
            ),
            route(PathMatch::Prefix("/".into()), Access::Public),
        ]);
        assert!(matches!(policy.access(&Method::GET, "/healthz"), Access::Public));
        assert!(matches!(policy.access(&Method::GET, "/admin/x"), Access::Token(r) if r.scopes == ["admin"]));
        assert!(matches!(policy.access(&Method::GET, "/other"), Access::Public));
        let empty = RoutePolicy::new(vec![]);
        assert!(matches!(empty.access(&Method::GET, "/x"), Access::Token(r) if r.scopes.is_empty()));
    }

    #[test]
    fn case_ambiguity() {
        let policy = RoutePolicy::new(vec![
            route(
                PathMatch::Prefix("/admin/".into()),
                Access::Token(Requirements {
                    scopes: vec!["admin".into()],
                    claims: vec![],
                }),
            ),
            route(PathMatch::Prefix("/API/".into()), Access::Public),
            route(PathMatch::Prefix("/".into()), Access::Public),
        ]);
        let ambiguous = |p: &str| policy.case_ambiguous(&Method::GET, p, policy.rule(&Method::GET, p));
        assert!(ambiguous("/ADMIN/x"));
        assert!(ambiguous("/Admin"));
        assert!(ambiguous("/api/x"));
        assert!(!ambiguous("/admin/x"));
        assert!(!ambiguous("/API/Users/X"));
        assert!(!ambiguous("/Other/X"));
        assert!(!ambiguous("/administrator"));
    }

    #[test]
    fn methods_narrow_a_rule() {
        let policy = RoutePolicy::new(vec![Route {
            matcher: PathMatch::Prefix("/".into()),
            methods: Some(vec![Method::OPTIONS]),
            upgrades: vec![],
            access: Access::Public,
        }]);
        assert!(matches!(policy.access(&Method::OPTIONS, "/x"), Access::Public));
        assert!(matches!(policy.access(&Method::GET, "/x"), Access::Token(_)));
    }
}
