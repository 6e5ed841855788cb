//! Test fixtures: a fresh log per test on either backend, and raw SQL access for tampering.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use docket::log::verify::{VerifyFailure, VerifySummary};
use docket::log::{Actor, EventDraft, ExpectedVersion, StreamId};
use docket::store::{AppendRequest, EventLog, LogOptions};
use docket::verification::{VerifyOptions, verify_log};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};
use tempfile::TempDir;

/// Runs an `async fn(Backend)` test once per backend, as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    )*};
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn admin_url() -> String {
    std::env::var("DOCKET_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn database_url(name: &str) -> String {
    let admin = admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// A data directory, and for PostgreSQL a database, that exist only for one test.
pub struct TestLog {
    pub backend: Backend,
    pub dir: TempDir,
    pub database_url: Option<String>,
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

impl TestLog {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(create_database().await),
        };
        TestLog {
            backend,
            dir,
            database_url,
        }
    }

    pub fn options(&self) -> LogOptions {
        let mut options = LogOptions::new(self.dir.path());
        options.database_url = self.database_url.clone();
        options
    }

    pub async fn open(&self) -> EventLog {
        EventLog::open(&self.options()).await.expect("log opens")
    }

    /// Verifies the whole log as `docket verify` does.
    pub async fn verify(&self) -> Result<VerifySummary, VerifyFailure> {
        self.verify_with(VerifyOptions::default()).await
    }

    pub async fn verify_with(
        &self,
        options: VerifyOptions,
    ) -> Result<VerifySummary, VerifyFailure> {
        let store = docket::store::open_existing_store(&self.options())
            .await
            .expect("store opens");
        verify_log(store, options, |_| {})
            .await
            .expect("log is readable")
    }

    /// Runs SQL directly against the database, as someone with file or SQL access would.
    pub async fn execute(&self, statements: &[&str]) {
        match self.backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", self.dir.path().join("docket.db").display());
                let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
                for statement in statements {
                    sqlx::raw_sql(AssertSqlSafe(statement.to_string()))
                        .execute(&mut connection)
                        .await
                        .expect("tampering statement");
                }
            }
            Backend::Postgres => {
                let url = self.database_url.as_deref().expect("postgres url");
                let mut connection = sqlx::PgConnection::connect(url).await.expect("postgres");
                for statement in statements {
                    sqlx::raw_sql(AssertSqlSafe(statement.to_string()))
                        .execute(&mut connection)
                        .await
                        .expect("tampering statement");
                }
            }
        }
    }

    /// Like [`execute`], but returns the database's error instead of failing the test.
    pub async fn try_execute(&self, statement: &str) -> Result<(), String> {
        let result = match self.backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", self.dir.path().join("docket.db").display());
                let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
                sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
                    .execute(&mut connection)
                    .await
                    .map(|_| ())
            }
            Backend::Postgres => {
                let url = self.database_url.as_deref().expect("postgres url");
                let mut connection = sqlx::PgConnection::connect(url).await.expect("postgres");
                sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
                    .execute(&mut connection)
                    .await
                    .map(|_| ())
            }
        };
        result.map_err(|error| error.to_string())
    }

    /// Removes the append-only triggers, the first thing an attacker with SQL access does.
    pub async fn drop_triggers(&self) {
        match self.backend {
            Backend::Sqlite => {
                self.execute(&[
                    "DROP TRIGGER events_refuse_update",
                    "DROP TRIGGER events_refuse_delete",
                ])
                .await
            }
            Backend::Postgres => {
                self.execute(&[
                    "DROP TRIGGER events_refuse_update_delete ON events",
                    "DROP TRIGGER events_refuse_truncate ON events",
                ])
                .await
            }
        }
    }

    /// A byte-string literal in this backend's SQL.
    pub fn bytes_literal(&self, bytes: &[u8]) -> String {
        match self.backend {
            Backend::Sqlite => format!("x'{}'", hex::encode(bytes)),
            Backend::Postgres => format!("'\\x{}'::bytea", hex::encode(bytes)),
        }
    }

    pub fn docket_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(docket_binary());
        command
            .arg("--data-dir")
            .arg(self.dir.path())
            .env_remove("DOCKET_DATABASE_URL");
        if let Some(url) = &self.database_url {
            command.arg("--database-url").arg(url);
        }
        command
    }
}

pub fn docket_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_docket"))
}

