//! `docket replay` and the replay shared with time travel: every event of a matter in order with
//! what it changed, cut off inclusively at a position or a recorded time, ending in the state
//! `matter_as_of` answers at the same point.

use std::time::Duration;

use docket::domain::commands::*;
use docket::domain::events::MatterStatus;
use docket::service::replay::{PathSegment, Replay, ReplayStep};
use docket::service::{AsOf, Committed, Service, Until};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestDocket, as_user};

on_both_backends!(
    the_timeline_lists_every_event_in_order_with_what_it_changed,
    until_a_position_or_a_time_cuts_the_timeline_inclusively,
    the_replayed_state_equals_matter_as_of_at_every_point,
    the_replay_command_prints_the_timeline_as_json_and_as_a_table,
    a_missing_matter_exits_1_and_a_bad_cut_off_exits_2,
);

const MATTER: &str = "2026-0001";
const NOTE: &str = "Call with the client about disclosure and the timetable for witness statements";

/// What the story appended, command by command.
struct Story {
    opened: Committed,
    renamed: Committed,
    noted: Committed,
    closed: Committed,
}

/// Opens a matter (three events: the opening and both attorneys joining the team), renames it,
/// adds a note and closes it, each command recorded at a later time than the one before.
async fn tell(service: &Service) -> Story {
    let open = OpenMatter {
        matter_number: MATTER.into(),
        title: "Original title".into(),
        description: Some("Instructions received".into()),
        practice_area: "employment".into(),
        responsible_attorney: "a.okafor".into(),
        originating_attorney: Some("j.lindqvist".into()),
        opened_on: Some("2026-01-12".into()),
        ..OpenMatter::default()
    };
    let opened = service
        .open_matter(&as_user("a.okafor"), &open)
        .await
        .expect("matter opens");
    let rename = MatterCommand::ChangeDetails(ChangeMatterDetails {
        title: Some("Renamed title".into()),
        ..ChangeMatterDetails::default()
    });
    let renamed = later(service, rename).await;
    let note = MatterCommand::AddNote(AddNote {
        privileged: false,
        subject: None,
        body: NOTE.into(),
    });
    let noted = later(service, note).await;
    let close = MatterCommand::ChangeStatus(ChangeMatterStatus {
        to: MatterStatus::Closed,
        effective_on: Some("2026-03-01".into()),
        reason: None,
        force: false,
    });
    let closed = later(service, close).await;
    Story {
        opened,
        renamed,
        noted,
        closed,
    }
}

/// Applies a command as `j.lindqvist`, after the clock has moved on.
async fn later(service: &Service, command: MatterCommand) -> Committed {
    tokio::time::sleep(Duration::from_millis(20)).await;
    service
        .change_matter(&as_user("j.lindqvist"), MATTER, &command)
        .await
        .unwrap_or_else(|error| panic!("{command:?}: {error}"))
}

async fn replay(service: &Service, until: Option<Until>) -> Replay {
    service.replay_matter(MATTER, until).await.expect("replay")
}

fn member(name: &str) -> PathSegment {
    PathSegment::Member(name.into())
}

/// Each change of a step as (field, before, after).
fn changes(step: &ReplayStep) -> Vec<(String, Value, Value)> {
    step.changes
        .iter()
        .map(|change| (change.field(), change.before.clone(), change.after.clone()))
        .collect()
}

