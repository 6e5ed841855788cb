//! Checkpoints and proofs for auditors: through GraphQL, the plain HTTP routes and
//! `docket checkpoint` / `docket prove`. Every proof given must verify against the signed
//! checkpoint's root with the RFC 9162 checks, every note must carry the log key's signature,
//! other roles and anonymous callers are refused, and every read is an access record.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Request;
use docket::access::Principal;
use docket::access::index::{AccessQuery, AccessRow};
use docket::access::record::Decision as Recorded;
use docket::api::graphql::caller::Caller;
use docket::api::graphql::{self, with_loaders};
use docket::app::Docket;
use docket::domain::identity::Role;
use docket::log::checkpoint::SignedCheckpoint;
use docket::log::merkle::{TreeHash, leaf_hash, verify_consistency, verify_inclusion};
use docket::transparency::keys::KeyHistory;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::on_both_backends;
use crate::support::{Backend, SignedIn, TestLog, caller, sample_log, sign_in};

on_both_backends!(
    auditors_read_checkpoints_and_proofs_that_verify,
    the_checkpoint_list_pages_largest_first,
    a_proof_beyond_the_stored_tree_brings_the_tree_up_to_the_log,
    other_roles_and_anonymous_callers_are_refused_and_recorded,
    every_read_of_a_checkpoint_or_proof_is_an_access_record,
    bad_positions_and_sizes_get_stable_codes_without_internal_text,
    the_http_routes_serve_notes_and_proofs_to_auditors_only,
    the_http_routes_answer_nothing_without_a_durable_access_record,
    the_cli_prints_checkpoints_and_proofs_that_verify,
);

/// Roles that hold neither `read_proofs` nor `sign_checkpoint`.
const REFUSED: [(&str, Role); 4] = [
    ("pa.rtner", Role::Partner),
    ("at.torney", Role::Attorney),
    ("st.aff", Role::Staff),
    ("pa.ralegal", Role::Paralegal),
];

const CHECKPOINT_FIELDS: &str = "origin treeSize rootHash rootHashBase64 note keyId signedAt";

/// A firm's Docket with an auditor and an admin signed in, over a log of sample events (with a
/// key rotation among them).
struct Firm {
    test: TestLog,
    docket: Docket,
    schema: graphql::DocketSchema,
    users: std::collections::HashMap<&'static str, SignedIn>,
}

impl Firm {
    async fn new(backend: Backend) -> Firm {
        let test = TestLog::new(backend).await;
        let docket = Docket::open_with(&test.options(), Duration::ZERO)
            .await
            .unwrap();
        sample_log(&docket.log, 12).await;
        let schema = graphql::build(
            docket.service.clone(),
            docket.projector.db().clone(),
            docket.identity.clone(),
            docket.checkpoints.clone(),
            docket.integrations.clone(),
        );
        let mut users = std::collections::HashMap::new();
        users.insert(
            "au.dit",
            sign_in(&docket.identity, "au.dit", Role::Auditor).await,
        );
        users.insert(
            "ad.min",
            sign_in(&docket.identity, "ad.min", Role::Admin).await,
        );
        Firm {
            test,
            docket,
            schema,
            users,
        }
    }

    async fn sign_in(&mut self, id: &'static str, role: Role) {
        let user = sign_in(&self.docket.identity, id, role).await;
        self.users.insert(id, user);
    }

    fn principal(&self, user: &str) -> Principal {
        self.users[user].principal.clone()
    }

    /// Runs `query` as the HTTP handler does, flushing the access record at the end.
    async fn run_as(&self, principal: Option<Principal>, query: &str) -> Value {
        let caller: Arc<Caller> = caller(&self.docket, principal);
        let request =
            with_loaders(Request::new(query), self.docket.projector.db()).data(caller.clone());
        let response = self.schema.execute(request).await;
        caller.flush("test").await.unwrap();
        serde_json::to_value(&response).unwrap()
    }

    async fn run(&self, user: &str, query: &str) -> Value {
        self.run_as(Some(self.principal(user)), query).await
    }

    async fn ok(&self, user: &str, query: &str) -> Value {
        let response = self.run(user, query).await;
        assert!(response.get("errors").is_none(), "{user}: {response}");
        response["data"].clone()
    }

    async fn head(&self) -> u64 {
        self.docket.log.head().await.unwrap().position
    }

