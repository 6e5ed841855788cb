//! Client data at rest: written through the API, it must not be found in plaintext in any
//! file of the data directory (the SQLite log, its WAL, the read models, their WAL) nor in a
//! dump of the PostgreSQL database, while the API still reads it back.

use base64::Engine;
use serde_json::json;

use crate::on_both_backends;
use crate::records::{Firm, MATTER};
use crate::support::Backend;

/// Distinctive client data, one marker per kind of sensitive field.
const MARKERS: &[&str] = &[
    "Xanthippe",
    "Vorobyeva",
    "xanthippe.v@mailbox.example",
    "+44 7700 900123",
    "17 Quillfeather Row",
    "PB9912370",
    "Wherryford grievance",
    "Blackthorn settlement",
    "Halloran memorandum",
    "tribunal-bundle-q7.pdf",
    "Zephyrine witness",
    "Ottoline disclosure",
    "Marchbanks privilege",
    "Peverell offshore trust",
];

async fn write_client_data(firm: &Firm) {
    let ok = |query: String| async move { firm.ok("p.one", &query).await };
    let contact = ok(r#"mutation { createContact(kind: PERSON, input: {displayName: "Xanthippe Vorobyeva",
        givenName: "Xanthippe", familyName: "Vorobyeva", emails: ["xanthippe.v@mailbox.example"],
        phones: ["+44 7700 900123"], addresses: [{lines: ["17 Quillfeather Row"]}],
        identifiers: [{scheme: "passport", value: "PB9912370"}]}) { contact { contactId } userErrors { code } } }"#
        .to_owned())
    .await;
    let contact_id = contact["createContact"]["contact"]["contactId"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(format!(
        r#"mutation {{ addParty(number: "{MATTER}", contactId: "{contact_id}", role: WITNESS) {{ userErrors {{ code }} }} }}"#
    ))
    .await;
    ok(format!(
        r#"mutation {{ updateMatter(number: "{MATTER}", input: {{description: "Wherryford grievance"}}) {{ userErrors {{ code }} }} }}"#
    ))
    .await;
    ok(format!(
        r#"mutation {{ addNote(number: "{MATTER}", subject: "Blackthorn settlement", body: "Halloran memorandum") {{ userErrors {{ code }} }} }}"#
    ))
    .await;
    let content = base64::engine::general_purpose::STANDARD.encode("Ottoline disclosure, page 1");
    ok(format!(
        r#"mutation {{ addDocument(number: "{MATTER}", input: {{documentType: "evidence", title: "Zephyrine witness",
        description: "Marchbanks privilege", filename: "tribunal-bundle-q7.pdf", mediaType: "application/pdf",
        contentBase64: "{content}"}}) {{ userErrors {{ code }} }} }}"#
    ))
    .await;
    ok(format!(
        r#"mutation {{ recordTime(number: "{MATTER}", input: {{workedOn: "2026-11-02", minutes: 30,
        description: "Call with Xanthippe Vorobyeva"}}) {{ userErrors {{ code }} }} }}"#
    ))
    .await;
    ok(format!(
        r#"mutation {{ recordConflictCheck(number: "{MATTER}", query: "Vorobyeva", outcome: CLEARED,
        notes: "Marchbanks privilege") {{ userErrors {{ code }} }} }}"#
    ))
    .await;
    let defined = firm
        .ok(
            "ad.min",
            r#"mutation { defineCustomField(key: "source_of_wealth", label: "Source of wealth",
            kind: TEXT, sensitive: true) { userErrors { code } } }"#,
        )
        .await;
    assert_eq!(defined["defineCustomField"]["userErrors"], json!([]));
    let set = ok(format!(
        r#"mutation {{ setCustomField(number: "{MATTER}", key: "source_of_wealth",
        value: "Peverell offshore trust") {{ userErrors {{ code }} }} }}"#
    ))
    .await;
    assert_eq!(set["setCustomField"]["userErrors"], json!([]));
    firm.docket.projector.catch_up().await.unwrap();
}

/// Every marker found in `bytes`.
fn found_in(bytes: &[u8]) -> Vec<&'static str> {
    MARKERS
        .iter()
        .copied()
        .filter(|marker| {
            bytes
                .windows(marker.len())
                .any(|window| window == marker.as_bytes())
        })
        .collect()
}

async fn client_data_is_never_stored_in_plaintext(backend: Backend) {
    let firm = Firm::new(backend).await;
    write_client_data(&firm).await;

    // The API reads it back.
    let detail = firm
        .ok(
            "p.one",
            &format!(
                r#"{{ matter(number: "{MATTER}") {{ description customFields notes {{ body }} }} }}"#
            ),
        )
        .await;
    assert_eq!(
        detail["matter"]["customFields"]["source_of_wealth"],
        json!("Peverell offshore trust")
    );
    assert_eq!(
        detail["matter"]["description"],
        json!("Wherryford grievance")
    );
    assert_eq!(
        detail["matter"]["notes"][0]["body"],
        json!("Halloran memorandum")
    );

    // What is searched: each file's bytes, or the dump. The matter's title is not client data
    // and is stored in clear: finding it shows the search sees the stored rows.
    let mut leaks = Vec::new();
    let mut control = false;
    let title = b"Employment claim";
    match backend {
        Backend::Sqlite => {
            // Every file of the data directory but the keys: logs, WALs, read models.
            for entry in walk(firm.log.dir.path()) {
                if entry.components().any(|part| part.as_os_str() == "keys") {
                    continue;
                }
                let bytes = std::fs::read(&entry).unwrap();
                control |= bytes.windows(title.len()).any(|window| window == title);
                for marker in found_in(&bytes) {
                    leaks.push(format!("{}: {marker}", entry.display()));
                }
            }
        }
        Backend::Postgres => {
            let url = firm.log.database_url.clone().unwrap();
            let dump = std::process::Command::new("pg_dump")
                .arg("--no-owner")
                .arg(&url)
                .output()
                .expect("pg_dump runs");
            assert!(
                dump.status.success(),
                "{}",
                String::from_utf8_lossy(&dump.stderr)
            );
            control = dump
                .stdout
                .windows(title.len())
                .any(|window| window == title);
            for marker in found_in(&dump.stdout) {
                leaks.push(format!("pg_dump: {marker}"));
            }
        }
    }
    assert!(
        control,
        "the search found the matter's title, stored in clear"
    );
    assert_eq!(
        leaks,
        Vec::<String>::new(),
        "client data found in plaintext"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

on_both_backends!(client_data_is_never_stored_in_plaintext);
