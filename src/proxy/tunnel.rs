//! The tunnel after a protocol switch (WebSocket): bytes both ways until
//! either side closes, the tunnel sits idle for `limits.tunnel_idle_timeout`,
//! or the drain deadline cuts it. It holds its connection's slot throughout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::server::Lease;

/// Runs the tunnel between the client's and the app's upgraded connections.
pub async fn run(client: OnUpgrade, upstream: OnUpgrade, lease: Lease, idle_timeout: Duration) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "protocol upgrade failed");
            return;
        }
    };
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut client = Watched::new(TokioIo::new(client), started, last.clone());
    let mut upstream = Watched::new(TokioIo::new(upstream), started, last.clone());
    tokio::select! {
        // Either side closing ends the tunnel; errors are ordinary disconnects.
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = lease.cut() => tracing::debug!("drain deadline; tunnel cut"),
        _ = idle(started, &last, idle_timeout) => tracing::debug!(timeout = ?idle_timeout, "tunnel idle; closed"),
    }
}

/// Completes once no byte has moved for `timeout`.
async fn idle(started: Instant, last: &AtomicU64, timeout: Duration) {
    loop {
        let at = started + Duration::from_millis(last.load(Ordering::Relaxed)) + timeout;
        if Instant::now() >= at {
            return;
        }
        tokio::time::sleep_until(at.into()).await;
    }
}

/// An I/O object that records when it last read a byte.
struct Watched<T> {
    inner: T,
    started: Instant,
    /// Milliseconds after `started` of the last read, shared by both sides.
    last: Arc<AtomicU64>,
}

impl<T> Watched<T> {
    fn new(inner: T, started: Instant, last: Arc<AtomicU64>) -> Self {
        Watched { inner, started, last }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last.store(ms, Ordering::Relaxed);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
