//! The tokengate binary: everything lives in the library (`tokengate::cli`).

fn main() -> std::process::ExitCode {
    tokengate::cli::main()
}
