//! The rules of the domain layer (src/domain/), exercised through its public functions only:
//! commands are decided against state folded from recorded events, and what they decide is
//! recorded the way the log stores it (canonical JSON payload, decoded again on read).
//!
//! The harness at the top ([`Case`] and the command builders) is also used by `schemas.rs` to
//! produce real events for the schema checks.

use std::collections::BTreeSet;

use docket::domain::commands::*;
use docket::domain::contact::{self, Contact};
use docket::domain::custom_fields::{self, CustomField};
use docket::domain::events::*;
use docket::domain::ids::new_entity_id;
use docket::domain::matter::Matter;
use docket::domain::matter::decide::{self, Lookups};
use docket::domain::{DomainError, DomainEvent, RecordedEvent};
use docket::log::Event;
use docket::log::canonical::canonical_json;
use serde_json::{Value, json};

// ---- harness -------------------------------------------------------------------------------

pub(crate) const ATTORNEY: &str = "alice";
pub(crate) const PARALEGAL: &str = "bob";
pub(crate) const ACTOR: &str = "user:alice";
/// 64 lowercase hex digits: a well-formed content hash.
pub(crate) const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// An event as the log would store it: canonical payload text, envelope facts made up.
pub(crate) fn stored(
    position: u64,
    stream: &str,
    stream_version: u64,
    event_type: &str,
    schema_version: u32,
    payload: &Value,
) -> Event {
    let at = format!(
        "2026-03-01T10:{:02}:{:02}.000000Z",
        position / 60 % 60,
        position % 60
    );
    Event {
        position,
        id: format!("01950000-0000-7000-8000-{position:012x}"),
        stream: stream.to_owned(),
        stream_version,
        event_type: event_type.to_owned(),
        schema_version,
        payload: canonical_json(payload).unwrap(),
        actor: ACTOR.to_owned(),
        request_id: None,
        occurred_at: at.clone(),
        recorded_at: at,
        correlation_id: None,
        causation_id: None,
        idempotency_key: None,
        prev_hash: None,
        stream_prev_hash: None,
        key_id: "0".repeat(32),
        hash: [0; 32],
        signature: [0; 64],
    }
}

/// Stores a decided event and reads it back, as every reader of the log sees it.
pub(crate) fn round_trip(
    position: u64,
    stream: &str,
    stream_version: u64,
    event: &DomainEvent,
) -> RecordedEvent {
    let draft = event.to_draft().unwrap();
    let stored = stored(
        position,
        stream,
        stream_version,
        &draft.event_type,
        draft.schema_version,
        &draft.payload,
    );
    RecordedEvent::decode(&stored)
        .unwrap()
        .expect("a domain event decodes as one")
}

/// One matter's stream: the events recorded so far, and the events as they were decided.
pub(crate) struct Case {
    pub(crate) stream: String,
    pub(crate) history: Vec<RecordedEvent>,
    /// Every event as decided (before storage), in order.
    pub(crate) written: Vec<DomainEvent>,
}

impl Case {
    pub(crate) fn open(command: &OpenMatter) -> Case {
        let events = decide::open(command, 0).unwrap();
        let mut case = Case {
            stream: format!(
                "matter:{}",
                command.matter_number.trim().to_ascii_uppercase()
            ),
            history: Vec::new(),
            written: Vec::new(),
        };
        case.record(&events);
        case
    }

    /// A matter opened by [`open_matter`].
    pub(crate) fn opened() -> Case {
        Case::open(&open_matter("2026-0001"))
    }

    pub(crate) fn matter(&self) -> Matter {
        Matter::fold(&self.history).expect("the matter was opened")
    }

    pub(crate) fn decide(
        &self,
        command: &MatterCommand,
        lookups: &Lookups,
    ) -> Result<Vec<DomainEvent>, DomainError> {
        self.matter().decide(command, lookups)
    }

    pub(crate) fn run(&mut self, command: MatterCommand) -> Vec<DomainEvent> {
        self.run_with(command, &Lookups::default())
    }

    pub(crate) fn run_with(
        &mut self,
        command: MatterCommand,
        lookups: &Lookups,
    ) -> Vec<DomainEvent> {
        let events = self
            .decide(&command, lookups)
            .unwrap_or_else(|error| panic!("{command:?} was refused: {error}"));
        self.record(&events);
        events
    }

    /// The error a command is refused with; nothing is recorded.
    pub(crate) fn refuse(&self, command: MatterCommand) -> DomainError {
        self.refuse_with(command, &Lookups::default())
    }

    pub(crate) fn refuse_with(&self, command: MatterCommand, lookups: &Lookups) -> DomainError {
        match self.decide(&command, lookups) {
            Ok(events) => panic!("{command:?} was accepted: {events:?}"),
            Err(error) => error,
        }
    }

    pub(crate) fn record(&mut self, events: &[DomainEvent]) {
        for event in events {
            let version = self.history.len() as u64 + 1;
            let recorded = round_trip(version, &self.stream, version, event);
            self.history.push(recorded);
            self.written.push(event.clone());
        }
    }
}

/// The id of the entity the first event creates (task, note, document, party, ...).
pub(crate) fn created_id(events: &[DomainEvent]) -> String {
    match events.first().expect("an event") {
        DomainEvent::TaskCreated(e) => e.task_id.clone(),
        DomainEvent::NoteAdded(e) => e.note_id.clone(),
        DomainEvent::DocumentAdded(e) => e.document_id.clone(),
        DomainEvent::CalendarEntryScheduled(e) => e.entry_id.clone(),
        DomainEvent::PartyAdded(e) => e.party_id.clone(),
        DomainEvent::TimeRecorded(e) => e.time_entry_id.clone(),
        DomainEvent::ConflictCheckRecorded(e) => e.check_id.clone(),
        DomainEvent::ContactCreated(e) => e.contact_id.clone(),
        other => panic!("{} creates nothing", other.event_type()),
    }
}

pub(crate) fn open_matter(number: &str) -> OpenMatter {
    OpenMatter {
        matter_number: number.to_owned(),
        title: "Smith v Jones".to_owned(),
        practice_area: "employment".to_owned(),
        responsible_attorney: ATTORNEY.to_owned(),
        ..OpenMatter::default()
    }
}

/// A matter with every optional member of `matter.opened` given.
pub(crate) fn open_matter_fully(number: &str) -> OpenMatter {
    OpenMatter {
        description: Some("Unfair dismissal claim".to_owned()),
        originating_attorney: Some("carol".to_owned()),
        opened_on: Some("2026-02-27".to_owned()),
        statute_of_limitations_on: Some("2028-02-27".to_owned()),
        intake: true,
        ..open_matter(number)
    }
}

pub(crate) fn to(status: MatterStatus) -> MatterCommand {
    MatterCommand::ChangeStatus(ChangeMatterStatus {
        to: status,
        effective_on: None,
        reason: None,
        force: false,
    })
}

pub(crate) fn to_because(status: MatterStatus, reason: &str) -> MatterCommand {
    MatterCommand::ChangeStatus(ChangeMatterStatus {
        to: status,
        effective_on: Some("2026-03-10".to_owned()),
        reason: Some(reason.to_owned()),
        force: false,
    })
}

pub(crate) fn force_close(reason: Option<&str>) -> MatterCommand {
    MatterCommand::ChangeStatus(ChangeMatterStatus {
        to: MatterStatus::Closed,
        effective_on: None,
        reason: reason.map(str::to_owned),
        force: true,
    })
}

pub(crate) fn details(change: ChangeMatterDetails) -> MatterCommand {
    MatterCommand::ChangeDetails(change)
}

pub(crate) fn task(title: &str) -> MatterCommand {
    MatterCommand::CreateTask(CreateTask {
        title: title.to_owned(),
        assignee: None,
        due_on: None,
    })
}

pub(crate) fn set_task(task_id: &str, to: TaskStatus) -> MatterCommand {
    MatterCommand::SetTaskStatus {
        task_id: task_id.to_owned(),
        to,
    }
}

