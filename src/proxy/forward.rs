//! The upstream: HTTP/1.1 connections to the one app beside us, kept in a
//! plain stack of idle connections.
//!
//! Why not hyper-util's pooled client: it serves any number of hosts through
//! a map keyed by scheme and authority, hashed twice a request, with its
//! checkout and return machinery; callgrind counted ~8,500 instructions a
//! request in it, a sixth of the request path (docs/benchmarks.md). One
//! upstream needs only a stack: take the most recently used connection that
//! can take a request, or open one.
//!
//! A keep-alive connection the app closes just as a request goes out loses
//! that request. GET, HEAD and OPTIONS requests without a body are resent
//! once on a fresh connection when the app gave no answer at all (as nginx
//! and Go's client do); other requests never are, since the app may have
//! acted on them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{Either, Empty};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

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
    /// Switched protocols (101) to one the client did not ask for (502).
    #[error("upstream switched to a protocol nobody asked for")]
    Protocol,
    /// The client's body failed while it was being sent: malformed chunked
    /// encoding, or cut short. The client's fault, not the app's (400).
    #[error("client body failed: {0}")]
    ClientBody(#[source] hyper::Error),
}

/// What is sent upstream: the client's streamed body, or none (a resend).
type UpstreamBody = Either<Incoming, Empty<Bytes>>;

/// What a resend needs of a bodiless request.
struct Head {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Head {
    fn request(self) -> Request<UpstreamBody> {
        let mut req = Request::new(Either::Right(Empty::new()));
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.headers_mut() = self.headers;
        req
    }
}

/// Whether the app can have answered nothing before `e`: a connection
/// closed or reset under the request, not a response it sent.
fn unanswered(e: &hyper::Error) -> bool {
    !(e.is_parse() || e.is_parse_status() || e.is_user() || e.is_timeout())
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
    /// One permit per connection that may be open to the app
    /// (`upstream.max_connections`); a connection's task holds its permit.
    slots: Arc<Semaphore>,
    /// Signalled when a connection goes back on the stack.
    returned: Notify,
}

struct Idle {
    sender: SendRequest<UpstreamBody>,
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
            slots: Arc::new(Semaphore::new(config.max_connections)),
            returned: Notify::new(),
        }
    }

    /// A connection for the next request: an idle one, a new one while under
    /// the cap, or (at the cap) the first one to come free.
    async fn sender(&self) -> Result<(SendRequest<UpstreamBody>, bool), UpstreamError> {
        loop {
            if let Some(sender) = self.checkout() {
                return Ok((sender, true));
            }
            if let Ok(slot) = self.slots.clone().try_acquire_owned() {
                return Ok((self.connect(slot).await?, false));
            }
            // At the cap: wait for a pooled connection still busy with its
            // response, or for any connection to return or close.
            if let Some(mut busy) = self.take_busy() {
                if busy.ready().await.is_ok() {
                    return Ok((busy, true));
                }
                continue;
            }
            tokio::select! {
                _ = self.returned.notified() => {}
                slot = self.slots.clone().acquire_owned() => {
                    let slot = slot.map_err(|_| UpstreamError::Connect(std::io::Error::other("upstream closed")))?;
                    return Ok((self.connect(slot).await?, false));
                }
            }
        }
    }

    /// A new connection, waiting for a slot if the cap is reached (a resend
    /// after the connection it was on died, which frees that slot).
    async fn fresh(&self) -> Result<SendRequest<UpstreamBody>, UpstreamError> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| UpstreamError::Connect(std::io::Error::other("upstream closed")))?;
        self.connect(slot).await
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
        let (mut sender, reused) = self.sender().await?;
        // Kept only where a resend may be needed: a reused connection and a
        // request the app may safely get twice.
        let resend = (reused
            && matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
            && req.body().is_end_stream())
        .then(|| Head {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
        });
        let result = match sender.try_send_request(req.map(Either::Left)).await {
            Ok(response) => Ok(response),
            // An idle connection the app closed just as we took it: the
            // request was never written, so it is safe to send it once more
            // on a fresh connection.
            Err(mut e) if reused && e.message().is_some() => {
                let req = e.take_message().ok_or_else(|| UpstreamError::Reset(e.into_error()))?;
                sender = self.fresh().await?;
                sender.send_request(req).await.map_err(classify)
            }
            Err(e) => {
                let e = e.into_error();
                match resend {
                    Some(head) if unanswered(&e) => {
                        tracing::debug!(error = %e, "reused upstream connection lost an idempotent request; resending");
                        sender = self.fresh().await?;
                        sender.send_request(head.request()).await.map_err(classify)
                    }
                    _ => Err(classify(e)),
                }
            }
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
    fn checkout(&self) -> Option<SendRequest<UpstreamBody>> {
        let now = Instant::now();
        let mut idle = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|c| !c.sender.is_closed() && now.duration_since(c.since) < self.idle_timeout);
        let at = idle.iter().rposition(|c| c.sender.is_ready())?;
        Some(idle.swap_remove(at).sender)
    }

    /// A pooled connection that is open but still busy (its last response
    /// is streaming), for a request that has to wait at the cap.
    fn take_busy(&self) -> Option<SendRequest<UpstreamBody>> {
        let mut idle = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|c| !c.sender.is_closed());
        idle.pop().map(|c| c.sender)
    }

    fn checkin(&self, sender: SendRequest<UpstreamBody>) {
        let mut idle = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
            drop(idle);
            self.returned.notify_one();
        }
        // Beyond the cap the sender is dropped: its connection finishes the
        // response in flight and closes.
    }

    async fn connect(&self, slot: OwnedSemaphorePermit) -> Result<SendRequest<UpstreamBody>, UpstreamError> {
        let connect = async {
            let stream = TcpStream::connect(self.authority.as_str()).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(async move {
                // The slot is free again once the connection ends.
                let _slot = slot;
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

/// The client's body failing is the client's fault; anything else the app's.
fn classify(e: hyper::Error) -> UpstreamError {
    if e.is_user() {
        UpstreamError::ClientBody(e)
    } else {
        UpstreamError::Reset(e)
    }
}
