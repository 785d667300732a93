//! `tokengate token mint` and `tokengate token inspect`.
use std::path::Path;
use std::process::ExitCode;

use super::mint::MintOptions;
use super::{config_failure, load};
use crate::clock::unix_now;
use crate::config::Config;

pub(super) fn inspect(config: Option<&Path>, token: &str, path: Option<&str>, method: &str) -> ExitCode {
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
    super::inspect::inspect(&token, config.as_ref(), path.map(|p| (method, p)))
}

pub(super) fn mint(path: Option<&Path>, options: MintOptions, count: u32) -> ExitCode {
    use std::io::Write;
    let config = match load(path) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let now = unix_now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..count {
        match super::mint::mint(&config.auth, &options, now) {
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
