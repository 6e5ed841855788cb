//! The `docket` binary.

fn main() -> std::process::ExitCode {
    docket::cli::run()
}
