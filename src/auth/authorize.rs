//! Authorization: does a verified identity meet a route's requirements?

use serde_json::Value;

use super::claims::Claims;
use crate::config::Requirements;

/// Why a valid token is not allowed on a route (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forbidden {
    /// A required scope is missing from `scope`/`scp`.
    #[error("missing required scope")]
    MissingScope,
    /// A required claim is absent or has another value.
    #[error("required claim not satisfied")]
    ClaimMismatch,
}

/// Checks every requirement; scopes first, then claims.
pub fn authorize(requirements: &Requirements, claims: &Claims) -> Result<(), Forbidden> {
    for needed in &requirements.scopes {
        if !claims.scopes().any(|s| s == needed) {
            return Err(Forbidden::MissingScope);
        }
    }
    for (name, expected) in &requirements.claims {
        let ok = match claims.get(name) {
            Some(Value::Array(items)) => items.contains(expected),
            Some(v) => v == expected,
            None => false,
        };
        if !ok {
            return Err(Forbidden::ClaimMismatch);
        }
    }
    Ok(())
}