pub(crate) fn note(body: &str) -> MatterCommand {
    MatterCommand::AddNote(AddNote {
        privileged: false,
        subject: None,
        body: body.to_owned(),
    })
}

pub(crate) fn upload(hash: &str, media_type: &str) -> UploadedContent {
    UploadedContent {
        content_hash: hash.to_owned(),
        size: 1024,
        media_type: media_type.to_owned(),
        filename: None,
        uploaded_by: ATTORNEY.to_owned(),
    }
}

pub(crate) fn document(content: UploadedContent) -> MatterCommand {
    MatterCommand::AddDocument(AddDocument {
        document_type: "pleading".to_owned(),
        title: "Claim form".to_owned(),
        description: None,
        content,
    })
}

pub(crate) fn entry(kind: CalendarKind, rule: Option<&str>) -> MatterCommand {
    MatterCommand::ScheduleCalendarEntry(ScheduleCalendarEntry {
        kind,
        title: "Case management conference".to_owned(),
        starts_at: "2026-04-01T09:30:00Z".to_owned(),
        ends_at: None,
        all_day: false,
        rule: rule.map(str::to_owned),
        location: None,
    })
}

pub(crate) fn time(minutes: u32) -> MatterCommand {
    MatterCommand::RecordTime(RecordTime {
        user_id: ATTORNEY.to_owned(),
        worked_on: "2026-03-02".to_owned(),
        minutes,
        billable: true,
        description: "Drafted the claim".to_owned(),
    })
}

pub(crate) fn party(contact_id: &str, role: PartyRole) -> MatterCommand {
    MatterCommand::AddParty(AddParty {
        contact_id: contact_id.to_owned(),
        role,
    })
}

pub(crate) fn set_field(key: &str, value: Option<Value>) -> MatterCommand {
    MatterCommand::SetCustomField(SetCustomField {
        key: key.to_owned(),
        value,
    })
}

pub(crate) fn conflict_check(hits: Vec<ConflictHit>, notes: Option<&str>) -> MatterCommand {
    MatterCommand::RecordConflictCheck(RecordConflictCheck {
        query: "Jones Ltd".to_owned(),
        outcome: if hits.is_empty() {
            ConflictOutcome::Cleared
        } else {
            ConflictOutcome::PotentialConflict
        },
        reviewer: ATTORNEY.to_owned(),
        hits,
        notes: notes.map(str::to_owned),
    })
}

pub(crate) fn contact_exists() -> Lookups {
    Lookups {
        contact_exists: true,
        custom_field: None,
    }
}

pub(crate) fn field_lookup(field: &CustomField) -> Lookups {
    Lookups {
        contact_exists: false,
        custom_field: Some(field.clone()),
    }
}

/// Defines a field through the domain and reads the definition back from its event.
pub(crate) fn define_field(
    key: &str,
    kind: FieldKind,
    choices: &[&str],
    sensitive: bool,
) -> (DomainEvent, CustomField) {
    let event = custom_fields::define(
        &DefineCustomField {
            key: key.to_owned(),
            label: format!("Label of {key}"),
            kind,
            choices: choices.iter().map(|c| (*c).to_owned()).collect(),
            sensitive,
        },
        0,
    )
    .unwrap();
    let stream = format!("custom_field:{key}");
    let recorded = round_trip(1, &stream, 1, &event);
    let field = CustomField::from_events([&recorded]).expect("a definition");
    (event, field)
}

pub(crate) fn person(display_name: &str) -> CreateContact {
    CreateContact {
        kind: ContactKind::Person,
        details: ContactDetails {
            display_name: display_name.to_owned(),
            ..ContactDetails::default()
        },
    }
}

/// A person with every optional detail given.
pub(crate) fn person_fully(display_name: &str) -> CreateContact {
    CreateContact {
        kind: ContactKind::Person,
        details: ContactDetails {
            display_name: display_name.to_owned(),
            given_name: Some("Jane".to_owned()),
            family_name: Some("Smith".to_owned()),
            emails: vec![
                LabelledValue {
                    value: "Jane.Smith@Example.com".to_owned(),
                    label: Some("work".to_owned()),
                },
                LabelledValue {
                    value: "jane@example.org".to_owned(),
                    label: None,
                },
            ],
            phones: vec![
                LabelledValue {
                    value: "+44 (20) 7946-0000 x12".to_owned(),
                    label: Some("office".to_owned()),
                },
                LabelledValue {
                    value: "07700 900123".to_owned(),
                    label: None,
                },
            ],
            addresses: vec![
                PostalAddress {
                    lines: vec!["1 High Street".to_owned(), "Flat 2".to_owned()],
                    locality: Some("London".to_owned()),
                    region: Some("Greater London".to_owned()),
                    postal_code: Some("EC1A 1AA".to_owned()),
                    country: Some("United Kingdom".to_owned()),
                    label: Some("home".to_owned()),
                },
                PostalAddress {
                    lines: vec!["PO Box 7".to_owned()],
                    locality: None,
                    region: None,
                    postal_code: None,
                    country: None,
                    label: None,
                },
            ],
            identifiers: vec![Identifier {
                scheme: "passport".to_owned(),
                value: "123456789".to_owned(),
            }],
        },
    }
}

/// One command of every kind; ids are made up, so only checks that come first can pass them.
pub(crate) fn every_command() -> Vec<MatterCommand> {
    let id = new_entity_id();
    let commands = vec![
        details(ChangeMatterDetails {
            title: Some("New title".to_owned()),
            ..ChangeMatterDetails::default()
        }),
        to(MatterStatus::Open),
        set_field("court_reference", Some(json!("HC-2026-1"))),
        MatterCommand::AddTeamMember(AddTeamMember {
            user_id: PARALEGAL.to_owned(),
            capacity: TeamCapacity::Paralegal,
        }),
        MatterCommand::RemoveTeamMember {
            user_id: PARALEGAL.to_owned(),
        },
        party(&id, PartyRole::Client),
        MatterCommand::RemoveParty {
            party_id: id.clone(),
        },
        conflict_check(Vec::new(), None),
        document(upload(HASH, "application/pdf")),
        MatterCommand::AddDocumentVersion {
            document_id: id.clone(),
            content: upload(HASH, "application/pdf"),
        },
        note("Called the client"),
        MatterCommand::EditNote {
            note_id: id.clone(),
            subject: None,
            body: "Called the client twice".to_owned(),
        },
        task("File the claim"),
        set_task(&id, TaskStatus::Completed),
        entry(CalendarKind::Hearing, None),
        MatterCommand::CancelCalendarEntry {
            entry_id: id,
            reason: None,
        },
        time(30),
        MatterCommand::SetVisibility { firm_visible: true },
    ];
    let kinds: BTreeSet<&str> = commands.iter().map(command_kind).collect();
    assert_eq!(kinds.len(), COMMAND_KINDS, "one command of every kind");
    commands
}

const COMMAND_KINDS: usize = 18;

/// Exhaustive on purpose: a new kind of command fails to compile here until it is counted.
fn command_kind(command: &MatterCommand) -> &'static str {
    match command {
        MatterCommand::ChangeDetails(_) => "ChangeDetails",
        MatterCommand::ChangeStatus(_) => "ChangeStatus",
        MatterCommand::SetCustomField(_) => "SetCustomField",
        MatterCommand::AddTeamMember(_) => "AddTeamMember",
        MatterCommand::RemoveTeamMember { .. } => "RemoveTeamMember",
        MatterCommand::AddParty(_) => "AddParty",
        MatterCommand::RemoveParty { .. } => "RemoveParty",
        MatterCommand::RecordConflictCheck(_) => "RecordConflictCheck",
        MatterCommand::AddDocument(_) => "AddDocument",
        MatterCommand::AddDocumentVersion { .. } => "AddDocumentVersion",
        MatterCommand::AddNote(_) => "AddNote",
        MatterCommand::EditNote { .. } => "EditNote",
        MatterCommand::CreateTask(_) => "CreateTask",
        MatterCommand::SetTaskStatus { .. } => "SetTaskStatus",
        MatterCommand::ScheduleCalendarEntry(_) => "ScheduleCalendarEntry",
        MatterCommand::CancelCalendarEntry { .. } => "CancelCalendarEntry",
        MatterCommand::RecordTime(_) => "RecordTime",
        MatterCommand::SetVisibility { .. } => "SetVisibility",
    }
}