    /// Signs a checkpoint through GraphQL, as the auditor.
    async fn sign(&self) -> Value {
        let data = self
            .ok(
                "au.dit",
                &format!("mutation {{ signCheckpoint {{ {CHECKPOINT_FIELDS} }} }}"),
            )
            .await;
        data["signCheckpoint"].clone()
    }

    /// The access records of `principal`, newest first.
    async fn records_of(&self, principal: &str) -> Vec<AccessRow> {
        self.docket
            .access
            .query(&AccessQuery {
                principal: Some(principal.to_owned()),
                ..AccessQuery::latest(500)
            })
            .await
            .unwrap()
    }
}

fn code(response: &Value) -> Value {
    response["errors"][0]["extensions"]["code"].clone()
}

fn hash(text: &Value) -> TreeHash {
    hex::decode(text.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hashes(list: &Value) -> Vec<TreeHash> {
    list.as_array().unwrap().iter().map(hash).collect()
}

/// Checks a checkpoint as a client would: the note parses, states the size and root given
/// beside it, and is signed by the log key in force after that many events.
async fn assert_checkpoint_verifies(docket: &Docket, checkpoint: &Value) {
    let size = checkpoint["treeSize"].as_u64().unwrap();
    let signed = SignedCheckpoint::parse(checkpoint["note"].as_str().unwrap()).unwrap();
    assert_eq!(signed.checkpoint.size, size);
    assert_eq!(signed.checkpoint.root, hash(&checkpoint["rootHash"]));
    assert_eq!(
        signed.checkpoint.origin,
        checkpoint["origin"].as_str().unwrap()
    );
    assert_eq!(
        checkpoint["rootHashBase64"].as_str().unwrap(),
        signed.checkpoint.body().lines().nth(2).unwrap()
    );
    let keys = KeyHistory::load(docket.log.store().as_ref()).await.unwrap();
    let key = keys.in_force_after(size).unwrap();
    assert_eq!(checkpoint["keyId"].as_str().unwrap(), key.key_id);
    assert!(
        signed.signed_by_log_key(&key.public_key),
        "the note carries the log key's signature"
    );
}

/// Checks an inclusion proof as a client would, against its checkpoint's signed root, and that
/// the event hash is the one the log holds at that position.
async fn assert_inclusion_verifies(docket: &Docket, proof: &Value) {
    let position = proof["position"].as_u64().unwrap();
    let size = proof["treeSize"].as_u64().unwrap();
    assert_eq!(proof["leafIndex"].as_u64().unwrap(), position - 1);
    let event = docket.log.store().read_page(position, 1).await.unwrap();
    assert_eq!(proof["eventHash"], json!(hex::encode(event[0].hash)));
    let leaf = leaf_hash(&hash(&proof["eventHash"]));
    assert_eq!(leaf, hash(&proof["leafHash"]));
    let checkpoint = &proof["checkpoint"];
    assert_eq!(checkpoint["treeSize"].as_u64().unwrap(), size);
    assert_checkpoint_verifies(docket, checkpoint).await;
    let root = SignedCheckpoint::parse(checkpoint["note"].as_str().unwrap())
        .unwrap()
        .checkpoint
        .root;
    assert_eq!(hash(&proof["rootHash"]), root);
    verify_inclusion(position - 1, size, &leaf, &hashes(&proof["path"]), &root)
        .expect("the inclusion proof verifies against the signed root");
}

fn assert_consistency_verifies(proof: &Value, first_root: &TreeHash, second_root: &TreeHash) {
    assert_eq!(hash(&proof["firstRoot"]), *first_root);
    assert_eq!(hash(&proof["secondRoot"]), *second_root);
    verify_consistency(
        proof["first"].as_u64().unwrap(),
        proof["second"].as_u64().unwrap(),
        first_root,
        second_root,
        &hashes(&proof["path"]),
    )
    .expect("the consistency proof verifies between the two roots");
}

fn inclusion_query(position: u64, tree_size: Option<u64>) -> String {
    let size = tree_size.map_or(String::new(), |size| format!(", treeSize: {size}"));
    format!(
        "{{ inclusionProof(position: {position}{size}) {{ position treeSize leafIndex eventHash \
         leafHash path rootHash checkpoint {{ {CHECKPOINT_FIELDS} }} }} }}"
    )
}

fn consistency_query(first: u64, second: u64) -> String {
    format!(
        "{{ consistencyProof(first: {first}, second: {second}) {{ first second path firstRoot \
         secondRoot firstCheckpoint {{ {CHECKPOINT_FIELDS} }} \
         secondCheckpoint {{ {CHECKPOINT_FIELDS} }} }} }}"
    )
}

async fn auditors_read_checkpoints_and_proofs_that_verify(backend: Backend) {
    let firm = Firm::new(backend).await;
    let none = firm
        .ok(
            "au.dit",
            &format!("{{ latestCheckpoint {{ {CHECKPOINT_FIELDS} }} }}"),
        )
        .await;
    assert_eq!(none["latestCheckpoint"], Value::Null, "nothing signed yet");

    // Two checkpoints, with events appended between them.
    let first = firm.sign().await;
    assert_eq!(first["treeSize"].as_u64().unwrap(), firm.head().await);
    assert_checkpoint_verifies(&firm.docket, &first).await;
    let small = first["treeSize"].as_u64().unwrap();
    sample_log(&firm.docket.log, 5).await;
    let second = firm.sign().await;
    let large = second["treeSize"].as_u64().unwrap();
    assert_eq!(large, firm.head().await);
    assert!(large > small);
    assert_checkpoint_verifies(&firm.docket, &second).await;

    // The latest and the one of a size are the signed ones, for the admin as for the auditor.
    for user in ["au.dit", "ad.min"] {
        let data = firm
            .ok(
                user,
                &format!(
                    "{{ latestCheckpoint {{ {CHECKPOINT_FIELDS} }} \
                     checkpoint(size: {small}) {{ {CHECKPOINT_FIELDS} }} }}"
                ),
            )
            .await;
        assert_eq!(data["latestCheckpoint"], second);
        assert_eq!(data["checkpoint"], first);
    }
    let missing = firm
        .ok(
            "au.dit",
            &format!("{{ checkpoint(size: {}) {{ treeSize }} }}", small + 1),
        )
        .await;
    assert_eq!(missing["checkpoint"], Value::Null);

    // Without a tree size, a proof is against the smallest checkpoint covering the position.
    for (position, expected_size) in [
        (1, small),
        (small, small),
        (small + 1, large),
        (large, large),
    ] {
        let data = firm.ok("au.dit", &inclusion_query(position, None)).await;
        let proof = &data["inclusionProof"];
        assert_eq!(
            proof["treeSize"].as_u64().unwrap(),
            expected_size,
            "{position}"
        );
        assert_inclusion_verifies(&firm.docket, proof).await;
    }
    // With one, against that checkpoint.
    let data = firm.ok("au.dit", &inclusion_query(2, Some(large))).await;
    assert_eq!(data["inclusionProof"]["treeSize"].as_u64().unwrap(), large);
    assert_inclusion_verifies(&firm.docket, &data["inclusionProof"]).await;

    // Consistency between the two checkpoints, with both signed notes.
    let data = firm.ok("ad.min", &consistency_query(small, large)).await;
    let proof = &data["consistencyProof"];
    assert_eq!(proof["firstCheckpoint"], first);
    assert_eq!(proof["secondCheckpoint"], second);
    assert_consistency_verifies(proof, &hash(&first["rootHash"]), &hash(&second["rootHash"]));
    let same = firm.ok("au.dit", &consistency_query(large, large)).await;
    assert_eq!(same["consistencyProof"]["path"], json!([]));
    assert_consistency_verifies(
        &same["consistencyProof"],
        &hash(&second["rootHash"]),
        &hash(&second["rootHash"]),
    );

    // Signing again without new events gives the latest checkpoint back.
    let again = firm.sign().await;
    assert_eq!(again, second);
}

async fn the_checkpoint_list_pages_largest_first(backend: Backend) {
    let firm = Firm::new(backend).await;
    let mut sizes = Vec::new();
    for _ in 0..3 {
        sizes.push(firm.sign().await["treeSize"].as_u64().unwrap());
        sample_log(&firm.docket.log, 2).await;
    }
    sizes.reverse();
    let page = |after: Option<&str>| {
        let after = after.map_or(String::new(), |cursor| format!(", after: \"{cursor}\""));
        format!(
            "{{ checkpoints(first: 2{after}) {{ edges {{ cursor node {{ treeSize note }} }} \
             pageInfo {{ hasNextPage endCursor }} }} }}"
        )
    };
    let first = firm.ok("au.dit", &page(None)).await;
    let connection = &first["checkpoints"];
    let listed: Vec<u64> = connection["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["treeSize"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, sizes[..2]);
    assert_eq!(connection["pageInfo"]["hasNextPage"], json!(true));
    let cursor = connection["pageInfo"]["endCursor"].as_str().unwrap();
    let rest = firm.ok("au.dit", &page(Some(cursor))).await;
    let connection = &rest["checkpoints"];
    assert_eq!(connection["edges"].as_array().unwrap().len(), 1);
    assert_eq!(
        connection["edges"][0]["node"]["treeSize"].as_u64().unwrap(),
        sizes[2]
    );
    assert_eq!(connection["pageInfo"]["hasNextPage"], json!(false));

    let bad = firm
        .run(
            "au.dit",
            "{ checkpoints(first: 2, after: \"nonsense\") { edges { cursor } } }",
        )
        .await;
    assert_eq!(code(&bad), json!("INVALID_ARGUMENT"), "{bad}");
    let unbounded = firm
        .run("au.dit", "{ checkpoints { edges { cursor } } }")
        .await;
    assert_eq!(code(&unbounded), json!("INVALID_ARGUMENT"), "{unbounded}");
}

async fn a_proof_beyond_the_stored_tree_brings_the_tree_up_to_the_log(backend: Backend) {
    let firm = Firm::new(backend).await;
    let checkpoint = firm.sign().await;
    let signed = checkpoint["treeSize"].as_u64().unwrap();
    sample_log(&firm.docket.log, 4).await;
    let head = firm.head().await;
    assert_eq!(
        firm.docket.checkpoints.tree().size().await.unwrap(),
        signed,
        "the tree has not followed the new events yet"
    );

    let data = firm.ok("au.dit", &consistency_query(signed, head)).await;
    let proof = &data["consistencyProof"];
    assert_eq!(
        proof["secondCheckpoint"],
        Value::Null,
        "no checkpoint of the head yet"
    );
    let head_root = firm.docket.checkpoints.tree().root(head).await.unwrap();
    assert_consistency_verifies(proof, &hash(&checkpoint["rootHash"]), &head_root);

    // An inclusion proof of an event past every checkpoint, in the tree of the log's head.
    let data = firm
        .ok(
            "au.dit",
            &format!(
                "{{ inclusionProof(position: {head}, treeSize: {head}) {{ treeSize eventHash \
                 leafHash path rootHash checkpoint {{ treeSize }} }} }}"
            ),
        )
        .await;
    let proof = &data["inclusionProof"];
    assert_eq!(proof["checkpoint"], Value::Null);
    assert_eq!(hash(&proof["rootHash"]), head_root);
    verify_inclusion(
        head - 1,
        head,
        &hash(&proof["leafHash"]),
        &hashes(&proof["path"]),
        &head_root,
    )
    .unwrap();
}

async fn other_roles_and_anonymous_callers_are_refused_and_recorded(backend: Backend) {
    let mut firm = Firm::new(backend).await;
    firm.sign().await;
    for (id, role) in REFUSED {
        firm.sign_in(id, role).await;
    }
    let fields = [
        "{ latestCheckpoint { treeSize } }".to_owned(),
        "{ checkpoint(size: 1) { treeSize } }".to_owned(),
        "{ checkpoints(first: 1) { edges { cursor } } }".to_owned(),
        inclusion_query(1, None),
        consistency_query(1, 2),
        "mutation { signCheckpoint { treeSize } }".to_owned(),
    ];
    let signed = firm.docket.checkpoints.latest().await.unwrap();
    for query in &fields {
        for (id, _) in REFUSED {
            let response = firm.run(id, query).await;
            assert_eq!(
                code(&response),
                json!("FORBIDDEN"),
                "{id}: {query}: {response}"
            );
            let leaked = response["data"]
                .as_object()
                .is_some_and(|data| data.values().any(|value| !value.is_null()));
            assert!(!leaked, "{id}: {query}: {response}");
        }
        let response = firm.run_as(None, query).await;
        assert_eq!(
            code(&response),
            json!("UNAUTHENTICATED"),
            "{query}: {response}"
        );
    }
    assert_eq!(
        firm.docket.checkpoints.latest().await.unwrap(),
        signed,
        "no refused caller signed anything"
    );
    sample_log(&firm.docket.log, 1).await;
    let refused = firm
        .run("st.aff", "mutation { signCheckpoint { treeSize } }")
        .await;
    assert_eq!(code(&refused), json!("FORBIDDEN"));
    assert_eq!(firm.docket.checkpoints.latest().await.unwrap(), signed);

    // Each refusal is a denied decision about the capability, in the access records.
    for (id, _) in REFUSED {
        let rows = firm.records_of(&format!("user:{id}")).await;
        for capability in ["read_proofs", "sign_checkpoint"] {
            assert!(
                rows.iter().any(|row| row.target == "capability"
                    && row.target_id.as_deref() == Some(capability)
                    && row.decision == Recorded::Denied
                    && row.reason == "role"),
                "{id}'s refused {capability} is recorded: {rows:?}"
            );
        }
    }
}

async fn every_read_of_a_checkpoint_or_proof_is_an_access_record(backend: Backend) {
    let firm = Firm::new(backend).await;
    let size = firm.sign().await["treeSize"].as_u64().unwrap();
    let reads = [
        (
            "{ latestCheckpoint { treeSize } }".to_owned(),
            "checkpoint",
            None,
            "transparency.checkpoints",
        ),
        (
            format!("{{ checkpoint(size: {size}) {{ treeSize }} }}"),
            "checkpoint",
            Some(size.to_string()),
            "transparency.checkpoints",
        ),
        (
            "{ checkpoints(first: 5) { edges { cursor } } }".to_owned(),
            "checkpoints",
            None,
            "transparency.checkpoints",
        ),
        (
            inclusion_query(3, None),
            "inclusion_proof",
            Some("3".to_owned()),
            "transparency.proofs",
        ),
        (
            consistency_query(2, size),
            "consistency_proof",
            Some(format!("2-{size}")),
            "transparency.proofs",
        ),
    ];
    for (query, target, target_id, field) in reads {
        let before = firm.records_of("user:au.dit").await.len();
        firm.ok("au.dit", &query).await;
        let rows = firm.records_of("user:au.dit").await;
        assert!(rows.len() > before, "{query} left a record");
        let newest = rows[0].position;
        let record: Vec<&AccessRow> = rows.iter().filter(|row| row.position == newest).collect();
        assert!(
            record.iter().any(|row| row.target == target
                && row.target_id == target_id
                && row.fields == [field.to_owned()]
                && row.decision == Recorded::Allowed
                && row.reason == "read_proofs"),
            "{query}: {record:?}"
        );
        assert!(
            record.iter().any(|row| row.target == "capability"
                && row.target_id.as_deref() == Some("read_proofs")
                && row.decision == Recorded::Allowed),
            "{query}: {record:?}"
        );
    }
    // Signing is recorded too, under its own capability.
    firm.sign().await;
    let rows = firm.records_of("user:au.dit").await;
    assert!(
        rows.iter()
            .any(|row| row.operation == "mutation signCheckpoint"
                && row.target == "checkpoint"
                && row.reason == "sign_checkpoint"),
        "{rows:?}"
    );
}

async fn bad_positions_and_sizes_get_stable_codes_without_internal_text(backend: Backend) {
    let firm = Firm::new(backend).await;
    let covered = |position: u64| inclusion_query(position, None);
    let before_any = firm.run("au.dit", &covered(1)).await;
    assert_eq!(code(&before_any), json!("NOT_FOUND"), "{before_any}");
    assert_eq!(
        before_any["errors"][0]["message"],
        json!("no checkpoint covers position 1 yet; give a tree size, or sign one")
    );
    let size = firm.sign().await["treeSize"].as_u64().unwrap();
    sample_log(&firm.docket.log, 2).await;
    let head = firm.head().await;
    let beyond_checkpoints = firm.run("au.dit", &covered(size + 1)).await;
    assert_eq!(code(&beyond_checkpoints), json!("NOT_FOUND"));

    // Every refusal names the log's size as it is now.
    let far = head + 1_000;
    let position = |position: u64, size: u64| {
        format!("position {position} is outside a tree of size {size} (positions start at 1)")
    };
    let tree_size =
        |size: u64| format!("tree size {size} is not between 1 and the log's size, {head}");
    let cases: Vec<(String, &str, String)> = vec![
        (covered(0), "OUT_OF_RANGE", position(0, head)),
        (covered(far), "OUT_OF_RANGE", position(far, head)),
        (inclusion_query(1, Some(0)), "OUT_OF_RANGE", tree_size(0)),
        (
            inclusion_query(1, Some(far)),
            "OUT_OF_RANGE",
            tree_size(far),
        ),
        (
            inclusion_query(size, Some(size - 1)),
            "OUT_OF_RANGE",
            position(size, size - 1),
        ),
        (
            consistency_query(3, 2),
            "INVALID_ARGUMENT",
            "the first tree size (3) is larger than the second (2)".to_owned(),
        ),
        (consistency_query(0, 2), "OUT_OF_RANGE", tree_size(0)),
        (consistency_query(1, far), "OUT_OF_RANGE", tree_size(far)),
    ];
    for (query, expected, message) in cases {
        let response = firm.run("au.dit", &query).await;
        assert_eq!(code(&response), json!(expected), "{query}: {response}");
        assert_eq!(response["errors"][0]["message"], json!(message), "{query}");
        let field = query.split(['(', ' ']).nth(1).unwrap();
        assert_eq!(response["data"][field], Value::Null, "{query}: {response}");
    }
}

// ---- HTTP ------------------------------------------------------------------------------------

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(found, _)| found == name)
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }

    fn code(&self) -> Value {
        self.json()["errors"][0]["extensions"]["code"].clone()
    }
}

