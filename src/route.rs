//! Route policy: which rule covers a (normalised) path, and so what a request
//! must carry. Rules are tried in order; the first match wins; a path no rule
//! covers requires a valid token.

use http::Method;

use crate::config::{Access, PathMatch, Requirements, Route};

/// What an unmatched request needs: any valid token.
static DEFAULT_ACCESS: Access = Access::Token(Requirements {
    scopes: Vec::new(),
    claims: Vec::new(),
});

/// The ordered route rules.
#[derive(Debug, Clone)]
pub struct RoutePolicy {
    routes: Vec<Route>,
}

impl RoutePolicy {
    /// The policy over `routes`, in configured order.
    pub fn new(routes: Vec<Route>) -> Self {
        RoutePolicy { routes }
    }

    /// The access rule for `method` on the normalised `path`.
    pub fn access(&self, method: &Method, path: &str) -> &Access {
        self.routes
            .iter()
            .find(|r| r.matcher.matches(path) && r.methods.as_ref().is_none_or(|m| m.contains(method)))
            .map_or(&DEFAULT_ACCESS, |r| &r.access)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn route(m: PathMatch, access: Access) -> Route {
        Route {
            matcher: m,
            methods: None,
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
    fn methods_narrow_a_rule() {
        let policy = RoutePolicy::new(vec![Route {
            matcher: PathMatch::Prefix("/".into()),
            methods: Some(vec![Method::OPTIONS]),
            access: Access::Public,
        }]);
        assert!(matches!(policy.access(&Method::OPTIONS, "/x"), Access::Public));
        assert!(matches!(policy.access(&Method::GET, "/x"), Access::Token(_)));
    }
}
