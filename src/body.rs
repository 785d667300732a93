//! Reading the small request bodies tokengate answers itself (session
//! endpoints, the back-channel logout receiver, the admin `revoke`): bounded
//! in size and in time. Once a request head is complete no connection
//! timeout applies, so without the time bound a client announcing a body
//! and never sending it would hold its connection (and a slot of
//! `max_connections`) for ever.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

/// How long a body of a few kilobytes may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Longer than the limit (413).
    #[error("request body too large")]
    TooLarge,
    /// Not complete within [`BODY_TIMEOUT`] (408).
    #[error("request body not received in time")]
    Timeout,
    /// The connection failed or the framing was bad (400).
    #[error("request body unreadable")]
    Broken,
}

impl BodyError {
    /// The status to answer with.
    pub fn status(self) -> http::StatusCode {
        match self {
            BodyError::TooLarge => http::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout => http::StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// The whole of `body`, at most `max` bytes, within [`BODY_TIMEOUT`].
pub async fn read<B>(body: B, max: usize) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, max).collect()).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Broken),
    }
}
