//! The server under soak: `docket serve` in a process of its own, started from the same binary
//! on the data directory the soak prepared, so that the memory measured is the serving
//! process's alone (not the load's).
//!
//! The child gets no `DOCKET_*` variable of the benchmark's environment (they could turn on
//! TLS, NATS or backups), only the data directory, the database URL for PostgreSQL (in its
//! environment, never on its command line), warnings-only logging, and webhook egress to
//! plain HTTP on 127.0.0.1, where the soak's receiver listens.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::super::http::Connection;
use crate::store::StoreError;

/// How long the server may take to answer `/readyz`.
const START_TIMEOUT: Duration = Duration::from_secs(120);

fn failed(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Database {
        detail: format!("the server under soak: {detail}"),
    }
}

/// A running `docket serve`.
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
}

impl ServerProcess {
    /// Starts `docket serve` on `address` over `data_dir` and waits until it is ready.
    pub async fn start(
        data_dir: &Path,
        database_url: Option<&str>,
        address: SocketAddr,
    ) -> Result<Self, StoreError> {
        let program = std::env::current_exe().map_err(failed)?;
        let mut command = Command::new(program);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("DOCKET_") {
                command.env_remove(name);
            }
        }
        if let Some(url) = database_url {
            command.env("DOCKET_DATABASE_URL", url);
        }
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--log", "warn", "serve", "--listen"])
            .arg(address.to_string())
            .args([
                "--webhook-allow-http",
                "--webhook-allow-cidr",
                "127.0.0.1/32",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(failed)?;
        let pid = child.id().ok_or_else(|| failed("exited at once"))?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().map_err(failed)? {
                return Err(failed(format!("exited during start-up ({status})")));
            }
            if ready(address).await {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.start_kill();
                return Err(failed("not ready after two minutes"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(ServerProcess { child, pid })
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process (SIGKILL: nothing it holds needs a clean shutdown for the soak).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn ready(address: SocketAddr) -> bool {
    match Connection::open(address).await {
        Ok(mut connection) => connection
            .get("/readyz")
            .await
            .is_ok_and(|reply| reply.status == 200),
        Err(_) => false,
    }
}
