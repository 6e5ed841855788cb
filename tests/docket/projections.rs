//! Read models: what the projections make of commands, exactly once across concurrent appliers
//! and restarts, rebuilt while the log grows, stopped by an event they cannot apply; time travel
//! over the log; reading one's own writes; and the `docket projections` and `docket demo`
//! commands.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use docket::domain::commands::*;
use docket::domain::events::*;
use docket::projection::rebuild::RebuildError;
use docket::projection::{Projection, ProjectionStatus, Projector, Tables, state, table_bases};
use docket::service::{AsOf, Committed, Service};
use docket::vault::{BlindKind, Column};
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use crate::on_both_backends;
use crate::support::{Backend, TestDocket, TestLog, as_user, one_event};

on_both_backends!(
    read_models_reflect_commands,
    each_event_is_applied_exactly_once_by_concurrent_projectors,
    a_rebuild_while_events_are_appended_keeps_the_contents_and_swaps_the_generation,
    an_event_a_projection_refuses_stops_only_that_projection,
    an_undecodable_event_stops_the_projections_that_read_it_and_no_others,
    status_reports_the_lag_behind_the_head,
    a_restarted_projector_resumes_from_its_checkpoint,
    matter_as_of_a_position_or_time_replays_the_log,
    a_command_reads_its_own_writes_without_catch_up,
    the_projections_and_demo_commands,
    a_failed_projection_is_ok_after_a_rebuild_when_fresh_tables_accept_its_event,
    a_changed_definition_rebuilds_on_open_with_the_same_contents,
    opening_a_projector_never_points_a_view_back_at_an_old_generation,
    a_rebuilt_projection_has_planner_statistics,
    read_models_hold_no_client_data_in_the_clear,
    contacts_and_conflicts_are_found_through_blind_indexes,
    an_erased_subject_reads_as_erased_and_loses_its_blind_indexes,
);

const MATTER: &str = "2026-0001";
const OTHER: &str = "2026-0002";

// ---- helpers -------------------------------------------------------------------------------

pub(crate) async fn open_matter(
    service: &Service,
    number: &str,
    title: &str,
    area: &str,
) -> Committed {
    let command = OpenMatter {
        matter_number: number.into(),
        title: title.into(),
        description: Some(format!("{title}: instructions received")),
        practice_area: area.into(),
        responsible_attorney: "a.okafor".into(),
        originating_attorney: Some("j.lindqvist".into()),
        opened_on: Some("2026-01-12".into()),
        ..OpenMatter::default()
    };
    service
        .open_matter(&as_user("a.okafor"), &command)
        .await
        .expect("matter opens")
}

pub(crate) async fn change(service: &Service, number: &str, command: MatterCommand) -> Committed {
    service
        .change_matter(&as_user("j.lindqvist"), number, &command)
        .await
        .unwrap_or_else(|error| panic!("{command:?} on {number}: {error}"))
}

async fn organisation(service: &Service, name: &str) -> String {
    let command = CreateContact {
        kind: ContactKind::Organisation,
        details: ContactDetails {
            display_name: name.into(),
            emails: vec![LabelledValue {
                value: "legal@example.com".into(),
                label: None,
            }],
            identifiers: vec![Identifier {
                scheme: "company_number".into(),
                value: "0741".into(),
            }],
            ..ContactDetails::default()
        },
    };
    service
        .create_contact(&as_user("a.okafor"), &command)
        .await
        .expect("contact is created")
        .0
}

pub(crate) fn note(body: &str, privileged: bool) -> MatterCommand {
    MatterCommand::AddNote(AddNote {
        privileged,
        subject: Some("Call".into()),
        body: body.into(),
    })
}

pub(crate) fn task(title: &str) -> MatterCommand {
    MatterCommand::CreateTask(CreateTask {
        title: title.into(),
        assignee: Some("j.lindqvist".into()),
        due_on: Some("2026-02-20".into()),
    })
}

fn time(minutes: u32) -> MatterCommand {
    MatterCommand::RecordTime(RecordTime {
        user_id: "j.lindqvist".into(),
        worked_on: "2026-01-14".into(),
        minutes,
        billable: true,
        description: "Drafting".into(),
    })
}