/// Creates an empty database named after this process, first dropping those of dead processes.
async fn create_database() -> String {
    let mut admin = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("PostgreSQL must be reachable for the postgres tests (DOCKET_TEST_POSTGRES_URL)");
    let pid = std::process::id();
    if DATABASES.load(Ordering::SeqCst) == 0 {
        let names: Vec<(String,)> =
            sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'docket_t_%'")
                .fetch_all(&mut admin)
                .await
                .expect("list databases");
        for (name,) in names {
            let owner = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
            let alive = owner.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = sqlx::raw_sql(AssertSqlSafe(drop)).execute(&mut admin).await;
            }
        }
    }
    let number = DATABASES.fetch_add(1, Ordering::SeqCst);
    let name = format!("docket_t_{pid}_{number}");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    database_url(&name)
}

/// An append of one event with no version check.
pub fn one_event(stream: &str, event_type: &str, payload: Value) -> AppendRequest {
    AppendRequest::new(
        StreamId::parse(stream).expect("stream id"),
        Actor::parse("user:ada").expect("actor"),
        vec![EventDraft::new(event_type, payload)],
    )
}

/// Fills a log with `count` events spread over a few matters, with a key rotation in the middle.
pub async fn sample_log(log: &EventLog, count: usize) {
    for index in 0..count {
        if index == count / 2 {
            log.rotate_key().await.expect("rotate");
        }
        let stream = format!("matter:{}", index % 3);
        let payload = json!({ "title": format!("Smith v. Jones {index}"), "index": index });
        log.append(one_event(&stream, "matter.noted", payload))
            .await
            .expect("append");
    }
}

pub fn exactly(version: u64) -> ExpectedVersion {
    ExpectedVersion::Exactly(version)
}

/// A fresh log with its read models, projector and service: [`docket::app::Docket`] over a
/// [`TestLog`].
pub struct TestDocket {
    pub test: TestLog,
    pub docket: docket::app::Docket,
}

impl TestDocket {
    /// Opens with a read-your-writes wait of zero: commands return at once and the test moves
    /// the read models itself (`catch_up`, `step`).
    pub async fn new(backend: Backend) -> Self {
        Self::with_wait(backend, std::time::Duration::ZERO).await
    }

    /// Opens with the given read-your-writes wait (spawn the projector to make it useful).
    pub async fn with_wait(backend: Backend, read_your_writes: std::time::Duration) -> Self {
        let test = TestLog::new(backend).await;
        let docket = test.open_docket(read_your_writes).await;
        TestDocket { test, docket }
    }

    pub fn service(&self) -> &docket::service::Service {
        &self.docket.service
    }

    pub fn projector(&self) -> &std::sync::Arc<docket::projection::Projector> {
        &self.docket.projector
    }

    /// The read-model database's pool.
    pub fn pool(&self) -> &sqlx::AnyPool {
        self.docket.projector.db().pool()
    }
}

impl TestLog {
    /// Opens Docket (log, read models, projector, service) on this test's data.
    pub async fn open_docket(&self, read_your_writes: std::time::Duration) -> docket::app::Docket {
        docket::app::Docket::open_with(&self.options(), read_your_writes)
            .await
            .expect("docket opens")
    }

    /// Opens another read-model handle on this test's data, as a second process would.
    pub async fn open_read_db(&self) -> docket::projection::ReadDb {
        docket::projection::ReadDb::open(self.dir.path(), self.database_url.as_deref())
            .await
            .expect("read models open")
    }
}

/// A command context for `user:<id>`.
pub fn as_user(id: &str) -> docket::service::CommandContext {
    docket::service::CommandContext::new(Actor::parse(&format!("user:{id}")).expect("actor"))
}

/// A user enrolled through the real flow (password and TOTP), with an open session.
pub struct SignedIn {
    pub principal: docket::access::Principal,
    pub token: String,
    pub email: String,
    pub password: String,
    pub totp: docket::identity::secret::totp::TotpSecret,
    /// The ten single-use recovery codes enrolment handed out.
    pub recovery_codes: Vec<String>,
}

impl SignedIn {
    /// A code of this user's authenticator `steps_ahead` steps from now (each step is accepted
    /// once, so use a fresh one each time).
    pub fn code(&self, steps_ahead: u64) -> String {
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
        self.totp.code_at(now + 30 * steps_ahead)
    }
}

/// The password every test user enrols with.
pub const TEST_PASSWORD: &str = "Plover-Quartz-Meridian-77";

