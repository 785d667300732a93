//! The upstream: HTTP/1.1 connections to the one app beside us, kept in a
//! plain stack of idle connections.
//!
//! Why not hyper-util's pooled client: it serves any number of hosts through
//! a map keyed by scheme and authority, hashed twice a request, with its
//! checkout and return machinery; callgrind counted ~8,500 instructions a
//! request in it, a sixth of the request path (docs/benchmarks.md). One
//! upstream needs only a stack: take the most recently used connection that
//! can take a request, or open one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::UpstreamConfig;

/// Why the upstream exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Refused, unreachable, or the connect timed out (502).
    #[error("cannot connect to upstream: {0}")]
    Connect(#[source] std::io::Error),
    /// No response head within the request timeout (504).
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// Reset, closed early, or spoke broken HTTP (502).
    #[error("upstream exchange failed: {0}")]
    Reset(#[source] hyper::Error),
}

/// The upstream and its idle connections.
pub struct Upstream {
    authority: Authority,
    host: HeaderValue,
    connect_timeout: Duration,
    request_timeout: Duration,
    pool: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
}

struct Idle {
    sender: SendRequest<Incoming>,
    since: Instant,
}

impl Upstream {
    /// The upstream of `config`; connects lazily.
    pub fn new(config: &UpstreamConfig) -> Self {
        Upstream {
            host: HeaderValue::from_str(config.authority.as_str()).unwrap_or(HeaderValue::from_static("localhost")),
            authority: config.authority.clone(),
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            pool: Mutex::new(Vec::new()),
            max_idle: config.pool_max_idle,
            idle_timeout: config.pool_idle_timeout,
        }
    }

    /// `host:port` requests are sent to.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Sends `req` (origin-form URI) and waits for the response head; the
    /// bodies stream afterwards, both ways.
    pub async fn send(&self, mut req: Request<Incoming>) -> Result<Response<Incoming>, UpstreamError> {
        if !req.headers().contains_key(http::header::HOST) {
            req.headers_mut().insert(http::header::HOST, self.host.clone());
        }
        match tokio::time::timeout(self.request_timeout, self.exchange(req)).await {
            Err(_) => Err(UpstreamError::Timeout(self.request_timeout)),
            Ok(result) => result,
        }
    }

    async fn exchange(&self, req: Request<Incoming>) -> Result<Response<Incoming>, UpstreamError> {
        let (mut sender, reused) = match self.checkout() {
            Some(sender) => (sender, true),
            None => (self.connect().await?, false),
        };
        let result = match sender.try_send_request(req).await {
            Ok(response) => Ok(response),
            // An idle connection the app closed just as we took it: the
            // request was never written, so it is safe to send it once more
            // on a fresh connection.
            Err(mut e) if reused && e.message().is_some() => {
                let req = e.take_message().ok_or_else(|| UpstreamError::Reset(e.into_error()))?;
                sender = self.connect().await?;
                sender.send_request(req).await.map_err(UpstreamError::Reset)
            }
            Err(e) => Err(UpstreamError::Reset(e.into_error())),
        };
        if result.is_ok() {
            // Back on the stack now; it takes the next request once this
            // response's body has been read (`is_ready` says when).
            self.checkin(sender);
        }
        result
    }

    /// The most recently used connection ready for a request; drops closed
    /// and long-idle ones on the way.
    fn checkout(&self) -> Option<SendRequest<Incoming>> {
        let now = Instant::now();
        let mut idle = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|c| !c.sender.is_closed() && now.duration_since(c.since) < self.idle_timeout);
        let at = idle.iter().rposition(|c| c.sender.is_ready())?;
        Some(idle.swap_remove(at).sender)
    }

    fn checkin(&self, sender: SendRequest<Incoming>) {
        let mut idle = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
        // Beyond the cap the sender is dropped: its connection finishes the
        // response in flight and closes.
    }

    async fn connect(&self) -> Result<SendRequest<Incoming>, UpstreamError> {
        let connect = async {
            let stream = TcpStream::connect(self.authority.as_str()).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(async move {
                // Ends when the app closes the connection or every sender is
                // dropped; errors here are ordinary disconnects.
                if let Err(e) = conn.with_upgrades().await {
                    tracing::debug!(error = %e, "upstream connection ended");
                }
            });
            Ok::<_, std::io::Error>(sender)
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(result) => result.map_err(UpstreamError::Connect),
            Err(_) => Err(UpstreamError::Connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connect timed out after {:?}", self.connect_timeout),
            ))),
        }
    }
}