async fn count(pool: &AnyPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

async fn text(pool: &AnyPool, sql: &str) -> String {
    sqlx::query_scalar::<_, String>(AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// A read-model column opened with the vault, as the API opens it: the whole `private` member
/// of the event it came from.
async fn unseal(test: &TestDocket, column: &str) -> Value {
    let keys = test
        .docket
        .vault
        .keys_for_columns([column])
        .await
        .expect("keys load");
    match keys.open_column(column).expect("the column opens") {
        Column::Plain(value) => value,
        Column::Erased => panic!("the column is erased"),
    }
}

async fn statuses(projector: &Projector) -> BTreeMap<String, ProjectionStatus> {
    projector
        .status()
        .await
        .expect("status")
        .into_iter()
        .map(|status| (status.name.clone(), status))
        .collect()
}

async fn head(test: &TestDocket) -> u64 {
    test.docket.log.head().await.expect("head").position
}

/// Every read-model view, each row as text, in primary-key order.
pub(crate) async fn dump(pool: &AnyPool) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut views = BTreeMap::new();
    for projection in docket::projection::all() {
        for base in table_bases(projection.ddl()) {
            let sql = format!("SELECT * FROM rm_{base} ORDER BY 1, 2");
            let rows = sqlx::query(AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
                .expect("dump");
            views.insert(format!("rm_{base}"), rows.iter().map(row_text).collect());
        }
    }
    views
}

fn row_text(row: &AnyRow) -> Vec<String> {
    (0..row.len())
        .map(|index| {
            if let Ok(number) = row.try_get::<Option<i64>, _>(index) {
                return number.map_or_else(|| "NULL".to_owned(), |n| n.to_string());
            }
            row.try_get::<Option<String>, _>(index)
                .expect("read-model columns are text or integers")
                .unwrap_or_else(|| "NULL".to_owned())
        })
        .collect()
}

/// The projection called `name`.
fn projection(projector: &Projector, name: &str) -> Arc<dyn Projection> {
    projector
        .projections()
        .iter()
        .find(|p| p.name() == name)
        .unwrap_or_else(|| panic!("no projection {name}"))
        .clone()
}

/// The names of the read-model database's tables that start with `prefix`.
async fn tables_like(test: &TestDocket, prefix: &str) -> Vec<String> {
    let sql = match test.test.backend {
        Backend::Sqlite => format!(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '{prefix}%' \
             ORDER BY name"
        ),
        Backend::Postgres => format!(
            "SELECT CAST(tablename AS TEXT) FROM pg_tables WHERE schemaname = current_schema() \
             AND tablename LIKE '{prefix}%' ORDER BY tablename"
        ),
    };
    sqlx::query_scalar::<_, String>(AssertSqlSafe(sql))
        .fetch_all(test.pool())
        .await
        .expect("table names")
}

/// Total number of matter events (stream versions summed) according to the log.
async fn matter_events(service: &Service, numbers: &[&str]) -> i64 {
    let mut total = 0;
    for number in numbers {
        total += service
            .matter(number)
            .await
            .expect("matter")
            .expect("exists")
            .version as i64;
    }
    total
}

/// Two matters with a contact, parties, tasks, notes, a document in two versions, time, a
/// hearing and a custom field: one of every kind of event.
async fn populate(service: &Service) {
    open_matter(service, MATTER, "Harbor Freight v. Calder", "litigation").await;
    open_matter(
        service,
        OTHER,
        "Lease renewal, Quayside Unit 4",
        "real_estate",
    )
    .await;
    let client = organisation(service, "Harbor Freight Lines Ltd").await;
    let opponent = organisation(service, "Calder Logistics plc").await;
    let party = |contact_id: &str, role| {
        MatterCommand::AddParty(AddParty {
            contact_id: contact_id.to_owned(),
            role,
        })
    };
    change(service, MATTER, party(&client, PartyRole::Client)).await;
    change(service, MATTER, party(&opponent, PartyRole::OpposingParty)).await;
    change(service, OTHER, party(&client, PartyRole::Client)).await;
    change(service, MATTER, task("Serve particulars of claim")).await;
    change(service, MATTER, task("Instruct expert")).await;
    change(
        service,
        MATTER,
        note("Client confirms the delivery dates.", true),
    )
    .await;
    change(
        service,
        OTHER,
        note("Landlord wants a five-year term.", false),
    )
    .await;
    let content = service
        .store_content(
            MATTER,
            b"%PDF-1.4\nParticulars of claim v1\n%%EOF\n",
            "application/pdf",
            Some("particulars.pdf".into()),
            "j.lindqvist",
        )
        .await
        .expect("content is stored");
    change(
        service,
        MATTER,
        MatterCommand::AddDocument(AddDocument {
            document_type: "pleading".into(),
            title: "Particulars of claim".into(),
            description: None,
            content,
        }),
    )
    .await;
    let document_id = service
        .matter(MATTER)
        .await
        .expect("matter")
        .expect("exists")
        .documents
        .into_keys()
        .next()
        .expect("the document");
    let content = service
        .store_content(
            MATTER,
            b"%PDF-1.4\nParticulars of claim v2\n%%EOF\n",
            "application/pdf",
            Some("particulars-v2.pdf".into()),
            "j.lindqvist",
        )
        .await
        .expect("content is stored");
    change(
        service,
        MATTER,
        MatterCommand::AddDocumentVersion {
            document_id,
            content,
        },
    )
    .await;
    change(
        service,
        MATTER,
        MatterCommand::ScheduleCalendarEntry(ScheduleCalendarEntry {
            kind: CalendarKind::Hearing,
            title: "Case management conference".into(),
            starts_at: "2026-03-02T10:00:00Z".into(),
            ends_at: None,
            all_day: false,
            rule: None,
            location: Some("Court 4".into()),
        }),
    )
    .await;
    change(service, MATTER, time(90)).await;
    change(service, OTHER, time(30)).await;
    service
        .define_custom_field(
            &as_user("a.okafor"),
            &DefineCustomField {
                key: "referral_source".into(),
                label: "Referral source".into(),
                kind: FieldKind::Choice,
                choices: vec!["website".into(), "existing_client".into()],
                sensitive: false,
            },
        )
        .await
        .expect("field is defined");
    change(
        service,
        MATTER,
        MatterCommand::SetCustomField(SetCustomField {
            key: "referral_source".into(),
            value: Some(json!("existing_client")),
        }),
    )
    .await;
    change(
        service,
        MATTER,
        MatterCommand::ChangeDetails(ChangeMatterDetails {
            title: Some("Harbor Freight Lines v. Calder Logistics".into()),
            ..ChangeMatterDetails::default()
        }),
    )
    .await;
}

// ---- tests ---------------------------------------------------------------------------------

async fn read_models_reflect_commands(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    populate(service).await;
    test.projector().catch_up().await.expect("catch up");
    let pool = test.pool();

    let matter: (String, String, String, String, i64, String) = sqlx::query_as(
        "SELECT title, status, practice_area, responsible_attorney, version, custom_fields \
         FROM rm_matters WHERE number = '2026-0001'",
    )
    .fetch_one(pool)
    .await
    .expect("matter row");
    let folded = service.matter(MATTER).await.unwrap().unwrap();
    assert_eq!(matter.0, "Harbor Freight Lines v. Calder Logistics");
    assert_eq!(matter.1, "open");
    assert_eq!(matter.2, "litigation");
    assert_eq!(matter.3, "a.okafor");
    assert_eq!(
        matter.4, folded.version as i64,
        "the row has the stream's version"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&matter.5).unwrap(),
        json!({"referral_source": "existing_client"})
    );
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_matters").await, 2);
    assert_eq!(
        text(pool, "SELECT capacity FROM rm_matter_team WHERE matter_number = '2026-0001' AND user_id = 'a.okafor'").await,
        "responsible_attorney"
    );
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_matter_team").await, 4);
    assert_eq!(
        text(pool, "SELECT kind FROM rm_custom_fields").await,
        "choice"
    );

    assert_eq!(
        count(
            pool,
            "SELECT COUNT(*) FROM rm_contacts WHERE kind = 'organisation'"
        )
        .await,
        2
    );
    let calder = test.docket.vault.blind(BlindKind::Name, "calder");
    assert_eq!(
        count(
            pool,
            &format!(
                "SELECT COUNT(*) FROM rm_contact_tokens WHERE kind = 'name' AND blind = '{calder}'"
            )
        )
        .await,
        1,
        "contact names are tokenised, and blind-indexed, for conflict searches"
    );
    let opponent = text(
        pool,
        "SELECT c.private FROM rm_parties p JOIN rm_contacts c ON c.contact_id = p.contact_id \
         WHERE p.matter_number = '2026-0001' AND p.role = 'opposing_party'",
    )
    .await;
    assert_eq!(
        unseal(&test, &opponent).await["display_name"],
        json!("Calder Logistics plc")
    );
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_parties").await, 3);

    assert_eq!(
        count(
            pool,
            "SELECT COUNT(*) FROM rm_tasks WHERE matter_number = '2026-0001' AND status = 'open'"
        )
        .await,
        2
    );
    assert_eq!(
        text(
            pool,
            "SELECT kind FROM rm_calendar WHERE matter_number = '2026-0001'"
        )
        .await,
        "hearing"
    );
    assert_eq!(
        count(
            pool,
            "SELECT privileged FROM rm_notes WHERE matter_number = '2026-0001'"
        )
        .await,
        1
    );
    assert_eq!(
        text(
            pool,
            "SELECT author FROM rm_notes WHERE matter_number = '2026-0001'"
        )
        .await,
        "user:j.lindqvist"
    );
    assert_eq!(
        count(
            pool,
            "SELECT latest_version FROM rm_documents WHERE matter_number = '2026-0001'"
        )
        .await,
        2
    );
    let versions: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT version, content_hash, size FROM rm_document_versions ORDER BY version",
    )
    .fetch_all(pool)
    .await
    .expect("versions");
    assert_eq!(versions.len(), 2);
    let bytes = b"%PDF-1.4\nParticulars of claim v2\n%%EOF\n";
    let hash = blake3::hash(bytes).to_hex().to_string();
    assert_eq!(versions[1], (2, hash.clone(), bytes.len() as i64));
    assert_eq!(
        service.content(MATTER, &hash).await.unwrap().as_deref(),
        Some(&bytes[..])
    );
    assert_eq!(
        count(
            pool,
            "SELECT CAST(SUM(minutes) AS BIGINT) FROM rm_time_entries"
        )
        .await,
        120
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM rm_timeline").await,
        matter_events(service, &[MATTER, OTHER]).await,
        "one timeline row per matter event"
    );
    let fields = text(
        pool,
        "SELECT changed_fields FROM rm_timeline WHERE event_type = 'matter.details_changed'",
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&fields).unwrap(),
        json!(["title"])
    );

    // A later change is an update of the same rows.
    let task_id = text(
        pool,
        "SELECT task_id FROM rm_tasks WHERE title = 'Instruct expert'",
    )
    .await;
    change(
        service,
        MATTER,
        MatterCommand::SetTaskStatus {
            task_id,
            to: TaskStatus::Completed,
        },
    )
    .await;
    test.projector().catch_up().await.expect("catch up");
    assert_eq!(
        text(
            pool,
            "SELECT status FROM rm_tasks WHERE title = 'Instruct expert'"
        )
        .await,
        "completed"
    );
    for status in statuses(test.projector()).await.values() {
        assert_eq!(
            (status.status.as_str(), status.lag),
            ("ok", 0),
            "{status:?}"
        );
    }
}

