//! `tokengate run` and `tokengate check-config`.
use std::path::Path;
use std::process::ExitCode;

use super::{EXIT_CONFIG, config_failure, load};
use crate::app::{App, Listeners};
use crate::config::Config;

pub(super) async fn run(path: Option<&Path>) -> ExitCode {
    if path.is_none() {
        // Nothing to proxy to on a fresh machine: the embedded config serves
        // the built-in echo app and prints tokens to try, as `demo` does.
        let embedded = match load(None) {
            Ok(c) => c,
            Err(e) => return config_failure(&e),
        };
        return super::demo::demo(embedded.listen, embedded.admin.listen).await;
    }
    let config = match load(path) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let origin = config.origin.clone();
    let listeners = match Listeners::bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(config = %origin, version = env!("CARGO_PKG_VERSION"), "starting");
    let shutdown = async {
        let signal = crate::signal::shutdown().await;
        tracing::info!(signal, "shutdown signal received");
    };
    match serve(config, listeners, shutdown).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "failed");
            ExitCode::FAILURE
        }
    }
}

/// Builds the app, reloads it on SIGHUP, and serves until `shutdown`.
pub(super) async fn serve(
    config: Config,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), crate::app::RunError> {
    App::new(config)?
        .run_with_reloads(listeners, shutdown, Some(crate::signal::hangups()))
        .await
}

pub(super) fn check_config(path: Option<&Path>) -> ExitCode {
    let Some(path) = path else {
        eprintln!("tokengate check-config: give a FILE (or --config FILE)");
        return ExitCode::from(2);
    };
    let config = match Config::load_for_check(path) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    for name in &config.unset_env {
        // Secrets usually exist only where the proxy runs; the rest of the
        // file is still checked, with a placeholder standing in.
        println!("note: environment variable `{name}` is not set here; `tokengate run` will need it");
    }
    for note in &config.notes {
        println!("note: {note}");
    }
    let summary = format!(
        "{}: OK (listen {}, admin {}, {} issuer(s), {} key(s), {} route(s), tls {})",
        config.origin,
        config.listen,
        config.admin.listen,
        config.auth.issuers.len(),
        config.auth.issuers.iter().map(|i| i.keys.len()).sum::<usize>(),
        config.routes.len(),
        if config.tls.is_some() { "on" } else { "off" },
    );
    // Building the app catches what only assembly can (a TLS key that does
    // not match its certificate) without binding anything.
    match App::new(config) {
        Ok(_) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tokengate: invalid configuration\n{}: {e}", path.display());
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