fn invalid_field(error: &DomainError) -> Option<&'static str> {
    assert_eq!(error.code(), "INVALID_INPUT", "{error}");
    error.field()
}

// ---- opening -------------------------------------------------------------------------------

#[test]
fn opening_a_matter_puts_its_attorneys_on_the_team_in_the_same_append() {
    let events = decide::open(&open_matter_fully(" 2026-0042a "), 0).unwrap();
    let types: Vec<&str> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(
        types,
        [
            "matter.opened",
            "matter.team_member_added",
            "matter.team_member_added"
        ]
    );
    let DomainEvent::MatterOpened(opened) = &events[0] else {
        unreachable!()
    };
    assert_eq!(
        opened.matter_number, "2026-0042A",
        "numbers are trimmed and upper-cased"
    );
    assert_eq!(opened.status, MatterStatus::Intake);
    assert_eq!(
        opened.private.description.as_deref(),
        Some("Unfair dismissal claim")
    );

    let case = Case::open(&open_matter_fully("2026-0042A"));
    let matter = case.matter();
    assert_eq!(
        matter.team.get(ATTORNEY),
        Some(&TeamCapacity::ResponsibleAttorney)
    );
    assert_eq!(
        matter.team.get("carol"),
        Some(&TeamCapacity::OriginatingAttorney)
    );
}

#[test]
fn an_attorney_who_is_both_responsible_and_originating_joins_the_team_once() {
    let command = OpenMatter {
        originating_attorney: Some(ATTORNEY.to_owned()),
        ..open_matter("2026-0002")
    };
    let events = decide::open(&command, 0).unwrap();
    assert_eq!(events.len(), 2);
    let matter = Case::open(&command).matter();
    assert_eq!(matter.team.len(), 1);
    assert_eq!(matter.originating_attorney.as_deref(), Some(ATTORNEY));
}

#[test]
fn a_matter_opens_as_open_unless_intake_is_asked_for() {
    assert_eq!(Case::opened().matter().status, MatterStatus::Open);
    let intake = OpenMatter {
        intake: true,
        ..open_matter("2026-0003")
    };
    assert_eq!(Case::open(&intake).matter().status, MatterStatus::Intake);
}

#[test]
fn opening_an_existing_matter_number_is_refused() {
    let error = decide::open(&open_matter("2026-0001"), 1).unwrap_err();
    assert_eq!(error.code(), "DUPLICATE_MATTER_NUMBER");
    assert_eq!(error.field(), Some("matterNumber"));
}

#[test]
fn opening_checks_the_number_the_attorneys_the_text_and_the_dates() {
    let refused = |command: OpenMatter| invalid_field(&decide::open(&command, 0).unwrap_err());
    assert_eq!(refused(open_matter("20 26")), Some("matterNumber"));
    assert_eq!(refused(open_matter("-2026")), Some("matterNumber"));
    assert_eq!(refused(open_matter(&"9".repeat(33))), Some("matterNumber"));
    assert_eq!(
        refused(OpenMatter {
            responsible_attorney: "al ice".to_owned(),
            ..open_matter("1")
        }),
        Some("responsibleAttorney")
    );
    assert_eq!(
        refused(OpenMatter {
            originating_attorney: Some(String::new()),
            ..open_matter("1")
        }),
        Some("originatingAttorney")
    );
    assert_eq!(
        refused(OpenMatter {
            title: "   ".to_owned(),
            ..open_matter("1")
        }),
        Some("title")
    );
    assert_eq!(
        refused(OpenMatter {
            title: "x".repeat(301),
            ..open_matter("1")
        }),
        Some("title")
    );
    assert_eq!(
        refused(OpenMatter {
            practice_area: String::new(),
            ..open_matter("1")
        }),
        Some("practiceArea")
    );
    assert_eq!(
        refused(OpenMatter {
            opened_on: Some("2026-02-30".to_owned()),
            ..open_matter("1")
        }),
        Some("openedOn")
    );
    assert_eq!(
        refused(OpenMatter {
            statute_of_limitations_on: Some("soon".to_owned()),
            ..open_matter("1")
        }),
        Some("statuteOfLimitationsOn")
    );
}

// ---- details ---------------------------------------------------------------------------------

#[test]
fn changing_details_records_only_what_differs() {
    let mut case = Case::open(&open_matter_fully("2026-0004"));
    let events = case.run(details(ChangeMatterDetails {
        title: Some("Smith v Jones".to_owned()),
        practice_area: Some("litigation".to_owned()),
        description: Some("  Unfair dismissal claim  ".to_owned()),
        ..ChangeMatterDetails::default()
    }));
    let DomainEvent::MatterDetailsChanged(change) = &events[0] else {
        unreachable!()
    };
    assert_eq!(
        change,
        &MatterDetailsChanged {
            practice_area: Some("litigation".to_owned()),
            ..MatterDetailsChanged::default()
        },
        "the unchanged title and description are left out"
    );
    assert_eq!(events[0].changed_fields(), ["practice_area"]);
    assert_eq!(case.matter().practice_area, "litigation");
}

#[test]
fn a_changed_description_travels_under_private_and_is_named_not_shown() {
    let mut case = Case::opened();
    let events = case.run(details(ChangeMatterDetails {
        description: Some("Settlement talks".to_owned()),
        ..ChangeMatterDetails::default()
    }));
    let payload = events[0].to_draft().unwrap().payload;
    assert_eq!(
        payload,
        json!({"private": {"description": "Settlement talks"}})
    );
    assert_eq!(events[0].changed_fields(), ["private.description"]);
    assert_eq!(
        case.matter().description.as_deref(),
        Some("Settlement talks")
    );
}

#[test]
fn changing_nothing_is_refused() {
    let case = Case::opened();
    let same = details(ChangeMatterDetails {
        title: Some("Smith v Jones".to_owned()),
        responsible_attorney: Some(ATTORNEY.to_owned()),
        ..ChangeMatterDetails::default()
    });
    assert_eq!(case.refuse(same).code(), "NOTHING_TO_CHANGE");
    assert_eq!(
        case.refuse(details(ChangeMatterDetails::default())).code(),
        "NOTHING_TO_CHANGE"
    );
}

// ---- status ----------------------------------------------------------------------------------

#[test]
fn the_status_moves_only_along_the_lifecycle() {
    use MatterStatus::*;
    let allowed = [
        (Intake, Open),
        (Intake, Closed),
        (Open, Pending),
        (Pending, Open),
        (Open, Closed),
        (Pending, Closed),
        (Closed, Open),
        (Closed, Archived),
    ];
    let all = [Intake, Open, Pending, Closed, Archived];
    // Reach each starting status along allowed moves.
    let path_to = |status: MatterStatus| -> Vec<MatterCommand> {
        match status {
            Intake => vec![],
            Open => vec![to(Open)],
            Pending => vec![to(Open), to(Pending)],
            Closed => vec![to(Closed)],
            Archived => vec![to(Closed), to(Archived)],
        }
    };
    for from in all {
        for target in all {
            let mut case = Case::open(&OpenMatter {
                intake: true,
                ..open_matter("2026-0005")
            });
            for step in path_to(from) {
                case.run(step);
            }
            assert_eq!(case.matter().status, from);
            let command = to_because(target, "as agreed with the client");
            if allowed.contains(&(from, target)) {
                let events = case.run(command);
                let DomainEvent::MatterStatusChanged(change) = &events[0] else {
                    unreachable!()
                };
                assert_eq!((change.from, change.to), (from, target));
                assert_eq!(case.matter().status, target);
            } else {
                let error = case.refuse(command);
                let expected = if from == Archived {
                    "MATTER_ARCHIVED"
                } else {
                    "INVALID_STATUS_TRANSITION"
                };
                assert_eq!(error.code(), expected, "{from:?} -> {target:?}");
            }
        }
    }
}

