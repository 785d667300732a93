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

/// One message per SIGHUP, for [`crate::App::run_with_reloads`]. A burst of
/// signals while a reload runs collapses into one more reload.
pub fn hangups() -> tokio::sync::mpsc::Receiver<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!(signal = "SIGHUP", "reload requested");
                    if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = tx.try_send(()) {
                        return;
                    }
                }
            });
        }
        Err(_) => tracing::error!("cannot install the SIGHUP handler; reload by changing the config file instead"),
    }
    rx
}
