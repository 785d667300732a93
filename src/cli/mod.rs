//! The command line: `run` (default), `check-config`, `token mint`, `demo`.
//! Exit codes: 0 success, 64 invalid configuration, 1 any other failure.

mod demo;
mod echo;
mod inspect;
mod mint;
mod revoke;
mod serve;
mod token;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use self::mint::MintOptions;
use crate::clock::unix_now;
use crate::config::{Config, ConfigError, parse_duration};
use crate::revocation::Revocation;

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
                serve::run(config_path.as_deref()).await
            }
            Command::CheckConfig { file } => serve::check_config(file.as_deref().or(config_path.as_deref())),
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
            } => token::mint(
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
            } => token::inspect(config_path.as_deref(), &token, path.as_deref(), &method),
            Command::Demo { .. } if config_path.is_some() => {
                eprintln!(
                    "tokengate demo runs the embedded development config; to serve a file, use `tokengate run --config FILE`"
                );
                ExitCode::from(2)
            }
            Command::Demo { listen, admin_listen } => {
                log_runtime();
                demo::demo(listen, admin_listen).await
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
                revoke::revoke(config_path.as_deref(), revocation).await
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

pub(super) fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        // Only serving warns about the embedded config (`demo`): `token
        // mint` and `revoke` on it are development by definition.
        None => Config::embedded_dev(),
    }
}

pub(super) fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("tokengate: invalid configuration\n{e}");
    ExitCode::from(EXIT_CONFIG)
}