#[test]
fn closing_a_matter_with_open_tasks_is_refused_unless_forced_with_a_reason() {
    let mut case = Case::opened();
    let first = created_id(&case.run(task("File the claim")));
    case.run(task("Serve the claim"));
    let done = created_id(&case.run(task("Draft the claim")));
    case.run(set_task(&done, TaskStatus::Completed));

    let error = case.refuse(to(MatterStatus::Closed));
    assert_eq!(error.code(), "MATTER_HAS_OPEN_TASKS");
    assert_eq!(error, DomainError::OpenTasks { open: 2 });
    assert_eq!(error.field(), Some("force"));

    assert_eq!(
        invalid_field(&case.refuse(force_close(None))),
        Some("reason")
    );
    assert_eq!(
        invalid_field(&case.refuse(force_close(Some("  ")))),
        Some("reason")
    );

    let mut forced = Case {
        stream: case.stream.clone(),
        history: case.history.clone(),
        written: Vec::new(),
    };
    let events = forced.run(force_close(Some("Client withdrew instructions")));
    let DomainEvent::MatterStatusChanged(change) = &events[0] else {
        unreachable!()
    };
    assert!(change.forced);
    assert_eq!(
        change.reason.as_deref(),
        Some("Client withdrew instructions")
    );
    assert_eq!(forced.matter().status, MatterStatus::Closed);

    // Once no task is open, the close needs no force and is not marked forced.
    case.run(set_task(&first, TaskStatus::Completed));
    let open = case
        .matter()
        .tasks
        .values()
        .find(|t| t.status == TaskStatus::Open)
        .unwrap()
        .task_id
        .clone();
    case.run(set_task(&open, TaskStatus::Cancelled));
    let events = case.run(to(MatterStatus::Closed));
    let DomainEvent::MatterStatusChanged(change) = &events[0] else {
        unreachable!()
    };
    assert!(!change.forced);
    assert!(
        !events[0]
            .to_draft()
            .unwrap()
            .payload
            .as_object()
            .unwrap()
            .contains_key("forced")
    );
}

#[test]
fn forcing_a_close_without_open_tasks_is_not_recorded_as_forced() {
    let mut case = Case::opened();
    let events = case.run(force_close(None));
    let DomainEvent::MatterStatusChanged(change) = &events[0] else {
        unreachable!()
    };
    assert!(!change.forced);
}

#[test]
fn closing_records_the_close_date_and_reopening_clears_it() {
    let mut case = Case::opened();
    case.run(MatterCommand::ChangeStatus(ChangeMatterStatus {
        to: MatterStatus::Closed,
        effective_on: Some("2026-03-31".to_owned()),
        reason: None,
        force: false,
    }));
    assert_eq!(case.matter().closed_on.as_deref(), Some("2026-03-31"));
    case.run(to_because(MatterStatus::Open, "Appeal lodged"));
    assert_eq!(case.matter().closed_on, None);
    case.run(to(MatterStatus::Closed));
    case.run(to(MatterStatus::Archived));
    assert!(
        case.matter().closed_on.is_some(),
        "archiving keeps the close date"
    );
}

#[test]
fn reopening_needs_a_reason() {
    let mut case = Case::opened();
    case.run(to(MatterStatus::Closed));
    assert_eq!(
        invalid_field(&case.refuse(to(MatterStatus::Open))),
        Some("reason")
    );
    let blank = MatterCommand::ChangeStatus(ChangeMatterStatus {
        to: MatterStatus::Open,
        effective_on: None,
        reason: Some(" ".to_owned()),
        force: false,
    });
    assert_eq!(invalid_field(&case.refuse(blank)), Some("reason"));
    case.run(to_because(MatterStatus::Open, "New evidence"));
    assert_eq!(case.matter().status, MatterStatus::Open);
}

#[test]
fn a_status_change_takes_a_valid_effective_date() {
    let case = Case::opened();
    let command = MatterCommand::ChangeStatus(ChangeMatterStatus {
        to: MatterStatus::Pending,
        effective_on: Some("31/03/2026".to_owned()),
        reason: None,
        force: false,
    });
    assert_eq!(invalid_field(&case.refuse(command)), Some("effectiveOn"));
}

#[test]
fn a_closed_matter_accepts_only_status_changes() {
    let mut case = Case::opened();
    case.run(to(MatterStatus::Closed));
    for command in every_command() {
        if matches!(command, MatterCommand::ChangeStatus(_)) {
            continue;
        }
        let error = case.refuse_with(command.clone(), &contact_exists());
        assert_eq!(error.code(), "MATTER_CLOSED", "{command:?}");
    }
    case.run(to_because(MatterStatus::Open, "Costs hearing"));
    case.run(task("Prepare costs schedule"));
}

#[test]
fn an_archived_matter_refuses_every_command() {
    let mut case = Case::opened();
    case.run(to(MatterStatus::Closed));
    case.run(to(MatterStatus::Archived));
    let mut commands = every_command();
    commands.extend([
        to_because(MatterStatus::Open, "Oops"),
        to(MatterStatus::Closed),
    ]);
    for command in commands {
        let error = case.refuse_with(command.clone(), &contact_exists());
        assert_eq!(error.code(), "MATTER_ARCHIVED", "{command:?}");
    }
}

// ---- tasks -----------------------------------------------------------------------------------

#[test]
fn completing_a_completed_task_is_refused() {
    let mut case = Case::opened();
    let id = created_id(&case.run(task("File the claim")));
    case.run(set_task(&id, TaskStatus::Completed));
    let error = case.refuse(set_task(&id, TaskStatus::Completed));
    assert_eq!(error.code(), "TASK_ALREADY_IN_STATE");
    assert_eq!(
        error,
        DomainError::TaskAlreadyInState {
            status: "completed"
        }
    );
}

#[test]
fn tasks_are_completed_reopened_and_cancelled_by_their_own_events() {
    let mut case = Case::opened();
    let id = created_id(&case.run(task("File the claim")));
    assert_eq!(
        case.refuse(set_task(&id, TaskStatus::Open)).code(),
        "TASK_ALREADY_IN_STATE"
    );
    for (status, event_type) in [
        (TaskStatus::Completed, "matter.task_completed"),
        (TaskStatus::Open, "matter.task_reopened"),
        (TaskStatus::Cancelled, "matter.task_cancelled"),
    ] {
        let events = case.run(set_task(&id, status));
        assert_eq!(events[0].event_type(), event_type);
        assert_eq!(case.matter().tasks[&id].status, status);
    }
    assert_eq!(case.matter().open_tasks(), 0);
}

#[test]
fn a_task_needs_a_title_a_valid_assignee_and_a_valid_due_date() {
    let mut case = Case::opened();
    let create = |title: &str, assignee: Option<&str>, due_on: Option<&str>| {
        MatterCommand::CreateTask(CreateTask {
            title: title.to_owned(),
            assignee: assignee.map(str::to_owned),
            due_on: due_on.map(str::to_owned),
        })
    };
    assert_eq!(
        invalid_field(&case.refuse(create(" ", None, None))),
        Some("title")
    );
    assert_eq!(
        invalid_field(&case.refuse(create("t", Some("a b"), None))),
        Some("assignee")
    );
    assert_eq!(
        invalid_field(&case.refuse(create("t", None, Some("tomorrow")))),
        Some("dueOn")
    );
    let id = created_id(&case.run(create(
        " File the claim ",
        Some(PARALEGAL),
        Some("2026-04-01"),
    )));
    let task = &case.matter().tasks[&id];
    assert_eq!(task.title, "File the claim");
    assert_eq!(task.assignee.as_deref(), Some(PARALEGAL));
    assert_eq!(task.due_on.as_deref(), Some("2026-04-01"));
    assert_eq!(task.status, TaskStatus::Open);
}

