//! Reliability: Docket under the failures a deployment meets, on both backends where the failure
//! exists on both.
//!
//! - [`kills`]: SIGKILL at random points, repeated, while projections are updated (`docket
//!   serve` catching up, `docket projections rebuild`) and while `docket backup` writes. After
//!   each kill: every acknowledged command is in the log, the log verifies, the read models equal
//!   a fresh rebuild, and no partial archive is ever restored.
//! - [`database_away`]: PostgreSQL reached through a proxy the test cuts and restores: requests
//!   fail with a typed error in bounded time and `/readyz` says not ready; afterwards Docket
//!   recovers without a restart and nothing acknowledged is lost.
//! - [`disk_full`]: the SQLite data directory on a small tmpfs that fills up.
//! - [`corruption`]: bytes of the SQLite database file changed where events are stored.
//!
//! The random points come from [`crate::support::Seeded`]: a failing run prints its seed, and
//! `DOCKET_TEST_SEED=<seed>` repeats it.

mod corruption;
mod database_away;
mod disk_full;
mod kills;

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long any one `docket` command of these tests may run.
pub(crate) const COMMAND_BOUND: Duration = Duration::from_secs(120);

/// A free port on 127.0.0.1 (free when asked; a test that binds it later may still lose it).
pub(crate) fn free_address() -> SocketAddr {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Runs a `docket` command to its end, with a bound on how long it may take.
pub(crate) fn run_bounded(mut command: Command, bound: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docket starts");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("child state").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "docket ran for more than {bound:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILLs a child and reaps it.
pub(crate) fn kill(child: &mut Child) {
    // The child may have finished by itself just before: that is a valid point too.
    let _ = child.kill();
    child.wait().expect("reaped");
}

/// Asserts that a finished `docket` command neither panicked nor claimed success.
pub(crate) fn assert_failed_cleanly(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{what} must fail: {stderr}");
    assert!(
        matches!(output.status.code(), Some(1 | 2)),
        "{what} exits 1 or 2, not {:?}: {stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{what} panicked: {stderr}");
}