/// `GET path` on a fresh connection, read to its end (the routes answer with sized bodies).
async fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(name, value)| name == "transfer-encoding" && value == "chunked"),
        "sized bodies"
    );
    Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

/// The firm's Docket served on 127.0.0.1.
async fn serve(firm: &Firm) -> (SocketAddr, actix_web::dev::ServerHandle) {
    crate::support::serve(&firm.docket).await
}

async fn the_http_routes_serve_notes_and_proofs_to_auditors_only(backend: Backend) {
    let mut firm = Firm::new(backend).await;
    firm.sign_in("pa.rtner", Role::Partner).await;
    let (address, handle) = serve(&firm).await;
    let bearer = |user: &str| format!("Bearer {}", firm.users[user].token);
    let auditor = bearer("au.dit");
    let auditor = [("authorization", auditor.as_str())];

    // Before any checkpoint: 404 with the stable code.
    let none = get(address, "/checkpoint", &auditor).await;
    assert_eq!((none.status, none.code()), (404, json!("NOT_FOUND")));

    let first = firm.sign().await;
    let small = first["treeSize"].as_u64().unwrap();
    sample_log(&firm.docket.log, 3).await;
    let second = firm.sign().await;
    let large = second["treeSize"].as_u64().unwrap();

    // The latest note, and the note of a size, as plain text.
    let latest = get(address, "/checkpoint", &auditor).await;
    assert_eq!(latest.status, 200, "{}", latest.text());
    assert_eq!(
        latest.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(latest.text(), second["note"].as_str().unwrap());
    let signed = SignedCheckpoint::parse(&latest.text()).unwrap();
    assert_eq!(signed.checkpoint.size, large);
    let of_size = get(address, &format!("/checkpoints/{small}"), &auditor).await;
    assert_eq!(of_size.status, 200);
    assert_eq!(of_size.text(), first["note"].as_str().unwrap());
    let missing = get(address, &format!("/checkpoints/{}", small + 1), &auditor).await;
    assert_eq!((missing.status, missing.code()), (404, json!("NOT_FOUND")));
    let malformed = get(address, "/checkpoints/latest", &auditor).await;
    assert_eq!(
        (malformed.status, malformed.code()),
        (400, json!("INVALID_ARGUMENT"))
    );

    // Proofs as JSON, in the GraphQL shape, verifying against the signed roots.
    let inclusion = get(address, "/proof/inclusion?position=2", &auditor).await;
    assert_eq!(inclusion.status, 200, "{}", inclusion.text());
    assert_eq!(inclusion.header("content-type"), Some("application/json"));
    let proof = inclusion.json();
    assert_eq!(proof["treeSize"].as_u64().unwrap(), small);
    assert_inclusion_verifies(&firm.docket, &proof).await;
    let path = format!("/proof/inclusion?position={large}&size={large}");
    let proof = get(address, &path, &auditor).await.json();
    assert_inclusion_verifies(&firm.docket, &proof).await;
    let path = format!("/proof/consistency?first={small}&second={large}");
    let consistency = get(address, &path, &auditor).await;
    assert_eq!(consistency.status, 200, "{}", consistency.text());
    assert_consistency_verifies(
        &consistency.json(),
        &hash(&first["rootHash"]),
        &hash(&second["rootHash"]),
    );

    // Bad input: 400 with the stable code.
    for (path, status, expected) in [
        (
            "/proof/inclusion?position=0".to_owned(),
            400,
            "OUT_OF_RANGE",
        ),
        (
            format!("/proof/inclusion?position=1&size={}", large + 100),
            400,
            "OUT_OF_RANGE",
        ),
        ("/proof/inclusion".to_owned(), 400, "INVALID_ARGUMENT"),
        (
            "/proof/inclusion?position=-1".to_owned(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/proof/consistency?first=3&second=2".to_owned(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/proof/consistency?first=0&second=2".to_owned(),
            400,
            "OUT_OF_RANGE",
        ),
        (
            "/proof/consistency?first=two&second=3".to_owned(),
            400,
            "INVALID_ARGUMENT",
        ),
    ] {
        let reply = get(address, &path, &auditor).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, json!(expected)),
            "{path}"
        );
    }
    let late = get(
        address,
        &format!("/proof/inclusion?position={}", large),
        &auditor,
    )
    .await;
    assert_eq!(
        late.status, 200,
        "the latest checkpoint covers its last event"
    );

    // Credentials: none is 401, a partner's is 403, a cookie needs the CSRF header.
    let partner = bearer("pa.rtner");
    let cookie = format!("docket_session={}", firm.users["au.dit"].token);
    for path in [
        "/checkpoint",
        "/checkpoints/1",
        "/proof/inclusion?position=1",
    ] {
        let anonymous = get(address, path, &[]).await;
        assert_eq!(
            (anonymous.status, anonymous.code()),
            (401, json!("UNAUTHENTICATED"))
        );
        let refused = get(address, path, &[("authorization", partner.as_str())]).await;
        assert_eq!(
            (refused.status, refused.code()),
            (403, json!("FORBIDDEN")),
            "{path}"
        );
        let no_csrf = get(address, path, &[("cookie", cookie.as_str())]).await;
        assert_eq!(no_csrf.status, 403);
        assert_eq!(no_csrf.code(), json!("CSRF_HEADER_REQUIRED"));
    }
    let with_csrf = get(
        address,
        "/checkpoint",
        &[("cookie", cookie.as_str()), ("x-docket-csrf", "1")],
    )
    .await;
    assert_eq!(with_csrf.status, 200);

    // Every request of the auditor's and the partner's is recorded.
    let rows = firm.records_of("user:au.dit").await;
    for (operation, target) in [
        ("GET /checkpoint", "checkpoint"),
        ("GET /checkpoints/{size}", "checkpoint"),
        ("GET /proof/inclusion", "inclusion_proof"),
        ("GET /proof/consistency", "consistency_proof"),
    ] {
        assert!(
            rows.iter().any(|row| row.operation == operation
                && row.target == target
                && row.decision == Recorded::Allowed),
            "{operation} is recorded"
        );
    }
    let refusals = firm.records_of("user:pa.rtner").await;
    assert_eq!(
        refusals
            .iter()
            .filter(|row| row.target_id.as_deref() == Some("read_proofs")
                && row.decision == Recorded::Denied)
            .count(),
        3,
        "{refusals:?}"
    );
    handle.stop(false).await;
}