async fn each_event_is_applied_exactly_once_by_concurrent_projectors(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let first = test.projector().clone();
    let second = Projector::open(
        test.test.open_read_db().await,
        test.docket.log.store().clone(),
        test.docket.vault.clone(),
    )
    .await
    .expect("second projector");
    let done = Arc::new(AtomicBool::new(false));
    let stepper = |projector: Arc<Projector>| {
        let done = done.clone();
        tokio::spawn(async move {
            let mut rounds = 0u32;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let busy = projector.step().await.expect("a round");
                rounds += 1;
                if finished && !busy {
                    return rounds;
                }
                if !busy {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };
    let steppers = [stepper(first.clone()), stepper(second.clone())];

    let service = test.service();
    let numbers = ["2026-0101", "2026-0102", "2026-0103"];
    for number in numbers {
        open_matter(service, number, "Concurrent appliers", "litigation").await;
    }
    for round in 0..8 {
        for number in numbers {
            change(
                service,
                number,
                note(&format!("note {round}"), round % 2 == 0),
            )
            .await;
            change(service, number, task(&format!("task {round}"))).await;
            change(service, number, time(10 + round)).await;
        }
    }
    done.store(true, Ordering::SeqCst);
    for stepper in steppers {
        assert!(stepper.await.expect("stepper") > 1);
    }
    first.catch_up().await.expect("catch up");
    second.catch_up().await.expect("catch up");

    let head = head(&test).await;
    for status in statuses(&second).await.values() {
        assert_eq!(status.status, "ok", "{status:?}");
        assert_eq!(status.position, head, "{status:?}");
    }
    let pool = test.pool();
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM rm_timeline").await,
        matter_events(service, &numbers).await
    );
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_notes").await, 24);
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_tasks").await, 24);
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM rm_time_entries").await,
        24
    );
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_matter_team").await, 6);
    for number in numbers {
        let version = service.matter(number).await.unwrap().unwrap().version as i64;
        let sql = format!("SELECT version FROM rm_matters WHERE number = '{number}'");
        assert_eq!(count(pool, &sql).await, version);
    }
}

async fn a_rebuild_while_events_are_appended_keeps_the_contents_and_swaps_the_generation(
    backend: Backend,
) {
    const NEW: &str = "2026-0100";
    let test = TestDocket::new(backend).await;
    populate(test.service()).await;
    test.projector().catch_up().await.expect("catch up");
    let before = dump(test.pool()).await;
    let generations_before = statuses(test.projector()).await;

    // The server's projector keeps running; another process rebuilds.
    let live = test.projector().spawn();
    let rebuilder = Projector::open(
        test.test.open_read_db().await,
        test.docket.log.store().clone(),
        test.docket.vault.clone(),
    )
    .await
    .expect("rebuilding projector");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let service = test.docket.service.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            open_matter(&service, NEW, "Appended during the rebuild", "employment").await;
            let mut notes = 0;
            while notes < 10 || !stop.load(Ordering::SeqCst) {
                change(&service, NEW, note(&format!("note {notes}"), false)).await;
                change(&service, NEW, task(&format!("task {notes}"))).await;
                notes += 1;
            }
            notes
        })
    };
    // Let the writer get going, then rebuild everything, twice over.
    while test.service().matter(NEW).await.unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let head_at_start = head(&test).await;
    let mut reports = Vec::new();
    for _ in 0..2 {
        for projection in rebuilder.projections() {
            reports.push(
                rebuilder
                    .rebuild(projection.as_ref())
                    .await
                    .expect("rebuild"),
            );
        }
    }
    let head_at_end = head(&test).await;
    stop.store(true, Ordering::SeqCst);
    let notes = writer.await.expect("writer");
    assert!(
        head_at_end > head_at_start,
        "events were appended during the rebuilds"
    );
    assert!(
        reports
            .iter()
            .all(|report| report.events > 0 && report.position > 0)
    );

    let progress = test.projector().catch_up().await.expect("catch up");
    assert!(progress.failed.is_empty(), "{progress:?}");
    live.abort();
    let head = head(&test).await;
    let after = statuses(test.projector()).await;
    for (name, status) in &after {
        assert_eq!(
            (status.status.as_str(), status.position),
            ("ok", head),
            "{status:?}"
        );
        let old = generations_before[name].generation;
        assert!(
            status.generation > old,
            "{name} was swapped to a new generation"
        );
        let last = reports
            .iter()
            .rev()
            .find(|report| &report.name == name)
            .unwrap();
        assert_eq!(status.generation, last.generation);
    }

    // The same contents as before, plus exactly the new matter's rows.
    let contents = dump(test.pool()).await;
    for (view, rows) in &contents {
        let old: Vec<&Vec<String>> = rows
            .iter()
            .filter(|row| !row.iter().any(|cell| cell == NEW))
            .collect();
        let expected: Vec<&Vec<String>> = before[view].iter().collect();
        assert_eq!(old, expected, "{view} kept its rows through the rebuilds");
    }
    let pool = test.pool();
    let sql = format!("SELECT COUNT(*) FROM rm_timeline WHERE matter_number = '{NEW}'");
    assert_eq!(
        count(pool, &sql).await,
        matter_events(test.service(), &[NEW]).await
    );
    let sql = format!("SELECT COUNT(*) FROM rm_notes WHERE matter_number = '{NEW}'");
    assert_eq!(count(pool, &sql).await, notes);
    let sql = format!("SELECT COUNT(*) FROM rm_tasks WHERE matter_number = '{NEW}'");
    assert_eq!(count(pool, &sql).await, notes);

    // The views read the new generation; the old tables are gone.
    let timeline = &after["timeline"];
    let table = format!("SELECT COUNT(*) FROM rm_timeline_g{}", timeline.generation);
    assert_eq!(
        count(pool, &table).await,
        count(pool, "SELECT COUNT(*) FROM rm_timeline").await
    );
    let old = format!(
        "SELECT COUNT(*) FROM rm_timeline_g{}",
        generations_before["timeline"].generation
    );
    assert!(
        sqlx::query(AssertSqlSafe(old))
            .fetch_one(pool)
            .await
            .is_err()
    );
}

async fn an_event_a_projection_refuses_stops_only_that_projection(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    open_matter(service, MATTER, "Refused note", "family").await;
    change(service, MATTER, note("First", false)).await;
    let note_id = service
        .matter(MATTER)
        .await
        .unwrap()
        .unwrap()
        .notes
        .into_keys()
        .next()
        .unwrap();

    // A well-formed note whose id is already taken: the notes table refuses it.
    let payload = json!({"note_id": note_id, "privileged": false, "private": {"body": "again"}});
    let refused = test
        .docket
        .log
        .append(one_event("matter:2026-0001", "matter.note_added", payload))
        .await
        .expect("raw append")
        .last_position;
    open_matter(service, OTHER, "Afterwards", "family").await;
    change(service, OTHER, note("After the refused one", false)).await;
    change(service, OTHER, task("After the refused one")).await;
    let progress = test.projector().catch_up().await.expect("catch up");
    assert_eq!(progress.failed, vec!["notes".to_owned()]);

    let head = head(&test).await;
    let status = statuses(test.projector()).await;
    let notes = &status["notes"];
    assert_eq!(notes.status, "failed");
    assert_eq!(notes.failed_position, Some(refused));
    assert_eq!(notes.position, refused - 1, "the events before it are kept");
    assert_eq!(notes.lag, head - (refused - 1));
    let reason = notes.error.as_deref().unwrap_or_default();
    assert!(reason.contains("database refused the change"), "{reason}");
    for name in [
        "matters",
        "timeline",
        "work",
        "contacts",
        "parties",
        "documents",
        "time_entries",
    ] {
        let other = &status[name];
        assert_eq!(
            (other.status.as_str(), other.position),
            ("ok", head),
            "{other:?}"
        );
        assert_eq!(
            (other.failed_position, other.error.as_deref()),
            (None, None)
        );
    }
    let pool = test.pool();
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM rm_notes").await,
        1,
        "notes stopped"
    );
    let sql = format!("SELECT COUNT(*) FROM rm_timeline WHERE position >= {refused}");
    assert_eq!(
        count(pool, &sql).await,
        (head - refused + 1) as i64,
        "timeline went past it"
    );
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_tasks").await, 1);

    // It stays stopped until rebuilt, and a rebuild meets the same event.
    assert!(!test.projector().step().await.expect("a round"));
    let notes_projection = test
        .projector()
        .projections()
        .iter()
        .find(|p| p.name() == "notes")
        .unwrap()
        .clone();
    match test.projector().rebuild(notes_projection.as_ref()).await {
        Err(RebuildError::Event { position, .. }) => assert_eq!(position, refused),
        other => panic!("rebuild should meet the refused event: {other:?}"),
    }
    assert_eq!(
        statuses(test.projector()).await["notes"],
        *notes,
        "a failed rebuild changes nothing"
    );
    // Commands still succeed and are reported projected: only healthy projections count.
    let waited = test
        .projector()
        .wait_for(head, Duration::from_secs(1))
        .await;
    assert_eq!(
        waited,
        docket::projection::WaitOutcome::Reached {
            failed: vec!["notes".to_owned()]
        }
    );
}