fn time_of(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

async fn the_timeline_lists_every_event_in_order_with_what_it_changed(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    let story = tell(service).await;

    let replay = replay(service, None).await;
    let stored = service
        .log()
        .store()
        .read_stream_page(&format!("matter:{MATTER}"), 1, 100)
        .await
        .unwrap();
    assert_eq!((replay.stream_version, replay.steps.len()), (6, 6));
    for (step, event) in replay.steps.iter().zip(&stored) {
        assert_eq!(
            (step.position, step.stream_version, &step.event_type),
            (event.position, event.stream_version, &event.event_type)
        );
        assert_eq!(
            (&step.event_id, &step.hash, &step.actor),
            (&event.id, &hex::encode(event.hash), &event.actor)
        );
        assert_eq!(
            (&step.recorded_at, &step.occurred_at),
            (&event.recorded_at, &event.occurred_at)
        );
    }
    let positions: Vec<u64> = replay.steps.iter().map(|step| step.position).collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(positions[0], story.opened.first_position);
    assert_eq!(positions[5], story.closed.last_position);

    // The opening: the members it set, none of the bookkeeping.
    let opening = changes(&replay.steps[0]);
    assert!(opening.contains(&("title".into(), Value::Null, json!("Original title"))));
    assert!(opening.contains(&("status".into(), Value::Null, json!("open"))));
    assert!(opening.contains(&(
        "description".into(),
        Value::Null,
        json!("Instructions received")
    )));
    assert!(
        opening
            .iter()
            .all(|(field, _, _)| field != "version" && field != "updated_at")
    );

    assert_eq!(
        changes(&replay.steps[1]),
        [(
            "team.\"a.okafor\"".into(),
            Value::Null,
            json!("responsible_attorney")
        )]
    );
    assert_eq!(
        replay.steps[2].changes[0].path,
        [member("team"), member("j.lindqvist")]
    );
    assert_eq!(
        changes(&replay.steps[3]),
        [(
            "title".into(),
            json!("Original title"),
            json!("Renamed title")
        )]
    );

    // An added note is one change holding the whole note.
    let note = &replay.steps[4];
    assert_eq!(note.position, story.noted.last_position);
    assert_eq!(note.changes.len(), 1);
    let added = &note.changes[0];
    assert_eq!((added.path.len(), &added.path[0]), (2, &member("notes")));
    assert_eq!(added.before, Value::Null);
    assert_eq!(added.after["body"], NOTE);
    assert_eq!(added.after["author"], "user:j.lindqvist");

    // Closing changes the status and, by the fold, the closing date.
    assert_eq!(
        changes(&replay.steps[5]),
        [
            ("status".into(), json!("open"), json!("closed")),
            ("closed_on".into(), Value::Null, json!("2026-03-01")),
        ]
    );
    assert_eq!(replay.matter, service.matter(MATTER).await.unwrap());
}

async fn until_a_position_or_a_time_cuts_the_timeline_inclusively(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    let story = tell(service).await;
    let whole = replay(service, None).await;
    let last_position = |replay: &Replay| replay.steps.last().map(|step| step.position);

    let renamed = replay(service, Some(Until::Position(story.renamed.last_position))).await;
    assert_eq!(renamed.steps, whole.steps[..4]);
    assert_eq!(last_position(&renamed), Some(story.renamed.last_position));
    assert_eq!(renamed.matter.as_ref().unwrap().title, "Renamed title");
    let before = replay(
        service,
        Some(Until::Position(story.renamed.last_position - 1)),
    )
    .await;
    assert_eq!(before.steps, whole.steps[..3]);
    assert_eq!(before.matter.as_ref().unwrap().title, "Original title");
    let unopened = replay(
        service,
        Some(Until::Position(story.opened.first_position - 1)),
    )
    .await;
    assert_eq!((unopened.steps.len(), unopened.matter), (0, None));
    assert_eq!(unopened.stream_version, 6, "the matter exists, later");

    // By recorded time: the event recorded at the time is in, the opening's events share one.
    let renamed_at = time_of(&whole.steps[3].recorded_at);
    let by_time = replay(service, Some(Until::Time(renamed_at))).await;
    assert_eq!(by_time.steps, whole.steps[..4]);
    let just_before = renamed_at - chrono::Duration::microseconds(1);
    let by_time = replay(service, Some(Until::Time(just_before))).await;
    assert_eq!(by_time.steps, whole.steps[..3]);
    let opened_at = time_of(&whole.steps[0].recorded_at);
    assert_eq!(
        replay(service, Some(Until::Time(opened_at))).await.steps,
        whole.steps[..3]
    );
    let long_ago = time_of("2000-01-01T00:00:00Z");
    assert!(
        replay(service, Some(Until::Time(long_ago)))
            .await
            .steps
            .is_empty()
    );
}

async fn the_replayed_state_equals_matter_as_of_at_every_point(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    let story = tell(service).await;

    for position in story.opened.first_position - 1..=story.closed.last_position + 1 {
        let replayed = replay(service, Some(Until::Position(position))).await;
        let as_of = service
            .matter_as_of(MATTER, AsOf::Position(position))
            .await
            .unwrap();
        assert_eq!(replayed.matter, as_of, "at position {position}");
    }
    for step in replay(service, None).await.steps {
        let replayed = replay(service, Some(Until::Time(time_of(&step.recorded_at)))).await;
        let as_of = service
            .matter_as_of(MATTER, AsOf::Time(&step.recorded_at))
            .await
            .unwrap();
        assert_eq!(replayed.matter, as_of, "at {}", step.recorded_at);
        assert_eq!(
            as_of.unwrap().position,
            step.position.max(story.opened.last_position)
        );
    }
}

async fn the_replay_command_prints_the_timeline_as_json_and_as_a_table(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    let story = tell(service).await;
    let whole = replay(service, None).await;
    let run = |args: &[&str]| {
        let output = test
            .test
            .docket_command()
            .arg("replay")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };

    // JSON: the service's steps exactly, ending in time travel's answer.
    let document: Value = serde_json::from_str(&run(&["--matter", MATTER, "--json"])).unwrap();
    assert_eq!(document["matter"], MATTER);
    assert_eq!(document["until"], Value::Null);
    assert_eq!(document["stream_version"], 6);
    assert_eq!(
        document["steps"],
        serde_json::to_value(&whole.steps).unwrap()
    );
    assert_eq!(document["steps"][3]["type"], "matter.details_changed");
    assert_eq!(
        document["steps"][3]["changes"],
        json!([{ "field": "title", "path": ["title"],
                 "before": "Original title", "after": "Renamed title" }])
    );
    let now = service
        .matter_as_of(MATTER, AsOf::Position(story.closed.last_position))
        .await
        .unwrap();
    assert_eq!(document["final_state"], serde_json::to_value(&now).unwrap());
    assert_eq!(document["final_state"]["status"], "closed");

    let position = story.renamed.last_position.to_string();
    let cut: Value =
        serde_json::from_str(&run(&["--matter", MATTER, "--until", &position, "--json"])).unwrap();
    assert_eq!(
        cut["until"],
        json!({ "position": story.renamed.last_position })
    );
    assert_eq!(
        cut["steps"],
        serde_json::to_value(&whole.steps[..4]).unwrap()
    );
    let then = service
        .matter_as_of(MATTER, AsOf::Position(story.renamed.last_position))
        .await
        .unwrap();
    assert_eq!(cut["final_state"], serde_json::to_value(&then).unwrap());
    let noted_at = whole.steps[4].recorded_at.as_str();
    let by_time: Value = serde_json::from_str(&run(&[
        "--matter",
        "2026-0001",
        "--until",
        noted_at,
        "--json",
    ]))
    .unwrap();
    assert_eq!(by_time["until"], json!({ "time": noted_at }));
    assert_eq!(by_time["steps"].as_array().unwrap().len(), 5);

    // The table: one line per change under aligned columns, long values cut short.
    let table = run(&["--matter", MATTER]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("POSITION  RECORDED"), "{table}");
    let changes_column = lines[0].find("CHANGES").unwrap();
    let renamed = lines
        .iter()
        .find(|line| line.contains("matter.details_changed"))
        .unwrap();
    assert!(renamed.starts_with(&story.renamed.last_position.to_string()));
    assert!(renamed.contains(&whole.steps[3].recorded_at));
    assert!(renamed.contains("user:j.lindqvist"));
    assert_eq!(
        &renamed[changes_column..],
        "title: Original title -> Renamed title"
    );
    assert!(
        lines.contains(&format!("{:changes_column$}closed_on: null -> 2026-03-01", "").as_str())
    );
    assert!(table.contains("status: open -> closed"));
    let note = lines
        .iter()
        .find(|line| line.contains("matter.note_added"))
        .unwrap();
    assert!(note.contains('…') && !note.contains(NOTE), "{note}");
    let rows: usize = whole
        .steps
        .iter()
        .map(|step| step.changes.len().max(1))
        .sum();
    assert_eq!(lines.len(), 1 + rows + 1);
    assert_eq!(
        lines[lines.len() - 1],
        format!("matter {MATTER}: 6 of 6 events")
    );
}

async fn a_missing_matter_exits_1_and_a_bad_cut_off_exits_2(backend: Backend) {
    let test = TestDocket::new(backend).await;
    let service = test.service();
    tell(service).await;
    let run = |args: &[&str]| {
        test.test
            .docket_command()
            .arg("replay")
            .args(args)
            .output()
            .unwrap()
    };

    let missing = run(&["--matter", "2026-9999"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no matter 2026-9999"));
    assert!(missing.stdout.is_empty());
    let missing = service.replay_matter("2026-9999", None).await.unwrap();
    assert_eq!((missing.stream_version, missing.steps.len()), (0, 0));

    for bad in ["yesterday", "-3", "2026-13-01T00:00:00Z"] {
        let output = run(&["--matter", MATTER, "--until", bad]);
        assert_eq!(output.status.code(), Some(2), "--until {bad}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("--until must be"));
    }
    let bad_number = run(&["--matter", "no spaces allowed"]);
    assert_eq!(bad_number.status.code(), Some(2));
}