#[test]
fn commands_on_unknown_tasks_notes_documents_entries_and_parties_are_refused() {
    let case = Case::opened();
    let id = new_entity_id();
    for (command, kind) in [
        (set_task(&id, TaskStatus::Completed), "task"),
        (
            MatterCommand::EditNote {
                note_id: id.clone(),
                subject: None,
                body: "b".to_owned(),
            },
            "note",
        ),
        (
            MatterCommand::AddDocumentVersion {
                document_id: id.clone(),
                content: upload(HASH, "text/plain"),
            },
            "document",
        ),
        (
            MatterCommand::CancelCalendarEntry {
                entry_id: id.clone(),
                reason: None,
            },
            "calendar entry",
        ),
        (
            MatterCommand::RemoveParty {
                party_id: id.clone(),
            },
            "party",
        ),
        (
            MatterCommand::RemoveTeamMember {
                user_id: PARALEGAL.to_owned(),
            },
            "team member",
        ),
    ] {
        let error = case.refuse(command);
        assert_eq!(error.code(), "NOT_FOUND");
        assert_eq!(error, DomainError::EntityNotFound { kind });
    }
}

// ---- team and parties --------------------------------------------------------------------------

#[test]
fn adding_a_team_member_twice_is_refused_and_the_responsible_attorney_cannot_leave() {
    let mut case = Case::opened();
    let add = MatterCommand::AddTeamMember(AddTeamMember {
        user_id: PARALEGAL.to_owned(),
        capacity: TeamCapacity::Paralegal,
    });
    case.run(add.clone());
    assert_eq!(case.refuse(add).code(), "ALREADY_ON_TEAM");
    assert_eq!(
        invalid_field(&case.refuse(MatterCommand::RemoveTeamMember {
            user_id: ATTORNEY.to_owned()
        })),
        Some("userId")
    );
    case.run(MatterCommand::RemoveTeamMember {
        user_id: PARALEGAL.to_owned(),
    });
    assert!(!case.matter().team.contains_key(PARALEGAL));
}

#[test]
fn duplicate_party_with_same_role_is_refused() {
    let mut case = Case::opened();
    let contact = new_entity_id();
    let party_id =
        created_id(&case.run_with(party(&contact, PartyRole::Client), &contact_exists()));
    let error = case.refuse_with(party(&contact, PartyRole::Client), &contact_exists());
    assert_eq!(error.code(), "DUPLICATE_PARTY");
    assert_eq!(error.field(), Some("contactId"));
    // The same contact in another role is another party.
    case.run_with(party(&contact, PartyRole::Witness), &contact_exists());
    assert_eq!(case.matter().parties.len(), 2);
    // Once removed, the contact can be added in that role again.
    case.run(MatterCommand::RemoveParty { party_id });
    case.run_with(party(&contact, PartyRole::Client), &contact_exists());
    assert_eq!(case.matter().parties.len(), 2);
}

#[test]
fn a_party_must_be_an_existing_contact_with_a_valid_id() {
    let case = Case::opened();
    let contact = new_entity_id();
    let error = case.refuse(party(&contact, PartyRole::Client));
    assert_eq!(error.code(), "CONTACT_NOT_FOUND");
    let error = case.refuse_with(
        party(&contact.to_uppercase(), PartyRole::Client),
        &contact_exists(),
    );
    assert_eq!(invalid_field(&error), Some("contactId"));
}

#[test]
fn a_conflict_check_keeps_its_search_under_private() {
    let mut case = Case::open(&OpenMatter {
        intake: true,
        ..open_matter("2026-0006")
    });
    let hit = ConflictHit {
        matter_number: "2025-0107".to_owned(),
        party_id: new_entity_id(),
        role: PartyRole::OpposingParty,
    };
    let events = case.run(conflict_check(vec![hit.clone()], Some("Different Jones")));
    let payload = events[0].to_draft().unwrap().payload;
    assert_eq!(
        payload["private"],
        json!({"query": "Jones Ltd", "notes": "Different Jones"})
    );
    assert_eq!(payload["outcome"], "potential_conflict");
    let check = &case.matter().conflict_checks[0];
    assert_eq!(check.hits, [hit]);
    assert_eq!(check.query, "Jones Ltd");
    assert_eq!(
        case.matter().status,
        MatterStatus::Intake,
        "recording a check changes no status"
    );
    let blank = MatterCommand::RecordConflictCheck(RecordConflictCheck {
        query: " ".to_owned(),
        outcome: ConflictOutcome::Cleared,
        reviewer: ATTORNEY.to_owned(),
        hits: Vec::new(),
        notes: None,
    });
    assert_eq!(invalid_field(&case.refuse(blank)), Some("query"));
}

// ---- custom fields -----------------------------------------------------------------------------

#[test]
fn custom_field_values_must_match_their_kind() {
    let mut case = Case::opened();
    let (_, text) = define_field("court_reference", FieldKind::Text, &[], false);
    let (_, number) = define_field("claim_value", FieldKind::Number, &[], false);
    let (_, date) = define_field("hearing_date", FieldKind::Date, &[], false);
    let (_, choice) = define_field(
        "track",
        FieldKind::Choice,
        &["small", "fast", "multi"],
        false,
    );

    for (field, good, normalised) in [
        (&text, json!("  HC-2026-1 "), json!("HC-2026-1")),
        (&number, json!(25000.5), json!(25000.5)),
        (&date, json!("2026-05-01"), json!("2026-05-01")),
        (&choice, json!("fast"), json!("fast")),
    ] {
        case.run_with(set_field(&field.key, Some(good)), &field_lookup(field));
        assert_eq!(case.matter().custom_fields[&field.key], normalised);
    }
    for (field, bad) in [
        (&text, json!(12)),
        (&text, json!("  ")),
        (&text, json!("x".repeat(2001))),
        (&number, json!("12")),
        (&date, json!("1 May 2026")),
        (&date, json!(20260501)),
        (&choice, json!("slow")),
        (&choice, json!(["fast"])),
        (&number, json!(true)),
    ] {
        let error = case.refuse_with(
            set_field(&field.key, Some(bad.clone())),
            &field_lookup(field),
        );
        assert_eq!(
            invalid_field(&error),
            Some("value"),
            "{} = {bad}",
            field.key
        );
    }
}

#[test]
fn a_custom_field_must_be_defined_before_it_is_set() {
    let case = Case::opened();
    let (_, field) = define_field("court_reference", FieldKind::Text, &[], false);
    let command = set_field("court_reference", Some(json!("HC-1")));
    let error = case.refuse(command.clone());
    assert_eq!(error.code(), "CUSTOM_FIELD_NOT_DEFINED");
    assert_eq!(error.field(), Some("key"));
    let (_, other) = define_field("other_field", FieldKind::Text, &[], false);
    assert_eq!(
        case.refuse_with(command.clone(), &field_lookup(&other))
            .code(),
        "CUSTOM_FIELD_NOT_DEFINED"
    );
    assert!(case.decide(&command, &field_lookup(&field)).is_ok());
}

#[test]
fn clearing_a_custom_field_removes_it_and_clearing_an_unset_one_is_refused() {
    let mut case = Case::opened();
    let (_, field) = define_field("court_reference", FieldKind::Text, &[], false);
    let lookups = field_lookup(&field);
    assert_eq!(
        case.refuse_with(set_field(&field.key, None), &lookups)
            .code(),
        "NOTHING_TO_CHANGE"
    );
    case.run_with(set_field(&field.key, Some(json!("HC-1"))), &lookups);
    let events = case.run_with(set_field(&field.key, None), &lookups);
    assert_eq!(
        events[0].to_draft().unwrap().payload,
        json!({"key": "court_reference", "value": null})
    );
    assert!(case.matter().custom_fields.is_empty());
}