async fn the_http_routes_answer_nothing_without_a_durable_access_record(backend: Backend) {
    let firm = Firm::new(backend).await;
    firm.sign().await;
    let (address, handle) = serve(&firm).await;
    let statement = match backend {
        Backend::Sqlite => "ALTER TABLE events RENAME TO events_gone",
        Backend::Postgres => "ALTER TABLE docket_access.events RENAME TO events_gone",
    };
    match backend {
        Backend::Sqlite => {
            use sqlx::Connection;
            let path = firm.test.dir.path().join("access").join("docket.db");
            let mut connection =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
            sqlx::raw_sql(statement)
                .execute(&mut connection)
                .await
                .unwrap();
        }
        Backend::Postgres => firm.test.execute(&[statement]).await,
    }
    let bearer = format!("Bearer {}", firm.users["au.dit"].token);
    for path in [
        "/checkpoint",
        "/proof/inclusion?position=1",
        "/proof/consistency?first=1&second=2",
    ] {
        let reply = get(address, path, &[("authorization", bearer.as_str())]).await;
        assert_eq!(reply.status, 503, "{path}");
        assert_eq!(reply.code(), json!("ACCESS_RECORD_UNAVAILABLE"));
        assert!(
            !reply.text().contains("treeSize"),
            "no proof leaves: {}",
            reply.text()
        );
    }
    handle.stop(false).await;
}

