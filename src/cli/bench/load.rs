//! The API benchmark's load: simulated clients, each on one kept-alive connection, sending one
//! kind of request back to back until a deadline. A response counts only when it carries what
//! was asked for (a matter, or a non-empty page of matters, and no errors), so a run of refusals
//! shows up as failures rather than as throughput.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::http::{Connection, Reply};
use crate::store::StoreError;

/// The practice areas the seeded matters are spread over.
pub const AREAS: &[&str] = &[
    "litigation",
    "employment",
    "real_estate",
    "corporate",
    "family",
    "ip",
];

/// What the clients request.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Healthz,
    MatterDetail,
    MatterList,
}

impl Target {
    /// The load's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Target::Healthz => "healthz",
            Target::MatterDetail => "matter_detail",
            Target::MatterList => "matter_list_filtered",
        }
    }
}

const DETAIL: &str = "query($n: String!) { matter(number: $n) { number title status \
    responsibleAttorney parties { role contact { displayName } } \
    documents { title latestVersion } calendarEntries { kind title startsAt rule } } }";
const LIST: &str = "query($area: String!) { matters(first: 20, filter: {status: [OPEN], \
    practiceArea: $area}, orderBy: {field: OPENED_ON, direction: DESC}) { edges { node { number \
    title responsibleAttorney openedOn } } pageInfo { hasNextPage endCursor } } }";

/// Where the clients send their requests, and as whom.
#[derive(Clone)]
pub struct Server {
    pub address: SocketAddr,
    /// Bearer tokens, client `i` using token `i mod len`; empty to send none.
    pub tokens: Arc<[Zeroizing<String>]>,
}

/// What one timed run saw: the latencies of good responses, how long it ran, and how many
/// responses were failures.
#[derive(Debug, Default)]
pub struct Sample {
    pub latencies: Vec<Duration>,
    pub seconds: f64,
    pub failed: u64,
}

impl Sample {
    /// Adds another run of the same load to this one.
    pub fn merge(&mut self, other: Sample) {
        self.latencies.extend(other.latencies);
        self.seconds += other.seconds;
        self.failed += other.failed;
    }
}

/// One simulated client: a kept-alive connection, the bearer token it sends (if any) and its
/// own sequence of random choices.
pub struct Client {
    connection: Connection,
    token: Option<Zeroizing<String>>,
    random: Random,
}

impl Client {
    /// Connects client number `index` to `server`; it sends token `index mod len`.
    pub async fn open(server: &Server, index: u64) -> std::io::Result<Self> {
        let token = match server.tokens.len() {
            0 => None,
            len => server
                .tokens
                .get((index as usize) % len)
                .map(|token| Zeroizing::new(token.as_str().to_owned())),
        };
        Ok(Client {
            connection: Connection::open(server.address).await?,
            token,
            random: Random(0x2545_f491 ^ (index + 1)),
        })
    }

    /// Sends one request for `target` (a matter among the first `matters` seeded, or a
    /// practice area, picked at random): whether the response carried what was asked for.
    pub async fn request(&mut self, target: Target, matters: u64) -> std::io::Result<bool> {
        match target {
            Target::Healthz => Ok(self.connection.get("/healthz").await?.status == 200),
            Target::MatterDetail => {
                let number = format!("B{:06}", self.random.next() % matters.max(1));
                let reply = self.graphql(DETAIL, json!({"n": number})).await?;
                Ok(answered(&reply, "/data/matter"))
            }
            Target::MatterList => {
                let area = AREAS[(self.random.next() % AREAS.len() as u64) as usize];
                let reply = self.graphql(LIST, json!({"area": area})).await?;
                Ok(answered(&reply, "/data/matters/edges/0"))
            }
        }
    }

    /// Posts a GraphQL document with its variables, with this client's token.
    pub async fn graphql(&mut self, query: &str, variables: Value) -> std::io::Result<Reply> {
        let body = json!({"query": query, "variables": variables});
        let bearer = self.token.as_ref().map(|token| token.as_str());
        self.connection
            .post_json("/graphql", body.to_string().as_bytes(), bearer)
            .await
    }
}

/// `clients` connections send requests back to back for `duration`.
pub async fn load(
    server: &Server,
    target: Target,
    clients: u64,
    matters: u64,
    duration: Duration,
) -> Result<Sample, StoreError> {
    let error = |detail: String| StoreError::Database { detail };
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..clients {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::open(&server, index).await?;
            let mut sample = Sample::default();
            while Instant::now() < deadline {
                let began = Instant::now();
                if client.request(target, matters).await? {
                    sample.latencies.push(began.elapsed());
                } else {
                    sample.failed += 1;
                }
            }
            Ok::<_, std::io::Error>(sample)
        }));
    }
    let mut total = Sample::default();
    for task in tasks {
        let sample = task
            .await
            .map_err(|e| error(e.to_string()))?
            .map_err(|e| error(e.to_string()))?;
        total.merge(sample);
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}

/// Whether a GraphQL reply is a 200 without errors whose data has a non-null value at
/// `pointer`.
pub fn answered(reply: &Reply, pointer: &str) -> bool {
    if reply.status != 200 {
        return false;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&reply.body) else {
        return false;
    };
    body.get("errors").is_none() && body.pointer(pointer).is_some_and(|value| !value.is_null())
}

/// xorshift64: enough to spread requests over matters.
pub struct Random(pub u64);

impl Random {
    /// The next number of the sequence.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