/// Adds `user_id` with `role`, enrols them (password and first TOTP code) and opens a session.
pub async fn sign_in(
    identity: &docket::identity::Identity,
    user_id: &str,
    role: docket::domain::identity::Role,
) -> SignedIn {
    let email = format!("{user_id}@firm.example");
    let added = identity
        .add_user(
            &Actor::system(),
            None,
            &email,
            &format!("Test {}", role.as_str()),
            role,
            &[],
            Some(user_id),
        )
        .await
        .expect("user added");
    let start = identity
        .begin_enrolment(&added.enrolment_token)
        .await
        .expect("enrolment begins");
    let totp = docket::identity::secret::totp::TotpSecret::from_base32(&start.secret_base32)
        .expect("a base32 secret");
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    let recovery_codes = identity
        .complete_enrolment(
            &added.enrolment_token,
            zeroize::Zeroizing::new(TEST_PASSWORD.to_owned()),
            &totp.code_at(now),
        )
        .await
        .expect("enrolment completes")
        .into_iter()
        .map(|code| code.to_string())
        .collect();
    let session = identity
        .open_session(user_id, Some("127.0.0.1"), chrono::Utc::now())
        .await
        .expect("session");
    let principal = identity
        .authenticate(&session.token)
        .await
        .expect("authenticates")
        .expect("a principal");
    SignedIn {
        principal,
        token: session.token.to_string(),
        email,
        password: TEST_PASSWORD.to_owned(),
        totp,
        recovery_codes,
    }
}

/// The caller of one GraphQL request made by `principal` (or anonymously).
pub fn caller(
    docket: &docket::app::Docket,
    principal: Option<docket::access::Principal>,
) -> std::sync::Arc<docket::api::graphql::caller::Caller> {
    std::sync::Arc::new(docket::api::graphql::caller::Caller::new(
        principal,
        docket.identity.directory(),
        uuid::Uuid::now_v7().to_string(),
        Some("127.0.0.1".to_owned()),
        docket.access.clone(),
    ))
}

/// `docket` served over HTTP on a free port of 127.0.0.1, with one worker; stop it with the
/// handle.
pub async fn serve(
    docket: &docket::app::Docket,
) -> (std::net::SocketAddr, actix_web::dev::ServerHandle) {
    serve_over(docket, None).await
}

/// [`serve`] over TLS with the certificates of `tls` (HTTPS and WSS).
pub async fn serve_tls(
    docket: &docket::app::Docket,
    tls: std::sync::Arc<docket::server::tls::CertificateStore>,
) -> (std::net::SocketAddr, actix_web::dev::ServerHandle) {
    serve_over(docket, Some(tls)).await
}

async fn serve_over(
    docket: &docket::app::Docket,
    tls: Option<std::sync::Arc<docket::server::tls::CertificateStore>>,
) -> (std::net::SocketAddr, actix_web::dev::ServerHandle) {
    let mut attempts = 0;
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let components = docket::server::Components {
            log: docket.log.clone(),
            projector: docket.projector.clone(),
            service: docket.service.clone(),
            db: docket.projector.db().clone(),
            persisted: Default::default(),
            identity: docket.identity.clone(),
            access: docket.access.clone(),
            checkpoints: docket.checkpoints.clone(),
            monitoring: Default::default(),
            integrations: docket.integrations.clone(),
            development: false,
            unrecorded_principal_for_benchmarks: None,
        };
        match docket::server::http_server_with(components, address, Some(1), tls.clone()) {
            Ok(server) => {
                let handle = server.handle();
                tokio::spawn(server);
                return (address, handle);
            }
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && attempts < 5 => {
                attempts += 1;
            }
            Err(error) => panic!("the server binds: {error}"),
        }
    }
}

/// A small deterministic generator (SplitMix64) for tests that act at random points. The seed is
/// `DOCKET_TEST_SEED` when set, else taken from the clock; it is printed when the generator is
/// made (cargo shows a test's output when it fails) and [`Seeded::context`] puts it in
/// assertion messages, so a failing run can be repeated exactly.
pub struct Seeded {
    pub seed: u64,
    state: u64,
    test: &'static str,
}

impl Seeded {
    pub fn new(test: &'static str) -> Self {
        let seed = std::env::var("DOCKET_TEST_SEED")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                now.as_nanos() as u64 ^ u64::from(std::process::id())
            });
        eprintln!("{test}: seed {seed} (DOCKET_TEST_SEED={seed} repeats these random points)");
        Seeded {
            seed,
            state: seed,
            test,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// What to append to an assertion message: the test and its seed.
    pub fn context(&self) -> String {
        format!("{} with DOCKET_TEST_SEED={}", self.test, self.seed)
    }
}
