//! The `docket` binary.

/// jemalloc, on Linux: see the comment on the dependency in Cargo.toml.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    docket::cli::run()
}