async fn an_undecodable_event_stops_the_projections_that_read_it_and_no_others(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    open_matter(service, MATTER, "Malformed note", "corporate").await;
    // A payload that is a JSON object but not a `matter.note_added`.
    let payload = json!({"note_id": 7, "text": "no body, no privileged flag"});
    let malformed = test
        .docket
        .log
        .append(one_event("matter:2026-0001", "matter.note_added", payload))
        .await
        .expect("raw append")
        .last_position;
    let client = organisation(service, "Solent Photonics Ltd").await;
    open_matter(service, OTHER, "Afterwards", "corporate").await;
    change(
        service,
        OTHER,
        MatterCommand::AddParty(AddParty {
            contact_id: client,
            role: PartyRole::Client,
        }),
    )
    .await;
    change(service, OTHER, task("After the malformed one")).await;
    change(service, OTHER, time(45)).await;
    test.projector().catch_up().await.expect("catch up");

    let head = head(&test).await;
    let status = statuses(test.projector()).await;
    // Every projection that reads `matter.note_added` needs its payload: notes for the note,
    // matters for the matter's version, timeline for the changed fields.
    for name in ["notes", "matters", "timeline"] {
        let stopped = &status[name];
        assert_eq!(stopped.status, "failed", "{stopped:?}");
        assert_eq!(stopped.failed_position, Some(malformed));
        assert_eq!(stopped.position, malformed - 1);
        let reason = stopped.error.as_deref().unwrap_or_default();
        assert!(reason.contains("does not match its schema"), "{reason}");
    }
    for name in ["contacts", "parties", "work", "time_entries", "documents"] {
        let other = &status[name];
        assert_eq!(
            (other.status.as_str(), other.position),
            ("ok", head),
            "{other:?}"
        );
    }
    let pool = test.pool();
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_parties").await, 1);
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_tasks").await, 1);
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_time_entries").await, 1);
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM rm_matters").await,
        1,
        "matters stopped"
    );
}

async fn status_reports_the_lag_behind_the_head(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let initial = statuses(test.projector()).await;
    assert_eq!(initial.len(), docket::projection::all().len());
    let genesis = head(&test).await;
    for status in initial.values() {
        assert_eq!(
            (status.position, status.lag, status.generation),
            (0, genesis, 1),
            "{status:?}"
        );
    }
    test.projector().catch_up().await.expect("catch up");
    let caught_up = head(&test).await;

    let service = test.service();
    // Three events (opened, and two team members), then two more.
    open_matter(service, MATTER, "Lagging", "ip").await;
    change(service, MATTER, note("One", false)).await;
    change(service, MATTER, task("Two")).await;
    let now = head(&test).await;
    assert_eq!(now - caught_up, 5);
    for status in statuses(test.projector()).await.values() {
        assert_eq!((status.position, status.lag), (caught_up, 5), "{status:?}");
    }
    assert!(test.projector().step().await.expect("a round"));
    for status in statuses(test.projector()).await.values() {
        assert_eq!(
            (status.status.as_str(), status.position, status.lag),
            ("ok", now, 0)
        );
    }
}

async fn a_restarted_projector_resumes_from_its_checkpoint(backend: Backend) {
    let test = TestLog::new(backend).await;
    let first = test.open_docket(Duration::ZERO).await;
    populate(&first.service).await;
    first.projector.catch_up().await.expect("catch up");
    let checkpoints = first.projector.status().await.expect("status");
    let contents = dump(first.projector.db().pool()).await;
    // Appended, never projected, before the "crash".
    change(
        &first.service,
        OTHER,
        note("Written before the restart", false),
    )
    .await;
    change(&first.service, OTHER, task("Written before the restart")).await;
    drop(first);

    let second = test.open_docket(Duration::ZERO).await;
    let reopened = second.projector.status().await.expect("status");
    for (before, after) in checkpoints.iter().zip(&reopened) {
        assert_eq!(
            (&before.name, before.position, before.generation),
            (&after.name, after.position, after.generation),
            "the checkpoint survives and no rebuild happens"
        );
        assert_eq!(after.lag, 2);
    }
    assert_eq!(dump(second.projector.db().pool()).await, contents);
    change(&second.service, OTHER, time(15)).await;
    second.projector.catch_up().await.expect("catch up");
    let pool = second.projector.db().pool();
    let service = &second.service;
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM rm_timeline").await,
        matter_events(service, &[MATTER, OTHER]).await
    );
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_notes").await, 3);
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_tasks").await, 3);
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_time_entries").await, 3);
    let head = second.log.head().await.unwrap().position;
    for status in second.projector.status().await.unwrap() {
        assert_eq!((status.status.as_str(), status.position), ("ok", head));
    }
}

