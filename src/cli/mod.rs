//! The command line: `run` (default), `check-config`, `token mint`, `demo`.
//! Exit codes: 0 success, 64 invalid configuration, 1 any other failure.

mod inspect;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::app::{App, Listeners};
use crate::clock::unix_now;
use crate::config::RevocationBackend;
use crate::config::{Config, ConfigError, parse_duration};
use crate::mint::{MintOptions, mint};
use crate::revocation::{Revocation, Revocations};

/// Exit code for a configuration that does not validate (as linkerd does).
pub const EXIT_CONFIG: u8 = 64;

#[derive(Parser, Debug)]
#[command(
    name = "tokengate",
    version,
    about = "Sidecar authentication reverse proxy: verifies JWTs and forwards authorized traffic"
)]
struct Cli {
    /// Configuration file; without it, the embedded development config.
    #[arg(long, short, env = "TOKENGATE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "TOKENGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Worker threads (default: one per CPU this process may use; with one,
    /// the current-thread scheduler).
    #[arg(long, env = "TOKENGATE_THREADS", global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve (the default when no command is given).
    Run,
    /// Validate a configuration file, listing every problem; serves nothing.
    CheckConfig {
        /// The file to check (default: --config).
        file: Option<PathBuf>,
    },
    /// Revoke a token (--jti ID --exp UNIX), a session (--sid ID --exp UNIX) or a
    /// subject (--sub S [--before UNIX]): through the Lua script for the redis
    /// backend, through the admin port (loopback) for the memory backend.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["jti", "sid", "sub"])))]
    Revoke {
        /// The token's jti.
        #[arg(long, conflicts_with_all = ["sub", "before", "sid"], requires = "exp")]
        jti: Option<String>,
        /// A session id (`sid` claim): every token of the session.
        #[arg(long, conflicts_with_all = ["sub", "before"], requires = "exp")]
        sid: Option<String>,
        /// The token's (or the session's last token's) exp, unix seconds: the entry lives until then.
        #[arg(long)]
        exp: Option<i64>,
        /// The subject to log out everywhere.
        #[arg(long)]
        sub: Option<String>,
        /// Cut-off: tokens with iat at or before it are refused (default now).
        #[arg(long, requires = "sub")]
        before: Option<i64>,
    },
    /// Development tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Proxy + built-in echo app + memory backend, with curl lines to try
    /// (what `run` does without a config).
    Demo {
        /// Proxy address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Admin address.
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin_listen: SocketAddr,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Print a token signed with a configured key (secret or private_key_file).
    Mint {
        /// `sub` claim.
        #[arg(long)]
        sub: String,
        /// Lifetime, e.g. 5m or 1h.
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        ttl: Duration,
        /// `scope` claim, space-separated.
        #[arg(long)]
        scope: Option<String>,
        /// Extra claim NAME=VALUE (a string), repeatable.
        #[arg(long = "claim", value_parser = parse_claim)]
        claims: Vec<(String, String)>,
        /// Sign with this key id.
        #[arg(long)]
        kid: Option<String>,
        /// Print this many tokens, one per line, each with its own jti
        /// (load tests that must defeat the verified-token cache).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        count: u32,
    },
    /// Show a token's header and claims; with --config, whether the proxy
    /// would accept it and, if not, why; with --path, what the route asks.
    Inspect {
        /// The token (`-` reads it from standard input).
        token: String,
        /// A request path to judge the token against (needs --config).
        #[arg(long)]
        path: Option<String>,
        /// The request method for --path.
        #[arg(long, default_value = "GET")]
        method: String,
    },
}

fn parse_claim(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

/// Parses arguments, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    // Before any config is read: validation derives public keys, which needs
    // a provider if feature unification ever enables a second one.
    crate::install_crypto_providers();
    // One thread: the current-thread scheduler (no work-stealing queues, no
    // cross-thread wake-ups). Cheaper per request for a sidecar pinned to
    // one core: it measured ~40% less CPU per request than the multi-thread
    // scheduler with one worker (docs/benchmarks.md, issue 6). Without
    // --threads, the CPUs this process may use decide (affinity and cgroup
    // quota, as `available_parallelism` reads them): one means the
    // current-thread scheduler, the common sidecar case.
    let (threads, chosen) = match cli.threads {
        Some(n) => (n.max(1), "--threads"),
        None => (
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            "available CPUs",
        ),
    };
    let mut runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    runtime.enable_all();
    let log_runtime = move || {
        tracing::info!(
            scheduler = if threads == 1 { "current-thread" } else { "multi-thread" },
            workers = threads,
            from = chosen,
            "runtime"
        );
    };
    let runtime = match runtime.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tokengate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config_path = cli.config.clone();
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Run) {
            Command::Run => {
                log_runtime();
                run(config_path.as_deref()).await
            }
            Command::CheckConfig { file } => check_config(file.as_deref().or(config_path.as_deref())),
            Command::Token {
                command:
                    TokenCommand::Mint {
                        sub,
                        ttl,
                        scope,
                        claims,
                        kid,
                        count,
                    },
            } => token_mint(
                config_path.as_deref(),
                MintOptions {
                    subject: sub,
                    ttl,
                    expires_at: None,
                    scope,
                    claims: claims.into_iter().map(|(k, v)| (k, v.into())).collect(),
                    kid,
                },
                count,
            ),
            Command::Token {
                command: TokenCommand::Inspect { token, path, method },
            } => token_inspect(config_path.as_deref(), &token, path.as_deref(), &method),
            Command::Demo { .. } if config_path.is_some() => {
                eprintln!(
                    "tokengate demo runs the embedded development config; to serve a file, use `tokengate run --config FILE`"
                );
                ExitCode::from(2)
            }
            Command::Demo { listen, admin_listen } => {
                log_runtime();
                demo(listen, admin_listen).await
            }
            Command::Revoke {
                jti,
                sid,
                exp,
                sub,
                before,
            } => {
                let revocation = match (jti, sid, exp, sub) {
                    (Some(id), None, Some(exp), None) => Revocation::Jti { id, exp },
                    (None, Some(id), Some(exp), None) => Revocation::Session { id, exp },
                    (None, None, None, Some(id)) => Revocation::Subject {
                        id,
                        before: before.unwrap_or_else(unix_now),
                    },
                    _ => {
                        eprintln!("tokengate revoke: give --jti ID --exp UNIX, --sid ID --exp UNIX, or --sub S");
                        return ExitCode::from(2);
                    }
                };
                revoke(config_path.as_deref(), revocation).await
            }
        }
    })
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOKENGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        // Only serving warns about the embedded config (`demo`): `token
        // mint` and `revoke` on it are development by definition.
        None => Config::embedded_dev(),
    }
}

fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("tokengate: invalid configuration\n{e}");
    ExitCode::from(EXIT_CONFIG)
}

async fn run(path: Option<&Path>) -> ExitCode {
    if path.is_none() {
        // Nothing to proxy to on a fresh machine: the embedded config serves
        // the built-in echo app and prints tokens to try, as `demo` does.
        let embedded = match load(None) {
            Ok(c) => c,
            Err(e) => return config_failure(&e),
        };
        return demo(embedded.listen, embedded.admin.listen).await;
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
async fn serve(
    config: Config,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), crate::app::RunError> {
    App::new(config)?
        .run_with_reloads(listeners, shutdown, Some(crate::signal::hangups()))
        .await
}

fn check_config(path: Option<&Path>) -> ExitCode {
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

fn token_inspect(config: Option<&Path>, token: &str, path: Option<&str>, method: &str) -> ExitCode {
    let token = if token == "-" {
        let mut text = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            eprintln!("tokengate token inspect: cannot read standard input: {e}");
            return ExitCode::from(2);
        }
        text
    } else {
        token.to_owned()
    };
    let config = match config.map(Config::load_for_check).transpose() {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    inspect::inspect(&token, config.as_ref(), path.map(|p| (method, p)))
}

fn token_mint(path: Option<&Path>, options: MintOptions, count: u32) -> ExitCode {
    use std::io::Write;
    let config = match load(path) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let now = unix_now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..count {
        match mint(&config.auth, &options, now) {
            Ok(token) => {
                if writeln!(out, "{token}").is_err() {
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => {
                eprintln!("tokengate token mint: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if out.flush().is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn revoke(path: Option<&Path>, revocation: Revocation) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let result = match &config.revocation.backend {
        RevocationBackend::Redis(_) => match Revocations::new(&config.revocation, config.auth.leeway) {
            Ok(r) => r.revoke(&revocation).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        // The memory mirror lives inside the running process: ask it.
        RevocationBackend::Memory => {
            let mut admin = config.admin.listen;
            if admin.ip().is_unspecified() {
                admin.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            revoke_via_admin(admin, &revocation).await
        }
    };
    match result {
        Ok(seq) => {
            println!("revoked (seq {seq})");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tokengate revoke: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn revoke_via_admin(admin: SocketAddr, revocation: &Revocation) -> Result<u64, String> {
    use http_body_util::BodyExt;
    let body = match revocation {
        Revocation::Jti { id, exp } => serde_json::json!({"jti": id, "exp": exp}),
        Revocation::Subject { id, before } => serde_json::json!({"sub": id, "before": before}),
        Revocation::Session { id, exp } => serde_json::json!({"sid": id, "exp": exp}),
    };
    let stream = tokio::net::TcpStream::connect(admin)
        .await
        .map_err(|e| format!("cannot reach the admin port {admin}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::post("/revoke")
        .header(http::header::HOST, admin.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    if !status.is_success() {
        return Err(format!(
            "admin port answered {status}: {}",
            String::from_utf8_lossy(&bytes).trim()
        ));
    }
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["seq"].as_u64())
        .ok_or_else(|| "unexpected answer from the admin port".to_owned())
}

async fn demo(listen: SocketAddr, admin_listen: SocketAddr) -> ExitCode {
    tracing::warn!("no --config given: running the embedded DEVELOPMENT config (public HS256 secret); never deploy it");
    let mut config = match Config::embedded_dev() {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let echo = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tokengate demo: cannot start the echo app: {e}");
            return ExitCode::FAILURE;
        }
    };
    let echo_addr = echo.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tokio::spawn(crate::echo::serve(echo));
    match echo_addr.parse() {
        Ok(a) => config.upstream.authority = a,
        Err(e) => {
            eprintln!("tokengate demo: echo address {echo_addr}: {e}");
            return ExitCode::FAILURE;
        }
    }
    config.listen = listen;
    config.admin.listen = admin_listen;

    let now = unix_now();
    let user = MintOptions {
        subject: "alice".into(),
        ttl: Duration::from_secs(3600),
        scope: Some("read".into()),
        claims: vec![
            ("email".into(), "alice@example.com".into()),
            ("role".into(), "user".into()),
        ],
        ..MintOptions::default()
    };
    let revocable = MintOptions {
        subject: "carol".into(),
        claims: vec![("jti".into(), "demo-carol-1".into())],
        ..user.clone()
    };
    let admin = MintOptions {
        subject: "bob".into(),
        scope: Some("read admin".into()),
        claims: vec![("role".into(), "admin".into())],
        ..user.clone()
    };
    let expired = MintOptions {
        expires_at: Some(now - 3600),
        claims: vec![("iat".into(), (now - 7200).into())],
        ..user.clone()
    };
    let tokens = [&user, &admin, &expired, &revocable].map(|o| mint(&config.auth, o, now));
    let [Ok(user_token), Ok(admin_token), Ok(expired_token), Ok(carol_token)] = tokens else {
        eprintln!("tokengate demo: cannot mint demo tokens");
        return ExitCode::FAILURE;
    };

    let listeners = match Listeners::bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tokengate demo: {e} (pick other ports with --listen / --admin-listen)");
            return ExitCode::FAILURE;
        }
    };
    let p = listeners.proxy.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let a = listeners.admin.local_addr().map(|a| a.to_string()).unwrap_or_default();
    println!(
        r#"tokengate demo: proxy http://{p}  admin http://{a}  echo app http://{echo_addr}
Paste these into another terminal (Ctrl-C here stops the demo):

# 1. allowed: 200, the echo app shows the X-Auth-* headers tokengate added
curl -s http://{p}/hello -H 'Authorization: Bearer {user_token}'

# 2. no token: 401 with WWW-Authenticate: Bearer realm="tokengate"
curl -si http://{p}/hello

# 3. expired token: 401, error_description="token expired"
curl -si http://{p}/hello -H 'Authorization: Bearer {expired_token}'

# 4. valid token without the admin scope on /admin/: 403 insufficient_scope
curl -si http://{p}/admin/panel -H 'Authorization: Bearer {user_token}'

# 5. admin token on /admin/: 200
curl -s http://{p}/admin/panel -H 'Authorization: Bearer {admin_token}'

# 6. public route, spoofed identity header: 200, and X-Auth-Subject is gone
curl -s http://{p}/public/info -H 'X-Auth-Subject: root'

# 7. revocation: carol's token works, is revoked (admin port, loopback only), then refused with 401
curl -s -o /dev/null -w '%{{http_code}}\n' http://{p}/hello -H 'Authorization: Bearer {carol_token}'
curl -s -X POST http://{a}/revoke -d '{{"jti": "demo-carol-1", "exp": {carol_exp}}}'
curl -si http://{p}/hello -H 'Authorization: Bearer {carol_token}'
#    (the same from a shell: tokengate revoke --jti demo-carol-1 --exp {carol_exp};
#     log alice out everywhere: tokengate revoke --sub alice)

# 8. what happened, by reason
curl -s http://{a}/metrics | grep '^tokengate_requests_total'
"#,
        carol_exp = now + 3600
    );
    let shutdown = async {
        crate::signal::shutdown().await;
    };
    match serve(config, listeners, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokengate demo: {e}");
            ExitCode::FAILURE
        }
    }
}
