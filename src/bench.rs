//! `docket bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}
pub async fn run(_s: &crate::config::Settings, _a: BenchArgs) -> std::process::ExitCode { std::process::ExitCode::SUCCESS }