async fn matter_as_of_a_position_or_time_replays_the_log(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    let opened = open_matter(service, MATTER, "Original title", "employment").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let renamed = change(
        service,
        MATTER,
        MatterCommand::ChangeDetails(ChangeMatterDetails {
            title: Some("Renamed title".into()),
            ..ChangeMatterDetails::default()
        }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    change(service, MATTER, note("Later", false)).await;
    test.projector().catch_up().await.expect("catch up");

    let at = |as_of| async move { service.matter_as_of(MATTER, as_of).await.expect("as of") };
    assert_eq!(
        at(AsOf::Position(opened.first_position - 1)).await,
        None,
        "not yet opened"
    );
    let first = at(AsOf::Position(opened.last_position))
        .await
        .expect("opened");
    assert_eq!((first.title.as_str(), first.version), ("Original title", 3));
    let second = at(AsOf::Position(renamed.last_position))
        .await
        .expect("renamed");
    assert_eq!(
        (second.title.as_str(), second.notes.len()),
        ("Renamed title", 0)
    );
    let now = service.matter(MATTER).await.unwrap().unwrap();
    assert_eq!((now.title.as_str(), now.notes.len()), ("Renamed title", 1));

    // By time: the recorded time of the opening, and a time after everything.
    let opened_at = first.created_at.clone();
    let by_time = at(AsOf::Time(&opened_at)).await.expect("opened by then");
    assert_eq!(by_time.title, "Original title");
    assert_eq!(by_time, first);
    let later = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    assert_eq!(at(AsOf::Time(&later)).await.unwrap(), now);
    assert_eq!(at(AsOf::Time("2000-01-01T00:00:00Z")).await, None);
    assert!(
        service
            .matter_as_of(MATTER, AsOf::Time("yesterday"))
            .await
            .is_err()
    );

    // The read model has only the present.
    assert_eq!(
        text(test.pool(), "SELECT title FROM rm_matters").await,
        "Renamed title"
    );
}

async fn a_command_reads_its_own_writes_without_catch_up(backend: Backend) {
    let test = TestDocket::with_wait(backend, Duration::from_secs(5)).await;
    let background = test.projector().spawn();
    let service = test.service();
    let pool = test.pool();

    let opened = open_matter(service, MATTER, "Read your writes", "litigation").await;
    assert!(opened.projected);
    assert_eq!(
        text(pool, "SELECT title FROM rm_matters").await,
        "Read your writes"
    );
    let renamed = change(
        service,
        MATTER,
        MatterCommand::ChangeDetails(ChangeMatterDetails {
            title: Some("Read your own writes".into()),
            ..ChangeMatterDetails::default()
        }),
    )
    .await;
    assert!(renamed.projected);
    assert_eq!(
        text(pool, "SELECT title FROM rm_matters").await,
        "Read your own writes"
    );
    let noted = change(service, MATTER, note("Visible at once", true)).await;
    assert!(noted.projected);
    let sealed = text(pool, "SELECT private FROM rm_notes").await;
    assert_eq!(
        unseal(&test, &sealed).await["body"],
        json!("Visible at once")
    );
    let sql = format!(
        "SELECT COUNT(*) FROM rm_timeline WHERE position <= {}",
        noted.last_position
    );
    assert_eq!(
        count(pool, &sql).await,
        5,
        "opened, two team members, renamed, noted"
    );
    background.abort();
}

async fn the_projections_and_demo_commands(backend: Backend) {
    let test = TestLog::new(backend).await;
    let run = |args: &[&str]| {
        let output = test
            .docket_command()
            .args(args)
            .output()
            .expect("docket runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stdout, stderr)
    };

    let (code, stdout, stderr) = run(&["demo"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("docket serve --data-dir"), "{stdout}");
    assert!(
        stdout.contains("http://127.0.0.1:8080/graphiql"),
        "{stdout}"
    );
    assert!(stdout.contains("12 matters"), "{stdout}");
    // One enrolled user per role, with their credentials, for local exploration.
    for role in [
        "admin",
        "partner",
        "attorney",
        "paralegal",
        "staff",
        "auditor",
    ] {
        assert!(
            stdout.contains(&format!("  {role:<10} ")),
            "{role}: {stdout}"
        );
    }
    assert!(stdout.contains("otpauth://totp/Docket:"), "{stdout}");
    if let Some(url) = &test.database_url {
        assert!(!stdout.contains(url.as_str()) && !stderr.contains(url.as_str()));
    }
    let (code, _, stderr) = run(&["demo"]);
    assert_eq!(code, Some(2), "a second demo is refused: {stderr}");
    assert!(stderr.contains("already has case records"), "{stderr}");

    let (code, stdout, _) = run(&["projections", "status", "--json"]);
    assert_eq!(code, Some(0), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).expect("json");
    let head = report["head"].as_u64().expect("head");
    let projections = report["projections"].as_array().expect("projections");
    assert_eq!(projections.len(), docket::projection::all().len());
    for projection in projections {
        assert_eq!(projection["status"], "ok", "{projection}");
        assert_eq!(
            (projection["position"].as_u64(), projection["lag"].as_u64()),
            (Some(head), Some(0))
        );
    }

    let (code, stdout, stderr) = run(&["projections", "rebuild"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for projection in docket::projection::all() {
        assert!(stdout.contains(projection.name()), "{stdout}");
    }
    assert!(stdout.contains("events/s"), "{stdout}");
    let (code, stdout, _) = run(&["projections", "rebuild", "timeline"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("timeline") && !stdout.contains("matters"),
        "{stdout}"
    );
    let (code, _, stderr) = run(&["projections", "rebuild", "no_such"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no projection named no_such"), "{stderr}");

    // A projection stopped on an event: status says where and why, and exits 1.
    {
        let docket = test.open_docket(Duration::ZERO).await;
        let payload = json!({"note_id": 7});
        docket
            .log
            .append(one_event("matter:2026-0001", "matter.note_added", payload))
            .await
            .expect("raw append");
        docket.projector.catch_up().await.expect("catch up");
    }
    let (code, stdout, _) = run(&["projections", "status"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("failed"), "{stdout}");
    assert!(stdout.contains("does not match its schema"), "{stdout}");
    let (code, stdout, _) = run(&["projections", "status", "--json"]);
    assert_eq!(code, Some(1));
    let report: Value = serde_json::from_str(&stdout).expect("json");
    let notes = report["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "notes")
        .unwrap()
        .clone();
    assert_eq!(notes["status"], "failed");
    assert_eq!(notes["failed_position"].as_u64(), report["head"].as_u64());
    let (code, stdout, stderr) = run(&["projections", "rebuild", "notes"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
}

async fn a_failed_projection_is_ok_after_a_rebuild_when_fresh_tables_accept_its_event(
    backend: Backend,
) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    open_matter(service, MATTER, "Stray read-model row", "family").await;
    test.projector().catch_up().await.expect("catch up");
    let noted = change(service, MATTER, note("First", false)).await;
    let note_id = service
        .matter(MATTER)
        .await
        .unwrap()
        .unwrap()
        .notes
        .into_keys()
        .next()
        .unwrap();
    // The log is sound; the current notes table is not: it already holds a row with the id the
    // next event adds (left behind by hand, say), so the table refuses that event.
    let old = statuses(test.projector()).await["notes"].generation;
    let stray = format!(
        "INSERT INTO rm_notes_g{old} (note_id, matter_number, privileged, private, author, \
         position, created_at) VALUES ('{note_id}', 'stray', 0, '{{\"body\":\"left behind\"}}', \
         'user:nobody', 0, '2026-01-01T00:00:00Z')"
    );
    sqlx::query(AssertSqlSafe(stray))
        .execute(test.pool())
        .await
        .expect("stray row");
    let progress = test.projector().catch_up().await.expect("catch up");
    assert_eq!(progress.failed, vec!["notes".to_owned()]);
    let failed = statuses(test.projector()).await["notes"].clone();
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.failed_position, Some(noted.last_position));
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("database refused the change"),
        "{failed:?}"
    );

    // A rebuild folds the same log into fresh tables, where the event applies after all.
    let notes = projection(test.projector(), "notes");
    let report = test
        .projector()
        .rebuild(notes.as_ref())
        .await
        .expect("the rebuild applies the event the old tables refused");
    let head = head(&test).await;
    assert_eq!(report.position, head);
    let rebuilt = statuses(test.projector()).await["notes"].clone();
    assert_eq!(
        (
            rebuilt.status.as_str(),
            rebuilt.position,
            rebuilt.lag,
            rebuilt.generation
        ),
        ("ok", head, 0, report.generation)
    );
    assert!(rebuilt.generation > old);
    assert_eq!((rebuilt.failed_position, rebuilt.error), (None, None));
    let pool = test.pool();
    let sealed = text(pool, "SELECT private FROM rm_notes").await;
    assert_eq!(unseal(&test, &sealed).await["body"], json!("First"));
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_notes").await, 1);
    assert_eq!(
        tables_like(&test, "rm_notes_g").await,
        vec![format!("rm_notes_g{}", report.generation)],
        "the old generation, stray row and all, is dropped"
    );

    // The live projector carries on from the rebuilt checkpoint.
    let live = test.projector().spawn();
    change(service, MATTER, note("Second", true)).await;
    let head = test.docket.log.head().await.unwrap().position;
    assert_eq!(
        test.projector()
            .wait_for(head, Duration::from_secs(10))
            .await,
        docket::projection::WaitOutcome::Reached { failed: vec![] }
    );
    live.abort();
    assert_eq!(count(pool, "SELECT COUNT(*) FROM rm_notes").await, 2);
    for status in statuses(test.projector()).await.values() {
        assert_eq!(
            (status.status.as_str(), status.position),
            ("ok", head),
            "{status:?}"
        );
    }
}

async fn a_changed_definition_rebuilds_on_open_with_the_same_contents(backend: Backend) {
    let test = TestLog::new(backend).await;
    let first = test.open_docket(Duration::ZERO).await;
    populate(&first.service).await;
    first.projector.catch_up().await.expect("catch up");
    let before = first.projector.status().await.expect("status");
    let contents = dump(first.projector.db().pool()).await;
    // As if the timeline's DDL had changed since its tables were built.
    sqlx::query("UPDATE projection_state SET definition = 'outdated' WHERE name = 'timeline'")
        .execute(first.projector.db().pool())
        .await
        .expect("update");
    drop(first);

    let second = test.open_docket(Duration::ZERO).await;
    let head = second.log.head().await.unwrap().position;
    let after = second.projector.status().await.expect("status");
    assert_eq!(before.len(), after.len());
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.name, new.name);
        assert_eq!((new.status.as_str(), new.position), ("ok", head), "{new:?}");
        if new.name == "timeline" {
            assert!(new.generation > old.generation, "timeline was rebuilt");
        } else {
            assert_eq!(
                new.generation, old.generation,
                "{} was not rebuilt",
                new.name
            );
        }
    }
    let pool = second.projector.db().pool();
    assert_eq!(
        dump(pool).await,
        contents,
        "the rebuild has the same contents"
    );
    let definition = projection(&second.projector, "timeline").definition();
    let sql = "SELECT definition FROM projection_state WHERE name = 'timeline'";
    assert_eq!(text(pool, sql).await, definition);
    let old = before.iter().find(|s| s.name == "timeline").unwrap();
    let sql = format!("SELECT COUNT(*) FROM rm_timeline_g{}", old.generation);
    assert!(
        sqlx::query(AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .is_err(),
        "the old generation is dropped"
    );

    // Opened again with the definition recorded, nothing is rebuilt.
    drop(second);
    let third = test.open_docket(Duration::ZERO).await;
    let again = third.projector.status().await.expect("status");
    for (rebuilt, reopened) in after.iter().zip(&again) {
        assert_eq!(rebuilt.generation, reopened.generation, "{reopened:?}");
    }
}

async fn opening_a_projector_never_points_a_view_back_at_an_old_generation(backend: Backend) {
    let test = TestDocket::new(backend).await;
    populate(test.service()).await;
    test.projector().catch_up().await.expect("catch up");
    let rows = count(test.pool(), "SELECT COUNT(*) FROM rm_timeline").await;
    assert!(rows > 0);
    let timeline = projection(test.projector(), "timeline");
    let old = Tables {
        generation: statuses(test.projector()).await["timeline"].generation,
    };
    let report = test
        .projector()
        .rebuild(timeline.as_ref())
        .await
        .expect("rebuild");

    // What a projector that read the state row just before the swap does: it ensures the old
    // generation's tables and views. The views must stay on the new generation, so that the
    // old tables can still be dropped (PostgreSQL refuses to drop a table a view reads).
    let db = test.projector().db();
    let mut connection = db.pool().acquire().await.expect("connection");
    state::create_tables(&mut connection, timeline.as_ref(), old)
        .await
        .expect("old tables");
    state::create_views(db, &mut connection, timeline.as_ref(), old, false)
        .await
        .expect("views");
    let current = format!("SELECT COUNT(*) FROM rm_timeline_g{}", report.generation);
    assert_eq!(count(test.pool(), &current).await, rows);
    assert_eq!(
        count(test.pool(), "SELECT COUNT(*) FROM rm_timeline").await,
        rows,
        "the view still reads the new generation"
    );
    state::drop_tables(&mut connection, timeline.as_ref(), old)
        .await
        .expect("nothing depends on the old generation");
    drop(connection);

    // Projectors opening over and over while the timeline is rebuilt over and over.
    let done = Arc::new(AtomicBool::new(false));
    let opener = {
        let db = db.clone();
        let store = test.docket.log.store().clone();
        let vault = test.docket.vault.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut opened = 0u32;
            while opened == 0 || !done.load(Ordering::SeqCst) {
                Projector::open(db.clone(), store.clone(), vault.clone())
                    .await
                    .expect("a projector opens during rebuilds");
                opened += 1;
            }
            opened
        })
    };
    let mut last = report;
    for _ in 0..4 {
        last = test
            .projector()
            .rebuild(timeline.as_ref())
            .await
            .expect("a rebuild while projectors open");
    }
    done.store(true, Ordering::SeqCst);
    assert!(opener.await.expect("opener") > 0);
    let status = statuses(test.projector()).await["timeline"].clone();
    assert_eq!(
        (status.status.as_str(), status.generation),
        ("ok", last.generation)
    );
    assert_eq!(
        count(test.pool(), "SELECT COUNT(*) FROM rm_timeline").await,
        rows
    );
    assert_eq!(
        tables_like(&test, "rm_timeline_g").await,
        vec![format!("rm_timeline_g{}", last.generation)],
        "only the served generation is left"
    );
}

async fn a_rebuilt_projection_has_planner_statistics(backend: Backend) {
    let test = TestDocket::new(backend).await;
    open_matter(test.service(), MATTER, "Okafor v Brightline", "employment").await;
    test.projector().catch_up().await.unwrap();
    let matters = projection(test.projector(), "matters");
    let report = test.projector().rebuild(matters.as_ref()).await.unwrap();
    let table = format!("rm_matters_g{}", report.generation);
    let analyzed = match backend {
        // ANALYZE records a row per analysed table and index in sqlite_stat1.
        Backend::Sqlite => {
            count(
                test.pool(),
                &format!("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = '{table}'"),
            )
            .await
        }
        // A table never analysed has reltuples = -1.
        Backend::Postgres => {
            count(
                test.pool(),
                &format!(
                    "SELECT COUNT(*) FROM pg_class WHERE relname = '{table}' AND reltuples >= 0"
                ),
            )
            .await
        }
    };
    assert!(analyzed > 0, "{table} has no statistics");
}

// ---- client data at rest -------------------------------------------------------------------

/// A partner signed in to the GraphQL API over a test's Docket.
struct Reader {
    schema: docket::api::graphql::DocketSchema,
    partner: crate::support::SignedIn,
}

impl Reader {
    async fn new(test: &TestDocket) -> Self {
        let docket = &test.docket;
        let schema = docket::api::graphql::build(
            docket.service.clone(),
            docket.projector.db().clone(),
            docket.identity.clone(),
            docket.checkpoints.clone(),
            docket.integrations.clone(),
        );
        let partner = crate::support::sign_in(
            &docket.identity,
            "a.okafor",
            docket::domain::identity::Role::Partner,
        )
        .await;
        Reader { schema, partner }
    }

    /// Runs `query` as the partner; fails the test on any error.
    async fn ok(&self, test: &TestDocket, query: &str) -> Value {
        let request = async_graphql::Request::new(query);
        let caller = crate::support::caller(&test.docket, Some(self.partner.principal.clone()));
        let request = docket::api::graphql::with_loaders(request, test.docket.projector.db())
            .data(caller.clone());
        let response = self.schema.execute(request).await;
        caller.flush("test").await.expect("access recorded");
        let response = serde_json::to_value(&response).expect("json");
        assert!(response.get("errors").is_none(), "{response}");
        response["data"].clone()
    }
}

/// Words found only in the client data of [`client_data`], never in what is not client data.
const MARKERS: &[&str] = &[
    "quillon",
    "marrowby",
    "vexmail",
    "900917",
    "thistlewick",
    "xk4471902",
    "brambleworth",
    "ozymandine",
    "pemberthwaite",
    "gorsefield",
    "hollowmere",
    "tarrowgate",
    "wyndcliffe",
    "fennimore",
];

/// A matter with client data of every kind: a client with every contact detail, a description,
/// a sensitive custom field, a conflict check, a document, a note and time. Returns the
/// client's contact id.
async fn client_data(service: &Service) -> String {
    let command = OpenMatter {
        matter_number: MATTER.into(),
        title: "Lease dispute".into(),
        description: Some("Brambleworth instructions".into()),
        practice_area: "real_estate".into(),
        responsible_attorney: "a.okafor".into(),
        ..OpenMatter::default()
    };
    service
        .open_matter(&as_user("a.okafor"), &command)
        .await
        .expect("matter opens");
    let client = CreateContact {
        kind: ContactKind::Person,
        details: ContactDetails {
            display_name: "Quillon Marrowby".into(),
            given_name: Some("Quillon".into()),
            family_name: Some("Marrowby".into()),
            emails: vec![LabelledValue {
                value: "quillon.marrowby@vexmail.example".into(),
                label: Some("home".into()),
            }],
            phones: vec![LabelledValue {
                value: "+44 7700 900917".into(),
                label: None,
            }],
            addresses: vec![PostalAddress {
                lines: vec!["17 Thistlewick Lane".into()],
                locality: None,
                region: None,
                postal_code: None,
                country: None,
                label: None,
            }],
            identifiers: vec![Identifier {
                scheme: "passport".into(),
                value: "XK4471902".into(),
            }],
        },
    };
    let (client_id, _) = service
        .create_contact(&as_user("a.okafor"), &client)
        .await
        .expect("contact is created");
    change(
        service,
        MATTER,
        MatterCommand::AddParty(AddParty {
            contact_id: client_id.clone(),
            role: PartyRole::Client,
        }),
    )
    .await;
    service
        .define_custom_field(
            &as_user("a.okafor"),
            &DefineCustomField {
                key: "referrer".into(),
                label: "Referred by".into(),
                kind: FieldKind::Text,
                choices: vec![],
                sensitive: true,
            },
        )
        .await
        .expect("field is defined");
    change(
        service,
        MATTER,
        MatterCommand::SetCustomField(SetCustomField {
            key: "referrer".into(),
            value: Some(json!("Ozymandine referral")),
        }),
    )
    .await;
    change(
        service,
        MATTER,
        MatterCommand::RecordConflictCheck(RecordConflictCheck {
            query: "Quillon Marrowby".into(),
            outcome: ConflictOutcome::Cleared,
            reviewer: "a.okafor".into(),
            hits: vec![],
            notes: Some("Cleared by Pemberthwaite".into()),
        }),
    )
    .await;
    let content = service
        .store_content(
            MATTER,
            b"%PDF-1.4\nlease\n%%EOF\n",
            "application/pdf",
            Some("gorsefield-lease.pdf".into()),
            "a.okafor",
        )
        .await
        .expect("content is stored");
    change(
        service,
        MATTER,
        MatterCommand::AddDocument(AddDocument {
            document_type: "lease".into(),
            title: "Gorsefield lease".into(),
            description: Some("Signed at Hollowmere".into()),
            content,
        }),
    )
    .await;
    change(
        service,
        MATTER,
        MatterCommand::AddNote(AddNote {
            privileged: false,
            subject: Some("Tarrowgate call".into()),
            body: "Spoke about Wyndcliffe".into(),
        }),
    )
    .await;
    change(
        service,
        MATTER,
        MatterCommand::RecordTime(RecordTime {
            user_id: "a.okafor".into(),
            worked_on: "2026-01-14".into(),
            minutes: 42,
            billable: true,
            description: "Drafting Fennimore letter".into(),
        }),
    )
    .await;
    client_id
}

const MATTER_DATA: &str = r#"{ matter(number: "2026-0001") {
    description customFields
    parties { contact { erased displayName givenName familyName emails phones addresses identifiers } }
    conflictChecks { erased query notes }
    documents { erased title description versions { erased filename } }
    notes { erased subject body }
    timeEntries { erased description minutes }
} }"#;

async fn read_models_hold_no_client_data_in_the_clear(backend: Backend) {
    let test = TestDocket::new(backend).await;
    client_data(test.service()).await;
    test.projector().catch_up().await.expect("catch up");

    // Every cell of every read-model view, on both backends.
    let contents = dump(test.pool()).await;
    let mut cells = 0;
    for (view, rows) in &contents {
        for cell in rows.iter().flatten() {
            cells += 1;
            let folded = cell.to_lowercase();
            for marker in MARKERS {
                assert!(!folded.contains(marker), "{view} holds {marker:?}: {cell}");
            }
        }
    }
    assert!(cells > 100, "the read models were read ({cells} cells)");
    let fields = text(test.pool(), "SELECT custom_fields FROM rm_matters").await;
    let fields: Value = serde_json::from_str(&fields).unwrap();
    assert!(
        fields["referrer"]["sealed_ref"].is_string(),
        "a sensitive value is kept sealed: {fields}"
    );

    // The API opens it for a caller who may see it.
    let reader = Reader::new(&test).await;
    let matter = reader.ok(&test, MATTER_DATA).await["matter"].clone();
    assert_eq!(matter["description"], json!("Brambleworth instructions"));
    assert_eq!(
        matter["customFields"],
        json!({"referrer": "Ozymandine referral"})
    );
    assert_eq!(
        matter["parties"][0]["contact"],
        json!({
            "erased": false,
            "displayName": "Quillon Marrowby",
            "givenName": "Quillon",
            "familyName": "Marrowby",
            "emails": ["quillon.marrowby@vexmail.example"],
            "phones": ["+44 7700 900917"],
            "addresses": [["17 Thistlewick Lane"]],
            "identifiers": ["passport:XK4471902"],
        })
    );
    assert_eq!(
        matter["conflictChecks"],
        json!([{"erased": false, "query": "Quillon Marrowby", "notes": "Cleared by Pemberthwaite"}])
    );
    assert_eq!(
        matter["documents"],
        json!([{
            "erased": false,
            "title": "Gorsefield lease",
            "description": "Signed at Hollowmere",
            "versions": [{"erased": false, "filename": "gorsefield-lease.pdf"}],
        }])
    );
    assert_eq!(
        matter["notes"],
        json!([{"erased": false, "subject": "Tarrowgate call", "body": "Spoke about Wyndcliffe"}])
    );
    assert_eq!(
        matter["timeEntries"],
        json!([{"erased": false, "description": "Drafting Fennimore letter", "minutes": 42}])
    );
}

/// The ids of a `contacts` connection's nodes.
fn contact_ids(data: &Value) -> Vec<String> {
    data["contacts"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| node["contactId"].as_str().expect("id").to_owned())
        .collect()
}

async fn contacts_and_conflicts_are_found_through_blind_indexes(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    let client = client_data(service).await;
    let harbor = organisation(service, "Harbor Freight Lines Ltd").await;
    let calder = organisation(service, "Calder Logistics plc").await;
    test.projector().catch_up().await.expect("catch up");
    let pool = test.pool();
    let vault = &test.docket.vault;

    // The index holds blinds of tokens, emails and identifiers, never the values.
    let entries = |kind: &str, contact: &str| {
        format!(
            "SELECT COUNT(*) FROM rm_contact_tokens WHERE kind = '{kind}' AND contact_id = '{contact}'"
        )
    };
    assert_eq!(count(pool, &entries("name", &client)).await, 2);
    assert_eq!(count(pool, &entries("email", &client)).await, 1);
    assert_eq!(count(pool, &entries("identifier", &client)).await, 1);
    assert_eq!(
        count(
            pool,
            "SELECT COUNT(*) FROM rm_contact_tokens WHERE blind IN ('calder', 'marrowby', \
             'legal@example.com', 'company_number:0741')"
        )
        .await,
        0
    );
    let blind = vault.blind(BlindKind::Email, "quillon.marrowby@vexmail.example");
    assert_eq!(
        text(
            pool,
            &format!("SELECT contact_id FROM rm_contact_tokens WHERE blind = '{blind}'")
        )
        .await,
        client
    );

    // The read layer searches by name tokens, and looks up emails and identifiers exactly.
    let find = |filter: docket::read::matters::ContactFilter| async move {
        let request = docket::read::PageRequest {
            direction: docket::read::Direction::Forward,
            size: 10,
            cursor: None,
        };
        docket::read::matters::contacts(pool, vault, &filter, &request)
            .await
            .expect("contacts")
            .rows
            .into_iter()
            .map(|row| row.contact_id)
            .collect::<Vec<_>>()
    };
    let search = |words: &str| docket::read::matters::ContactFilter {
        search: Some(words.into()),
        ..Default::default()
    };
    assert_eq!(
        find(search("LOGISTICS, calder")).await,
        vec![calder.clone()]
    );
    assert_eq!(find(search("harbor calder")).await, Vec::<String>::new());
    let mut everyone = vec![client.clone(), harbor.clone(), calder.clone()];
    everyone.sort();
    assert_eq!(
        find(Default::default()).await,
        everyone,
        "lists are in contact id order"
    );
    let mut both = vec![harbor.clone(), calder.clone()];
    both.sort();
    let by_email = docket::read::matters::ContactFilter {
        email: Some("  Legal@Example.COM ".into()),
        ..Default::default()
    };
    assert_eq!(find(by_email).await, both);

    // And so does the API.
    let reader = Reader::new(&test).await;
    let data = reader
        .ok(
            &test,
            r#"{ contacts(first: 10, email: "QUILLON.marrowby@vexmail.example") { nodes { contactId displayName } } }"#,
        )
        .await;
    assert_eq!(contact_ids(&data), vec![client.clone()]);
    assert_eq!(
        data["contacts"]["nodes"][0]["displayName"],
        json!("Quillon Marrowby")
    );
    let data = reader
        .ok(
            &test,
            r#"{ contacts(first: 10, identifier: "Passport:XK4471902") { nodes { contactId } } }"#,
        )
        .await;
    assert_eq!(contact_ids(&data), vec![client.clone()]);
    let data = reader
        .ok(
            &test,
            r#"{ contacts(first: 10, identifier: "passport:xk4471902") { nodes { contactId } } }"#,
        )
        .await;
    assert_eq!(
        contact_ids(&data),
        Vec::<String>::new(),
        "an identifier's value is exact"
    );
    let data = reader
        .ok(
            &test,
            r#"{ contacts(first: 10, search: "marrowby", email: "nobody@example.com") { nodes { contactId } } }"#,
        )
        .await;
    assert_eq!(contact_ids(&data), Vec::<String>::new());
    let data = reader
        .ok(
            &test,
            r#"{ contacts(first: 10, search: "  marrowby QUILLON") { nodes { contactId } } }"#,
        )
        .await;
    assert_eq!(contact_ids(&data), vec![client.clone()]);

    // Conflict searches match name tokens through the same index.
    let found = reader
        .ok(
            &test,
            r#"{ conflictSearch(name: "Marrowby, Quillon") { matterNumber role contactId matchedTokens } }"#,
        )
        .await;
    assert_eq!(
        found["conflictSearch"],
        json!([{"matterNumber": MATTER, "role": "CLIENT", "contactId": client, "matchedTokens": 2}])
    );
    let rows = docket::read::matters::search_conflicts(pool, vault, "mr marrowby", 10)
        .await
        .expect("conflict search");
    assert_eq!(
        rows.iter()
            .map(|row| (row.contact_id.as_str(), row.matched))
            .collect::<Vec<_>>(),
        vec![(client.as_str(), 1)]
    );
}

/// What an erased contact looks like: no index entries, an erased row, and erased in the API.
async fn reads_as_erased(test: &TestDocket, reader: &Reader, client: &str) {
    let entries = format!("SELECT COUNT(*) FROM rm_contact_tokens WHERE contact_id = '{client}'");
    assert_eq!(count(test.pool(), &entries).await, 0, "no blind index left");
    let sql = format!("SELECT erased FROM rm_contacts WHERE contact_id = '{client}'");
    assert_eq!(count(test.pool(), &sql).await, 1);
    let contact = format!(
        r#"{{ contact(contactId: "{client}") {{ erased displayName givenName emails identifiers kind }} }}"#
    );
    assert_eq!(
        reader.ok(test, &contact).await["contact"],
        json!({
            "erased": true,
            "displayName": "[erased]",
            "givenName": null,
            "emails": [],
            "identifiers": [],
            "kind": "PERSON",
        })
    );
    let data = reader
        .ok(
            test,
            r#"{ contacts(first: 10, email: "quillon.marrowby@vexmail.example") { nodes { contactId } } }"#,
        )
        .await;
    assert_eq!(contact_ids(&data), Vec::<String>::new());
    let found = reader
        .ok(
            test,
            r#"{ conflictSearch(name: "Marrowby") { matterNumber } }"#,
        )
        .await;
    assert_eq!(found["conflictSearch"], json!([]));
    // The party stays, its contact erased.
    let matter = reader.ok(test, MATTER_DATA).await["matter"].clone();
    assert_eq!(matter["parties"][0]["contact"]["erased"], json!(true));
    assert_eq!(
        matter["parties"][0]["contact"]["displayName"],
        json!("[erased]")
    );
}

async fn an_erased_subject_reads_as_erased_and_loses_its_blind_indexes(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    let client = client_data(service).await;
    test.projector().catch_up().await.expect("catch up");
    let pool = test.pool();
    let entries = format!("SELECT COUNT(*) FROM rm_contact_tokens WHERE contact_id = '{client}'");
    assert_eq!(count(pool, &entries).await, 4);
    let reader = Reader::new(&test).await;
    let contact = format!(
        r#"{{ contact(contactId: "{client}") {{ erased displayName givenName emails identifiers kind }} }}"#
    );
    assert_eq!(
        reader.ok(&test, &contact).await["contact"]["erased"],
        json!(false)
    );

    // Erased through the records service: `subject.erased` is appended, then the key goes.
    let subject = format!("contact:{client}");
    let (request, _) = service
        .request_erasure(&as_user("a.okafor"), &subject, "Erasure request REF-17")
        .await
        .expect("erasure requested");
    service
        .confirm_erasure(&as_user("j.lindqvist"), &subject, &request)
        .await
        .expect("erasure confirmed");
    assert!(test.docket.vault.is_erased(&subject).await.unwrap());
    test.projector().catch_up().await.expect("catch up");

    reads_as_erased(&test, &reader, &client).await;
    let sql = format!("SELECT version FROM rm_contacts WHERE contact_id = '{client}'");
    assert_eq!(
        count(pool, &sql).await,
        3,
        "created, erasure requested, erased"
    );

    // Rebuilt from the log, the contact's events decode as erased and give no index entries.
    let contacts = projection(test.projector(), "contacts");
    test.projector()
        .rebuild(contacts.as_ref())
        .await
        .expect("rebuild");
    reads_as_erased(&test, &reader, &client).await;

    // A matter whose key is destroyed: its client data reads as erased, never as an error.
    assert!(
        test.docket
            .vault
            .erase(&format!("matter:{MATTER}"), "2026-12-03T00:00:00Z")
            .await
            .unwrap()
    );
    let matter = reader.ok(&test, MATTER_DATA).await["matter"].clone();
    assert_eq!(matter["description"], Value::Null);
    assert_eq!(matter["customFields"], json!({"referrer": null}));
    assert_eq!(
        matter["conflictChecks"],
        json!([{"erased": true, "query": "[erased]", "notes": null}])
    );
    assert_eq!(
        matter["documents"],
        json!([{
            "erased": true,
            "title": null,
            "description": null,
            "versions": [{"erased": true, "filename": null}],
        }])
    );
    assert_eq!(
        matter["notes"],
        json!([{"erased": true, "subject": null, "body": "[erased]"}])
    );
    assert_eq!(
        matter["timeEntries"],
        json!([{"erased": true, "description": "[erased]", "minutes": 42}])
    );
    // Rebuilt after the key is gone, the matter's row says so itself.
    let matters = projection(test.projector(), "matters");
    test.projector()
        .rebuild(matters.as_ref())
        .await
        .expect("rebuild");
    assert_eq!(count(pool, "SELECT erased FROM rm_matters").await, 1);
    let matter = reader.ok(&test, MATTER_DATA).await["matter"].clone();
    assert_eq!(matter["customFields"], json!({"referrer": null}));
}
