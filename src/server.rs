//! The accept loop shared by the proxy and admin listeners: optional rustls
//! handshake under a timeout, hyper-util's auto builder (HTTP/1.1 and HTTP/2
//! on one port), a connection cap, idle closing, and a bounded drain.
//!
//! Connections are watched by hand rather than with `GracefulShutdown::watch`
//! because the same select loop also closes idle connections, which
//! GracefulShutdown cannot do.
//!
//! A connection's slot is a [`Lease`]: the connection cap's permit and the
//! open-connections gauge. A protocol upgrade (WebSocket) hands the socket
//! from hyper to a tunnel task, which takes the lease with it, so a tunnel
//! counts against `max_connections`, shows in the gauge, and is waited for
//! (then cut) by the drain like any connection.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus::IntGauge;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::Limits;

type BoxError = Box<dyn StdError + Send + Sync>;

/// What one listener serves and under which bounds.
pub struct Listener<F> {
    /// The bound socket; closed as soon as shutdown begins.
    pub socket: TcpListener,
    /// Present for HTTPS listeners.
    pub tls: Option<TlsAcceptor>,
    /// Header, idle, handshake and connection limits.
    pub limits: Limits,
    /// Builds the service for one connection from the peer, whether it is
    /// TLS, and the connection's lease (for tunnels that outlive hyper's part).
    pub new_service: F,
    /// How long in-flight requests may take once shutdown begins.
    pub drain_timeout: Duration,
    /// Open-connection gauge, when this listener is metered.
    pub connections: Option<IntGauge>,
}

/// Registers `tokengate_connections_open` on `registry`: the gauge a metered
/// listener moves.
pub fn connections_gauge(registry: &prometheus::Registry) -> Result<IntGauge, prometheus::Error> {
    let gauge = IntGauge::new(
        "tokengate_connections_open",
        "Client connections currently open on the proxy listener.",
    )?;
    registry.register(Box::new(gauge.clone()))?;
    Ok(gauge)
}

/// One connection's slot: held by the connection task and by any tunnel the
/// connection turned into; the slot frees when the last holder drops it.
#[derive(Clone)]
pub struct Lease(Arc<LeaseInner>);

struct LeaseInner {
    _permit: OwnedSemaphorePermit,
    gauge: Option<IntGauge>,
    /// Turns true at the drain deadline: tunnels end then.
    cut: watch::Receiver<bool>,
}

impl Drop for LeaseInner {
    fn drop(&mut self) {
        if let Some(g) = &self.gauge {
            g.dec();
        }
    }
}

impl Lease {
    fn new(permit: OwnedSemaphorePermit, gauge: Option<IntGauge>, cut: watch::Receiver<bool>) -> Lease {
        if let Some(g) = &gauge {
            g.inc();
        }
        Lease(Arc::new(LeaseInner {
            _permit: permit,
            gauge,
            cut,
        }))
    }

    /// Completes when the drain deadline passes and long-lived work on this
    /// connection (a tunnel) must end.
    pub async fn cut(&self) {
        let mut cut = self.0.cut.clone();
        let _ = cut.wait_for(|c| *c).await;
    }
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Connections still open at the drain deadline, then cut.
    pub aborted: usize,
}