#[test]
fn sensitive_custom_field_values_travel_under_private() {
    let mut case = Case::opened();
    let (_, field) = define_field("client_date_of_birth", FieldKind::Date, &[], true);
    let lookups = field_lookup(&field);
    let events = case.run_with(set_field(&field.key, Some(json!("1980-02-29"))), &lookups);
    let DomainEvent::MatterCustomFieldSet(set) = &events[0] else {
        unreachable!()
    };
    assert_eq!(set.value, None);
    assert_eq!(
        set.private,
        Some(PrivateValue {
            value: json!("1980-02-29")
        })
    );
    let payload = events[0].to_draft().unwrap().payload;
    assert_eq!(
        payload,
        json!({"key": "client_date_of_birth", "private": {"value": "1980-02-29"}})
    );
    assert_eq!(events[0].changed_fields(), ["key", "private.value"]);
    assert_eq!(case.matter().custom_fields[&field.key], json!("1980-02-29"));

    let events = case.run_with(set_field(&field.key, None), &lookups);
    assert_eq!(
        events[0].to_draft().unwrap().payload,
        json!({"key": "client_date_of_birth", "private": {"value": null}}),
        "clearing a sensitive field keeps even the null under private"
    );
    assert!(case.matter().custom_fields.is_empty());
}