// ---- CLI -------------------------------------------------------------------------------------

/// Runs `docket <args>` on the test's data; exit code and standard output.
fn docket(test: &TestLog, args: &[&str]) -> (Option<i32>, String) {
    let output = test.docket_command().args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

fn json_of(output: &str) -> Value {
    serde_json::from_str(output).unwrap_or_else(|_| panic!("not JSON: {output}"))
}

async fn the_cli_prints_checkpoints_and_proofs_that_verify(backend: Backend) {
    let test = TestLog::new(backend).await;
    {
        let log = test.open().await;
        sample_log(&log, 8).await;
    }
    let (status, signed) = docket(&test, &["checkpoint", "sign"]);
    assert_eq!(status, Some(0), "{signed}");
    let first = json_of(&signed);
    let small = first["treeSize"].as_u64().unwrap();
    assert_eq!(small, 10, "the genesis, eight events and a key rotation");
    {
        let log = test.open().await;
        sample_log(&log, 4).await;
    }
    let second = json_of(&docket(&test, &["checkpoint", "sign"]).1);
    let large = second["treeSize"].as_u64().unwrap();
    assert_eq!(large, small + 5, "four events and a key rotation");

    let docket_app = test.open_docket(Duration::ZERO).await;
    assert_checkpoint_verifies(&docket_app, &first).await;
    assert_checkpoint_verifies(&docket_app, &second).await;

    let (status, shown) = docket(&test, &["checkpoint", "show"]);
    assert_eq!((status, json_of(&shown)), (Some(0), second.clone()));
    let shown = json_of(&docket(&test, &["checkpoint", "show", "--size", &small.to_string()]).1);
    assert_eq!(shown, first);
    let (_, note) = docket(&test, &["checkpoint", "show", "--note"]);
    assert_eq!(note, second["note"].as_str().unwrap());
    let listed = json_of(&docket(&test, &["checkpoint", "list", "--limit", "1"]).1);
    assert_eq!(
        listed,
        json!({"checkpoints": [second.clone()], "nextBefore": large})
    );
    let rest = json_of(
        &docket(
            &test,
            &["checkpoint", "list", "--before", &large.to_string()],
        )
        .1,
    );
    assert_eq!(
        rest,
        json!({"checkpoints": [first.clone()], "nextBefore": null})
    );

    let (status, proof) = docket(&test, &["prove", "inclusion", "--position", "3"]);
    assert_eq!(status, Some(0), "{proof}");
    let proof = json_of(&proof);
    assert_eq!(proof["treeSize"].as_u64().unwrap(), small);
    assert_inclusion_verifies(&docket_app, &proof).await;
    let proof = json_of(
        &docket(
            &test,
            &[
                "prove",
                "inclusion",
                "--position",
                "3",
                "--size",
                &large.to_string(),
            ],
        )
        .1,
    );
    assert_inclusion_verifies(&docket_app, &proof).await;
    let (status, proof) = docket(
        &test,
        &[
            "prove",
            "consistency",
            "--first",
            &small.to_string(),
            "--second",
            &large.to_string(),
        ],
    );
    assert_eq!(status, Some(0), "{proof}");
    assert_consistency_verifies(
        &json_of(&proof),
        &hash(&first["rootHash"]),
        &hash(&second["rootHash"]),
    );

    // Refusals: exit 1 with the stable code.
    for (args, expected) in [
        (
            vec!["prove", "inclusion", "--position", "0"],
            "OUT_OF_RANGE",
        ),
        (
            vec!["prove", "inclusion", "--position", "1", "--size", "999"],
            "OUT_OF_RANGE",
        ),
        (
            vec!["prove", "consistency", "--first", "5", "--second", "4"],
            "INVALID_ARGUMENT",
        ),
        (vec!["checkpoint", "show", "--size", "2"], "NOT_FOUND"),
    ] {
        let (status, output) = docket(&test, &args);
        assert_eq!(status, Some(1), "{args:?}: {output}");
        assert_eq!(
            json_of(&output)["error"]["code"],
            json!(expected),
            "{args:?}"
        );
    }

    // Each use is the operator's access record.
    let rows = docket_app
        .access
        .query(&AccessQuery {
            principal: Some("system".into()),
            ..AccessQuery::latest(500)
        })
        .await
        .unwrap();
    for operation in [
        "cli checkpoint sign",
        "cli checkpoint show",
        "cli checkpoint list",
        "cli prove inclusion",
        "cli prove consistency",
    ] {
        assert!(
            rows.iter()
                .any(|row| row.operation == operation && row.reason == "operator"),
            "{operation} is recorded: {rows:?}"
        );
    }
}
