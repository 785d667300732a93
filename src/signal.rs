//! The Kubernetes shutdown contract: SIGTERM (or SIGINT) starts a drain.

/// Completes on the first SIGTERM or SIGINT and returns its name.
pub async fn shutdown() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers the process can still be killed; never drain.
        tracing::error!("cannot install SIGTERM/SIGINT handlers; graceful shutdown is unavailable");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