#[test]
fn a_custom_field_key_is_defined_once_and_only_choice_fields_have_choices() {
    let define = |key: &str, kind: FieldKind, choices: &[&str], stream_version: u64| {
        custom_fields::define(
            &DefineCustomField {
                key: key.to_owned(),
                label: "Label".to_owned(),
                kind,
                choices: choices.iter().map(|c| (*c).to_owned()).collect(),
                sensitive: false,
            },
            stream_version,
        )
    };
    assert_eq!(
        define("track", FieldKind::Text, &[], 1).unwrap_err().code(),
        "DUPLICATE_CUSTOM_FIELD"
    );
    assert_eq!(
        invalid_field(&define("Track", FieldKind::Text, &[], 0).unwrap_err()),
        Some("key")
    );
    assert_eq!(
        invalid_field(&define("1track", FieldKind::Text, &[], 0).unwrap_err()),
        Some("key")
    );
    assert_eq!(
        invalid_field(&define(&"t".repeat(41), FieldKind::Text, &[], 0).unwrap_err()),
        Some("key")
    );
    assert_eq!(
        invalid_field(&define("track", FieldKind::Choice, &[], 0).unwrap_err()),
        Some("choices")
    );
    let many: Vec<String> = (0..101).map(|n| format!("c{n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        invalid_field(&define("track", FieldKind::Choice, &many, 0).unwrap_err()),
        Some("choices")
    );
    assert_eq!(
        invalid_field(&define("track", FieldKind::Text, &["a"], 0).unwrap_err()),
        Some("choices")
    );
    assert_eq!(
        invalid_field(&define("track", FieldKind::Choice, &["a", " "], 0).unwrap_err()),
        Some("choices")
    );
    let DomainEvent::CustomFieldDefined(defined) =
        define("track", FieldKind::Choice, &[" fast ", "multi"], 0).unwrap()
    else {
        unreachable!()
    };
    assert_eq!(defined.choices, ["fast", "multi"]);
}

// ---- calendar ----------------------------------------------------------------------------------

#[test]
fn deadlines_need_a_rule() {
    let mut case = Case::opened();
    for kind in [CalendarKind::Deadline, CalendarKind::FilingDeadline] {
        assert_eq!(
            invalid_field(&case.refuse(entry(kind, None))),
            Some("rule"),
            "{kind:?}"
        );
        assert_eq!(
            invalid_field(&case.refuse(entry(kind, Some("  ")))),
            Some("rule"),
            "{kind:?}"
        );
        case.run(entry(kind, Some("CPR 7.5: serve within 4 months")));
    }
    for kind in [CalendarKind::Hearing, CalendarKind::Meeting] {
        case.run(entry(kind, None));
    }
    assert_eq!(case.matter().calendar.len(), 4);
}

#[test]
fn calendar_times_are_normalised_and_cannot_end_before_they_start() {
    let mut case = Case::opened();
    let schedule = |starts_at: &str, ends_at: Option<&str>, all_day: bool| {
        MatterCommand::ScheduleCalendarEntry(ScheduleCalendarEntry {
            kind: CalendarKind::Hearing,
            title: "Trial".to_owned(),
            starts_at: starts_at.to_owned(),
            ends_at: ends_at.map(str::to_owned),
            all_day,
            rule: None,
            location: Some("Court 4".to_owned()),
        })
    };
    let id = created_id(&case.run(schedule(
        "2026-04-01T10:00:00+01:00",
        Some("2026-04-01T12:30:00+01:00"),
        false,
    )));
    let entry = &case.matter().calendar[&id];
    assert_eq!(entry.starts_at, "2026-04-01T09:00:00Z");
    assert_eq!(entry.ends_at.as_deref(), Some("2026-04-01T11:30:00Z"));
    let id = created_id(&case.run(schedule("2026-04-01", Some("2026-04-03"), true)));
    assert_eq!(case.matter().calendar[&id].starts_at, "2026-04-01");

    assert_eq!(
        invalid_field(&case.refuse(schedule(
            "2026-04-01T10:00:00Z",
            Some("2026-04-01T09:00:00Z"),
            false
        ))),
        Some("endsAt")
    );
    assert_eq!(
        invalid_field(&case.refuse(schedule("2026-04-03", Some("2026-04-01"), true))),
        Some("endsAt")
    );
    assert_eq!(
        invalid_field(&case.refuse(schedule("2026-04-01", None, false))),
        Some("startsAt")
    );
    assert_eq!(
        invalid_field(&case.refuse(schedule("2026-04-01T10:00:00Z", None, true))),
        Some("startsAt")
    );
}

#[test]
fn a_cancelled_calendar_entry_cannot_be_cancelled_again() {
    let mut case = Case::opened();
    let id = created_id(&case.run(entry(CalendarKind::Hearing, None)));
    let cancel = MatterCommand::CancelCalendarEntry {
        entry_id: id.clone(),
        reason: Some("Adjourned".to_owned()),
    };
    case.run(cancel.clone());
    assert!(case.matter().calendar[&id].cancelled);
    assert_eq!(invalid_field(&case.refuse(cancel)), Some("entryId"));
}

// ---- documents, notes, time --------------------------------------------------------------------

#[test]
fn document_versions_are_numbered_from_one() {
    let mut case = Case::opened();
    let id = created_id(&case.run(document(upload(HASH, "Application/PDF"))));
    let second = UploadedContent {
        filename: Some("claim-v2.pdf".to_owned()),
        ..upload(&"f".repeat(64), "application/pdf")
    };
    let events = case.run(MatterCommand::AddDocumentVersion {
        document_id: id.clone(),
        content: second,
    });
    let DomainEvent::DocumentVersionAdded(added) = &events[0] else {
        unreachable!()
    };
    assert_eq!(added.content.version, 2);
    assert_eq!(added.private.filename.as_deref(), Some("claim-v2.pdf"));
    let document = &case.matter().documents[&id];
    let versions: Vec<u32> = document
        .versions
        .iter()
        .map(|v| v.content.version)
        .collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(
        document.versions[0].content.media_type, "application/pdf",
        "media types are lower-cased"
    );
    assert_eq!(document.title.as_deref(), Some("Claim form"));
}

#[test]
fn a_document_needs_a_lowercase_hex_content_hash_and_a_media_type() {
    let case = Case::opened();
    for hash in [
        HASH.to_uppercase(),
        HASH[..63].to_owned(),
        format!("{}g", &HASH[..63]),
    ] {
        assert_eq!(
            invalid_field(&case.refuse(document(upload(&hash, "application/pdf")))),
            Some("content")
        );
    }
    for media_type in ["pdf", "application/", "/pdf", "text/plain; charset=utf-8"] {
        assert_eq!(
            invalid_field(&case.refuse(document(upload(HASH, media_type)))),
            Some("mediaType"),
            "{media_type}"
        );
    }
}

#[test]
fn notes_keep_subject_and_body_under_private_and_their_author_from_the_actor() {
    let mut case = Case::opened();
    let events = case.run(MatterCommand::AddNote(AddNote {
        privileged: true,
        subject: Some("Call".to_owned()),
        body: "Client wants to settle".to_owned(),
    }));
    let id = created_id(&events);
    assert_eq!(
        events[0].to_draft().unwrap().payload["private"],
        json!({"subject": "Call", "body": "Client wants to settle"})
    );
    assert_eq!(
        invalid_field(&case.refuse(MatterCommand::EditNote {
            note_id: id.clone(),
            subject: None,
            body: " ".to_owned()
        })),
        Some("body")
    );
    case.run(MatterCommand::EditNote {
        note_id: id.clone(),
        subject: None,
        body: "Client will settle".to_owned(),
    });
    let note = &case.matter().notes[&id];
    assert!(note.privileged);
    assert_eq!(
        note.subject, None,
        "an edit replaces subject and body as a whole"
    );
    assert_eq!(note.body, "Client will settle");
    assert_eq!(note.author, ACTOR);
    assert!(note.edited_at.is_some());
}

#[test]
fn recorded_time_is_1_to_1440_whole_minutes() {
    let mut case = Case::opened();
    assert_eq!(invalid_field(&case.refuse(time(0))), Some("minutes"));
    assert_eq!(invalid_field(&case.refuse(time(1441))), Some("minutes"));
    case.run(time(1));
    let id = created_id(&case.run(time(1440)));
    assert_eq!(case.matter().time_entries[&id].minutes, 1440);
    let no_narrative = MatterCommand::RecordTime(RecordTime {
        user_id: ATTORNEY.to_owned(),
        worked_on: "2026-03-02".to_owned(),
        minutes: 6,
        billable: false,
        description: String::new(),
    });
    assert_eq!(
        invalid_field(&case.refuse(no_narrative)),
        Some("description")
    );
}

// ---- contacts ----------------------------------------------------------------------------------

#[test]
fn contact_details_are_client_data_under_private() {
    let DomainEvent::ContactCreated(created) =
        contact::create(&person_fully("Jane Smith")).unwrap()
    else {
        unreachable!()
    };
    assert_eq!(created.private.emails[0].value, "jane.smith@example.com");
    let payload = DomainEvent::ContactCreated(created)
        .to_draft()
        .unwrap()
        .payload;
    let members: Vec<&String> = payload.as_object().unwrap().keys().collect();
    assert_eq!(members, ["contact_id", "kind", "private"]);
    assert_eq!(payload["private"]["display_name"], "Jane Smith");
}

#[test]
fn an_organisation_has_a_display_name_only() {
    let command = CreateContact {
        kind: ContactKind::Organisation,
        details: ContactDetails {
            display_name: "Jones Ltd".to_owned(),
            given_name: Some("Tom".to_owned()),
            ..ContactDetails::default()
        },
    };
    assert_eq!(
        invalid_field(&contact::create(&command).unwrap_err()),
        Some("givenName")
    );
}

#[test]
fn contact_details_are_checked() {
    let with = |change: &dyn Fn(&mut ContactDetails)| {
        let mut command = person("Jane Smith");
        change(&mut command.details);
        contact::create(&command)
    };
    let refused = |change: &dyn Fn(&mut ContactDetails)| invalid_field(&with(change).unwrap_err());
    assert_eq!(
        refused(&|d| d.display_name = " ".to_owned()),
        Some("displayName")
    );
    assert_eq!(
        refused(&|d| d.emails = vec![LabelledValue {
            value: "jane@localhost".to_owned(),
            label: None
        }]),
        Some("emails")
    );
    assert_eq!(
        refused(&|d| d.phones = vec![LabelledValue {
            value: "call me".to_owned(),
            label: None
        }]),
        Some("phones")
    );
    assert_eq!(
        refused(&|d| d.addresses = vec![PostalAddress {
            lines: Vec::new(),
            locality: None,
            region: None,
            postal_code: None,
            country: None,
            label: None
        }]),
        Some("addresses")
    );
    assert_eq!(
        refused(&|d| d.phones = vec![
            LabelledValue {
                value: "1".to_owned(),
                label: None
            };
            21
        ]),
        Some("phones")
    );
    assert!(
        with(&|d| d.phones = vec![
            LabelledValue {
                value: "1".to_owned(),
                label: None
            };
            20
        ])
        .is_ok()
    );
}

#[test]
fn updating_a_contact_replaces_its_details_and_no_change_is_refused() {
    let created = contact::create(&person_fully("Jane Smith")).unwrap();
    let id = created_id(std::slice::from_ref(&created));
    let stream = format!("contact:{id}");
    let mut state = None;
    Contact::apply(&mut state, &round_trip(1, &stream, 1, &created));
    let contact = state.clone().unwrap();

    let mut same = contact.details.clone();
    same.emails[0].value = same.emails[0].value.to_uppercase();
    assert_eq!(
        contact.update(&same).unwrap_err().code(),
        "NOTHING_TO_CHANGE",
        "normalised details are compared"
    );

    let moved = ContactDetails {
        addresses: Vec::new(),
        ..contact.details.clone()
    };
    let updated = contact.update(&moved).unwrap();
    assert_eq!(updated.event_type(), "contact.updated");
    Contact::apply(&mut state, &round_trip(2, &stream, 2, &updated));
    let contact = state.unwrap();
    assert!(contact.details.addresses.is_empty());
    assert_eq!(contact.version, 2);
    assert_eq!(contact.contact_id, id);
}

// ---- folding and decoding ------------------------------------------------------------------------

#[test]
fn folding_events_rebuilds_the_state() {
    let mut case = Case::open(&open_matter_fully("2026-0007"));
    case.run(to(MatterStatus::Open));
    let contact = new_entity_id();
    let party_id =
        created_id(&case.run_with(party(&contact, PartyRole::Client), &contact_exists()));
    let task_id = created_id(&case.run(task("File the claim")));
    case.run(set_task(&task_id, TaskStatus::Completed));
    let note_id = created_id(&case.run(note("Called the client")));
    let document_id = created_id(&case.run(document(upload(HASH, "application/pdf"))));
    let time_id = created_id(&case.run(time(90)));
    case.run(details(ChangeMatterDetails {
        title: Some("Smith v Jones Ltd".to_owned()),
        ..ChangeMatterDetails::default()
    }));

    // Fold what was stored, from scratch.
    let matter = Matter::fold(&case.history).unwrap();
    assert_eq!(matter.number, "2026-0007");
    assert_eq!(matter.title, "Smith v Jones Ltd");
    assert_eq!(
        matter.description.as_deref(),
        Some("Unfair dismissal claim")
    );
    assert_eq!(matter.status, MatterStatus::Open);
    assert_eq!(matter.opened_on, "2026-02-27");
    assert_eq!(
        matter.statute_of_limitations_on.as_deref(),
        Some("2028-02-27")
    );
    assert_eq!(matter.parties[&party_id].contact_id, contact);
    assert_eq!(matter.tasks[&task_id].status, TaskStatus::Completed);
    assert_eq!(matter.notes[&note_id].body, "Called the client");
    assert_eq!(matter.documents[&document_id].versions.len(), 1);
    assert_eq!(matter.time_entries[&time_id].minutes, 90);
    assert_eq!(matter.version, case.history.len() as u64);
    assert_eq!(matter.position, case.history.last().unwrap().position);
    assert_eq!(matter.created_at, case.history[0].recorded_at);
    assert_eq!(matter.updated_at, case.history.last().unwrap().recorded_at);

    // Folding the events as decided (before storage) gives the same state: storage loses nothing
    // the fold reads.
    let unstored: Vec<RecordedEvent> = case
        .history
        .iter()
        .zip(&case.written)
        .map(|(recorded, event)| RecordedEvent {
            event: event.clone(),
            ..recorded.clone()
        })
        .collect();
    assert_eq!(Matter::fold(&unstored), Some(matter.clone()));

    // A prefix is the matter as it was then (replay).
    let before_task = case
        .history
        .iter()
        .position(|r| r.event.event_type() == "matter.task_created")
        .unwrap();
    let then = Matter::fold(&case.history[..before_task]).unwrap();
    assert!(then.tasks.is_empty());
    assert_eq!(then.title, "Smith v Jones");
    assert_eq!(then.version, before_task as u64);

    // Nothing before matter.opened makes a matter; events of other streams are ignored.
    assert_eq!(Matter::fold(&case.history[3..]), None);
    let contact_event = round_trip(
        99,
        "contact:x",
        1,
        &contact::create(&person("Jane")).unwrap(),
    );
    let mut with_contact = case.history.clone();
    with_contact.push(contact_event);
    let folded = Matter::fold(&with_contact).unwrap();
    assert_eq!(folded.title, matter.title);
    assert_eq!(folded.tasks, matter.tasks);
}

#[test]
fn time_recorded_v1_events_are_upcast_on_decode() {
    let mut case = Case::opened();
    let entry_id = new_entity_id();
    let v1 = json!({
        "time_entry_id": entry_id,
        "user_id": ATTORNEY,
        "worked_on": "2025-11-03",
        "hours": "1.5",
        "billable": true,
        "private": {"description": "Advice call"},
    });
    let position = case.history.len() as u64 + 1;
    let event = stored(
        position,
        &case.stream,
        position,
        "matter.time_recorded",
        1,
        &v1,
    );
    let recorded = RecordedEvent::decode(&event).unwrap().unwrap();
    let DomainEvent::TimeRecorded(time) = &recorded.event else {
        panic!("{:?}", recorded.event)
    };
    assert_eq!(time.minutes, 90);
    assert_eq!(time.worked_on, "2025-11-03");
    assert_eq!(recorded.event.schema_version(), 2);
    // Written again, it is a v2 payload: minutes, no hours.
    let draft = recorded.event.to_draft().unwrap();
    assert_eq!(draft.schema_version, 2);
    assert_eq!(draft.payload["minutes"], 90);
    assert!(draft.payload.get("hours").is_none());

    case.history.push(recorded);
    assert_eq!(case.matter().time_entries[&entry_id].minutes, 90);

    for (hours, minutes) in [("0.1", 6), ("2", 120), ("0.25", 15), ("24", 1440)] {
        let mut v1 = v1.clone();
        v1["hours"] = json!(hours);
        let event = stored(1, "matter:2026-0001", 1, "matter.time_recorded", 1, &v1);
        let DomainEvent::TimeRecorded(time) = DomainEvent::decode(&event).unwrap().unwrap() else {
            unreachable!()
        };
        assert_eq!(time.minutes, minutes, "{hours} hours");
    }
}

#[test]
fn stored_payloads_that_do_not_fit_their_schema_version_are_refused_on_decode() {
    let v1 = json!({
        "time_entry_id": new_entity_id(),
        "user_id": ATTORNEY,
        "worked_on": "2025-11-03",
        "hours": "1,5",
        "billable": true,
        "private": {"description": "Advice call"},
    });
    let event = stored(7, "matter:2026-0001", 3, "matter.time_recorded", 1, &v1);
    assert!(matches!(
        RecordedEvent::decode(&event),
        Err(DecodeError::Payload { position: 7, .. })
    ));

    // A v1 shape claimed as v2, and a version newer than this build.
    let mut as_v2 = v1.clone();
    as_v2["hours"] = json!("1.5");
    let event = stored(8, "matter:2026-0001", 4, "matter.time_recorded", 2, &as_v2);
    assert!(RecordedEvent::decode(&event).is_err());
    let opened = decide::open(&open_matter("2026-0001"), 0)
        .unwrap()
        .remove(0)
        .to_draft()
        .unwrap();
    let event = stored(
        9,
        "matter:2026-0001",
        1,
        "matter.opened",
        2,
        &opened.payload,
    );
    assert!(RecordedEvent::decode(&event).is_err());
    // The log's own events are not the domain's.
    let genesis = stored(
        1,
        "system",
        1,
        "log.genesis",
        1,
        &json!({"format": "docket-log/1"}),
    );
    assert_eq!(RecordedEvent::decode(&genesis).unwrap(), None);
}

#[test]
fn a_new_responsible_attorney_joins_the_team_in_the_same_append() {
    let mut case = Case::opened();
    let events = case.run(MatterCommand::ChangeDetails(ChangeMatterDetails {
        responsible_attorney: Some("dana".to_owned()),
        ..ChangeMatterDetails::default()
    }));
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event_type(), "matter.team_member_added");
    let matter = case.matter();
    assert_eq!(matter.responsible_attorney, "dana");
    assert_eq!(
        matter.team.get("dana"),
        Some(&TeamCapacity::ResponsibleAttorney)
    );
    // The former responsible attorney may now leave; the new one may not.
    case.run(MatterCommand::RemoveTeamMember {
        user_id: ATTORNEY.to_owned(),
    });
    assert_eq!(
        invalid_field(&case.refuse(MatterCommand::RemoveTeamMember {
            user_id: "dana".to_owned()
        })),
        Some("userId")
    );
}

