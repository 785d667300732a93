//! Signals: SIGTERM (or SIGINT) starts a drain (the Kubernetes shutdown
//! contract); SIGHUP reloads the configuration.

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

/// Calls `reload` on every SIGHUP, until the process ends.
pub async fn on_hangup<F, Fut>(mut reload: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler; reload by changing the config file instead");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!(signal = "SIGHUP", "reload requested");
        reload().await;
    }
}