/// Serves until `shutdown` completes, then stops accepting (closing the
/// port), asks every connection to finish gracefully, and waits at most
/// `drain_timeout` before cutting the rest.
pub async fn serve<F, S, B>(listener: Listener<F>, shutdown: impl Future<Output = ()>) -> Drained
where
    F: Fn(SocketAddr, bool, Lease) -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let Listener {
        socket,
        tls,
        limits,
        new_service,
        drain_timeout,
        connections,
    } = listener;
    let builder = Arc::new(http_builder(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (drain_tx, drain_rx) = watch::channel(false);
    let (cut_tx, cut_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        // Waiting for a permit before accepting leaves excess clients in the
        // kernel's accept queue instead of spending memory on them.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = socket.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let lease = Lease::new(permit, connections.clone(), cut_rx.clone());
        let service = new_service(peer, tls.is_some(), lease.clone());
        let conn = Conn {
            builder: builder.clone(),
            idle_timeout: limits.idle_timeout,
            first_request_timeout: limits.header_read_timeout,
            drain: drain_rx.clone(),
        };
        let tls = tls.clone();
        let handshake_timeout = limits.tls_handshake_timeout;
        tasks.spawn(async move {
            let _lease = lease;
            serve_stream(stream, tls, handshake_timeout, conn, service).await;
        });
    }

    drop(socket);
    let _ = drain_tx.send(true);
    while tasks.try_join_next().is_some() {}
    // Every slot not back in the semaphore is an open connection or tunnel.
    let open = limits.max_connections - permits.available_permits();
    if open > 0 {
        tracing::info!(connections = open, timeout = ?drain_timeout, "draining connections");
    }
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let finished = tokio::time::timeout(drain_timeout, async {
        while tasks.join_next().await.is_some() {}
        // Tunnels hold their lease after their connection task ended.
        let _ = permits.acquire_many(all).await;
    })
    .await;
    let aborted = if finished.is_err() {
        let left = limits.max_connections - permits.available_permits();
        tracing::warn!(
            connections = left,
            "drain timeout reached; closing remaining connections"
        );
        let _ = cut_tx.send(true);
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        left
    } else {
        0
    };
    Drained { aborted }
}

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.max_concurrent_streams)
        // Pings find dead peers that would otherwise hold a slot forever.
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    builder
}

struct Conn {
    builder: Arc<auto::Builder<TokioExecutor>>,
    idle_timeout: Duration,
    /// A connection that has not started a request by then is closed: this
    /// covers the HTTP/1-or-2 detection and a partial HTTP/2 preface, which
    /// hyper's own header timeout does not.
    first_request_timeout: Duration,
    drain: watch::Receiver<bool>,
}

async fn serve_stream<S, B>(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    conn: Conn,
    service: S,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    match tls {
        None => conn.serve(TokioIo::new(stream), service).await,
        Some(acceptor) => match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls_stream)) => conn.serve(TokioIo::new(tls_stream), service).await,
            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        },
    }
}

impl Conn {
    async fn serve<I, S, B>(mut self, io: I, service: S)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        // 0 until the first request starts, then 1 + ms after `started`.
        let last_request = Arc::new(AtomicU64::new(0));
        let tracked = Tracked {
            inner: service,
            started,
            last_request: last_request.clone(),
        };
        let connection = self.builder.serve_connection_with_upgrades(io, tracked);
        tokio::pin!(connection);
        let idle = tokio::time::sleep(self.idle_timeout);
        tokio::pin!(idle);
        let first = tokio::time::sleep(self.first_request_timeout);
        tokio::pin!(first);
        let mut waiting_first = true;
        let mut closing = *self.drain.borrow_and_update();
        if closing {
            connection.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = &mut first, if waiting_first => {
                    waiting_first = false;
                    if last_request.load(Ordering::Relaxed) == 0 {
                        tracing::debug!(timeout = ?self.first_request_timeout, "no request started; closing");
                        break;
                    }
                }
                _ = self.drain.changed(), if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                _ = &mut idle, if !closing => {
                    let ms = last_request.load(Ordering::Relaxed).saturating_sub(1);
                    let last = started + Duration::from_millis(ms);
                    if last.elapsed() >= self.idle_timeout {
                        // Graceful: a response still streaming completes first.
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    } else {
                        idle.as_mut().reset((last + self.idle_timeout).into());
                    }
                }
            }
        }
    }
}

/// Records when the connection last started a request, for idle closing.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    started: Instant,
    /// 1 + milliseconds after `started` at which the last request began;
    /// 0 while none has.
    last_request: Arc<AtomicU64>,
}

impl<S, R> Service<R> for Tracked<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: R) -> Self::Future {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_request.store(ms + 1, Ordering::Relaxed);
        self.inner.call(req)
    }
}