#[test]
fn attorney_capacities_come_from_the_matter_not_from_team_changes() {
    let case = Case::opened();
    let error = case.refuse(MatterCommand::AddTeamMember(AddTeamMember {
        user_id: "erin".to_owned(),
        capacity: TeamCapacity::ResponsibleAttorney,
    }));
    assert_eq!(invalid_field(&error), Some("capacity"));
}

#[test]
fn a_document_larger_than_json_can_count_or_with_a_nested_media_type_is_refused() {
    let case = Case::opened();
    let upload = |size: u64, media_type: &str| {
        MatterCommand::AddDocument(AddDocument {
            document_type: "pleading".to_owned(),
            title: "Claim".to_owned(),
            description: None,
            content: UploadedContent {
                content_hash: HASH.to_owned(),
                size,
                media_type: media_type.to_owned(),
                filename: None,
                uploaded_by: ATTORNEY.to_owned(),
            },
        })
    };
    assert_eq!(
        invalid_field(&case.refuse(upload(1 << 53, "application/pdf"))),
        Some("content")
    );
    assert_eq!(
        invalid_field(&case.refuse(upload(10, "a/b/c"))),
        Some("mediaType")
    );
    assert!(
        case.decide(&upload(10, "application/pdf"), &Lookups::default())
            .is_ok()
    );
}

#[test]
fn the_state_commands_are_decided_on_keeps_notes_by_id_only() {
    let mut case = Case::opened();
    let first = created_id(&case.run(MatterCommand::AddNote(AddNote {
        privileged: true,
        subject: Some("Call".to_owned()),
        body: "Client wants to settle".to_owned(),
    })));
    let second = created_id(&case.run(MatterCommand::AddNote(AddNote {
        privileged: false,
        subject: None,
        body: "Filed the claim".to_owned(),
    })));
    case.run(MatterCommand::EditNote {
        note_id: first.clone(),
        subject: Some("Call back".to_owned()),
        body: "Client will settle".to_owned(),
    });

    let mut decisions = None;
    for recorded in &case.history {
        Matter::apply_for_decisions(&mut decisions, recorded);
    }
    let decisions = decisions.expect("the matter was opened");
    let mut expected = case.matter();
    assert_eq!(expected.notes[&first].body, "Client will settle");
    assert!(
        expected.note_ids.is_empty(),
        "a full fold keeps whole notes"
    );

    // No note text, subject or author is held: only the ids.
    assert!(decisions.notes.is_empty());
    assert_eq!(decisions.note_ids.len(), 2);
    assert!(decisions.has_note(&first) && decisions.has_note(&second));
    assert!(expected.has_note(&first) && expected.has_note(&second));

    // Everything else is the full fold's.
    expected.notes.clear();
    let mut without_ids = decisions.clone();
    without_ids.note_ids = Default::default();
    assert_eq!(without_ids, expected, "only the notes differ");

    // A command is decided the same on either state.
    let edit = MatterCommand::EditNote {
        note_id: second.clone(),
        subject: None,
        body: "Served the claim".to_owned(),
    };
    let lookups = Lookups::default();
    assert_eq!(
        decisions.decide(&edit, &lookups).unwrap(),
        case.decide(&edit, &lookups).unwrap()
    );
    let missing = MatterCommand::EditNote {
        note_id: "no-such-note".to_owned(),
        subject: None,
        body: "x".to_owned(),
    };
    assert!(matches!(
        decisions.decide(&missing, &lookups),
        Err(DomainError::EntityNotFound { kind: "note" })
    ));
}
