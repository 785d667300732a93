//! Configuration: the YAML shape (`config/tokengate.yaml` documents it), parsed into raw types that
//! reject unknown fields, then validated into the typed [`Config`] that the
//! rest of the crate reads. Validation collects every problem with its field
//! path and line; it reads the files the config names (keys, certificates) and
//! does nothing else.

mod duration;
mod policy;
mod raw;
mod read;
mod serving;
mod state;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use http::Uri;
use http::uri::Authority;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::keys::Alg;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use duration::{format_duration, parse_duration};
pub use policy::*;
pub use serving::*;
pub use state::*;

/// The development configuration compiled into the binary (`config/dev.yaml`).
pub const EMBEDDED_DEV_CONFIG: &str = include_str!("../../config/dev.yaml");
/// File name of the development HMAC secret that the embedded config names.
pub const EMBEDDED_DEV_SECRET_NAME: &str = "dev-hs256-secret.DEVELOPMENT-ONLY.txt";
const EMBEDDED_DEV_SECRET: &[u8] = include_bytes!("../../config/dev-hs256-secret.DEVELOPMENT-ONLY.txt");

/// A validated configuration: every value here has been checked.
pub struct Config {
    /// Where the proxy listener binds (the pod's public port).
    pub listen: SocketAddr,
    /// The app behind the proxy.
    pub upstream: UpstreamConfig,
    /// Inbound TLS; `None` serves plain HTTP (h1 and h2c).
    pub tls: Option<TlsConfig>,
    /// The admin listener (metrics, health), kept off the proxy port.
    pub admin: AdminConfig,
    /// Bounds that stop slow or greedy clients from pinning resources.
    pub limits: Limits,
    /// One log line per request (allowed ones too), not only per rejection.
    pub access_log: bool,
    /// How ambiguous request spellings (header names, path parameters) are treated.
    pub http: HttpRules,
    /// How SIGTERM drains.
    pub shutdown: ShutdownConfig,
    /// Token sources, issuers and keys, identity headers.
    pub auth: AuthConfig,
    /// Ordered route rules; the first match wins, no match means token required.
    pub routes: Vec<Route>,
    /// Where revocations come from and what happens when that source is stale.
    pub revocation: RevocationConfig,
    /// Token lifecycle service (sessions, refresh, logout), when enabled.
    pub sessions: Option<SessionsConfig>,
    /// The auth listener for ingresses and meshes, when enabled.
    pub decision: Option<DecisionConfig>,
    /// The OIDC back-channel logout receiver, when an issuer sends logout tokens.
    pub backchannel_logout: Option<BackchannelConfig>,
    /// Hot reload: whether and how often the config and key files are watched.
    pub reload: ReloadConfig,
    /// Human-readable origin of this config (a path, or "embedded dev config").
    pub origin: String,
    /// Every file this config read (keys, secrets, certificates), for the watcher.
    pub files: Vec<PathBuf>,
    /// The config file, when it came from one.
    pub path: Option<PathBuf>,
    /// Environment variables the config names that were unset when it was
    /// checked with [`Config::load_for_check`] (placeholders stood in);
    /// always empty for a config that can run.
    pub unset_env: Vec<String>,
    /// Things worth one info line at start and reload, and a `note:` from
    /// `check-config`: keys of a `jwks_file` that were skipped, and why.
    pub notes: Vec<String>,
}

/// True for `localhost` and loopback IP literals: plain http to them never
/// leaves the machine, so keys may be fetched that way.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether environment variables the config names must be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Env {
    /// Running: an unset variable is a problem.
    Required,
    /// Checking: an unset variable is noted, a placeholder stands in.
    MayBeUnset,
}

/// One validation problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted field path, e.g. `auth.issuers[0].keys[1].algorithm`.
    pub path: String,
    /// Line in the YAML source, when the parser recorded one.
    pub line: Option<u64>,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {line}): {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file itself could not be read.
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        /// The config path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not YAML, or YAML of the wrong shape (unknown field, wrong type).
    #[error("{origin}: {message}")]
    Parse {
        /// Where the text came from.
        origin: String,
        /// Every shape error found (or the one syntax error), each with its
        /// field path, the expected form, line, column and a snippet.
        message: String,
    },
    /// Well-formed YAML with invalid values: every problem found.
    #[error("{origin}: {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// Every problem, in document order.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  - {p}\n")).collect()
}

/// Where relative file paths in a config are read from.
#[derive(Debug, Clone, Copy)]
pub enum FileBase<'a> {
    /// Relative to this directory (the config file's own directory).
    Dir(&'a Path),
    /// The embedded dev config: only the embedded dev secret exists.
    Embedded,
}

impl FileBase<'_> {
    /// The path `name` refers to, for files on disk.
    pub fn resolve(&self, name: &str) -> Option<PathBuf> {
        match self {
            FileBase::Dir(dir) => Some(dir.join(name)),
            FileBase::Embedded => None,
        }
    }

    /// Reads `name`, resolving relative paths against this base.
    pub fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        match self {
            FileBase::Dir(dir) => std::fs::read(dir.join(name)),
            FileBase::Embedded if name == EMBEDDED_DEV_SECRET_NAME => Ok(EMBEDDED_DEV_SECRET.to_vec()),
            FileBase::Embedded => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the embedded config can only name embedded files",
            )),
        }
    }
}

impl Config {
    /// Reads and validates the file at `path`; relative paths inside it are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with(path, Env::Required)
    }

    /// Loads `path` for `check-config`: a secret or password that comes
    /// from an unset environment variable (it exists only where the proxy
    /// runs) is noted in [`Config::unset_env`] instead of failing the check.
    pub fn load_for_check(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with(path, Env::MayBeUnset)
    }

    fn load_with(path: &Path, env: Env) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            // Where it was looked for: a relative path means little in a
            // container or a unit file whose working directory is unknown.
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut config = Self::parse(&text, FileBase::Dir(dir), &path.display().to_string(), env)?;
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// The development configuration compiled into the binary.
    pub fn embedded_dev() -> Result<Config, ConfigError> {
        Self::from_yaml_str(EMBEDDED_DEV_CONFIG, FileBase::Embedded, "embedded dev config")
    }

    /// Parses and validates YAML text; `origin` names it in errors.
    pub fn from_yaml_str(text: &str, files: FileBase<'_>, origin: &str) -> Result<Config, ConfigError> {
        Self::parse(text, files, origin, Env::Required)
    }

    fn parse(text: &str, files: FileBase<'_>, origin: &str, env: Env) -> Result<Config, ConfigError> {
        let raw = read::read(text, origin).map_err(|messages| ConfigError::Parse {
            origin: origin.to_owned(),
            message: match messages.as_slice() {
                [one] => one.clone(),
                many => format!(
                    "{} shape errors:\n{}",
                    many.len(),
                    many.iter().map(|m| format!("- {m}")).collect::<Vec<_>>().join("\n")
                ),
            },
        })?;
        validate::validate(raw, files, env)
            .map_err(|problems| ConfigError::Invalid {
                origin: origin.to_owned(),
                problems,
            })
            .map(|mut config| {
                config.origin = origin.to_owned();
                config
            })
    }

    /// The issuer whose `iss` equals `iss`.
    pub fn issuer(&self, iss: &str) -> Option<&Issuer> {
        self.auth.issuers.iter().find(|i| i.issuer == iss)
    }
}
