//! The rules of a matter: whether a command may be applied to its current state, and which
//! events record it. Nothing here does I/O; facts from other streams (does the contact exist,
//! how is the custom field defined) are looked up by the caller and passed in.

use crate::domain::commands::{
    AddDocument, ChangeMatterDetails, ChangeMatterStatus, MatterCommand, OpenMatter,
    ScheduleCalendarEntry, SetCustomField, UploadedContent,
};
use crate::domain::custom_fields::CustomField;
use crate::domain::error::DomainError;
use crate::domain::events::*;
use crate::domain::ids::{MatterNumber, check_entity_id, check_user_id, new_entity_id};
use crate::domain::rules::{date, instant, optional_date, optional_text, required_text, today};

use super::state::Matter;

const TITLE_MAX: usize = 300;
const LONG_TEXT_MAX: usize = 20_000;
const NOTE_MAX: usize = 100_000;
const SHORT_MAX: usize = 120;
/// Longest reason for freezing or unfreezing a matter.
pub const FREEZE_REASON_MAX: usize = 1_000;

/// Facts from outside the matter's stream that a command needs.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    /// For `AddParty`: whether the contact exists.
    pub contact_exists: bool,
    /// For `SetCustomField`: the field's definition.
    pub custom_field: Option<CustomField>,
}

/// Opens a matter: `matter.opened`, then the responsible (and originating) attorney join its
/// team, all in one append.
pub fn open(command: &OpenMatter, stream_version: u64) -> Result<Vec<DomainEvent>, DomainError> {
    if stream_version > 0 {
        return Err(DomainError::DuplicateMatterNumber);
    }
    let number = MatterNumber::parse(&command.matter_number)?;
    check_user_id("responsibleAttorney", &command.responsible_attorney)?;
    if let Some(originating) = &command.originating_attorney {
        check_user_id("originatingAttorney", originating)?;
    }
    let opened = MatterOpened {
        matter_number: number.to_string(),
        title: required_text("title", &command.title, TITLE_MAX)?,
        practice_area: required_text("practiceArea", &command.practice_area, SHORT_MAX)?,
        status: if command.intake {
            MatterStatus::Intake
        } else {
            MatterStatus::Open
        },
        responsible_attorney: command.responsible_attorney.clone(),
        originating_attorney: command.originating_attorney.clone(),
        opened_on: match &command.opened_on {
            Some(day) => date("openedOn", day)?,
            None => today(),
        },
        statute_of_limitations_on: optional_date(
            "statuteOfLimitationsOn",
            command.statute_of_limitations_on.as_deref(),
        )?,
        private: MatterPrivate {
            description: optional_text(
                "description",
                command.description.as_deref(),
                LONG_TEXT_MAX,
            )?,
        },
    };

    let mut events = vec![
        DomainEvent::MatterOpened(opened),
        DomainEvent::TeamMemberAdded(TeamMemberAdded {
            user_id: command.responsible_attorney.clone(),
            capacity: TeamCapacity::ResponsibleAttorney,
        }),
    ];
    if let Some(originating) = &command.originating_attorney
        && originating != &command.responsible_attorney
    {
        events.push(DomainEvent::TeamMemberAdded(TeamMemberAdded {
            user_id: originating.clone(),
            capacity: TeamCapacity::OriginatingAttorney,
        }));
    }
    Ok(events)
}

impl Matter {
    /// Decides a command against this state.
    pub fn decide(
        &self,
        command: &MatterCommand,
        lookups: &Lookups,
    ) -> Result<Vec<DomainEvent>, DomainError> {
        self.check_accepts(command)?;
        let event = match command {
            MatterCommand::ChangeDetails(change) => {
                let changed = self.change_details(change)?;
                return Ok(self.with_attorneys_on_team(changed));
            }
            MatterCommand::ChangeStatus(change) => self.change_status(change)?,
            MatterCommand::SetCustomField(set) => self.set_custom_field(set, lookups)?,
            MatterCommand::AddTeamMember(add) => {
                check_user_id("userId", &add.user_id)?;
                if matches!(
                    add.capacity,
                    TeamCapacity::ResponsibleAttorney | TeamCapacity::OriginatingAttorney
                ) {
                    return Err(DomainError::invalid(
                        "capacity",
                        "the responsible and originating attorneys are set on the matter itself",
                    ));
                }
                if self.team.contains_key(&add.user_id) {
                    return Err(DomainError::AlreadyOnTeam);
                }
                DomainEvent::TeamMemberAdded(TeamMemberAdded {
                    user_id: add.user_id.clone(),
                    capacity: add.capacity,
                })
            }
            MatterCommand::RemoveTeamMember { user_id } => {
                if !self.team.contains_key(user_id) {
                    return Err(DomainError::EntityNotFound {
                        kind: "team member",
                    });
                }
                if user_id == &self.responsible_attorney {
                    return Err(DomainError::invalid(
                        "userId",
                        "the responsible attorney stays on the team; change the responsible attorney first",
                    ));
                }
                DomainEvent::TeamMemberRemoved(TeamMemberRemoved {
                    user_id: user_id.clone(),
                })
            }
            MatterCommand::AddParty(add) => {
                check_entity_id("contactId", &add.contact_id)?;
                if !lookups.contact_exists {
                    return Err(DomainError::ContactNotFound);
                }
                let duplicate = self
                    .parties
                    .values()
                    .any(|party| party.contact_id == add.contact_id && party.role == add.role);
                if duplicate {
                    return Err(DomainError::DuplicateParty {
                        role: add.role.as_str(),
                    });
                }
                DomainEvent::PartyAdded(PartyAdded {
                    party_id: new_entity_id(),
                    contact_id: add.contact_id.clone(),
                    role: add.role,
                })
            }
            MatterCommand::RemoveParty { party_id } => {
                if !self.parties.contains_key(party_id) {
                    return Err(DomainError::EntityNotFound { kind: "party" });
                }
                DomainEvent::PartyRemoved(PartyRemoved {
                    party_id: party_id.clone(),
                })
            }
            MatterCommand::RecordConflictCheck(check) => {
                check_user_id("reviewer", &check.reviewer)?;
                DomainEvent::ConflictCheckRecorded(ConflictCheckRecorded {
                    check_id: new_entity_id(),
                    outcome: check.outcome,
                    reviewer: check.reviewer.clone(),
                    hits: check.hits.clone(),
                    private: ConflictCheckPrivate {
                        query: required_text("query", &check.query, TITLE_MAX)?,
                        notes: optional_text("notes", check.notes.as_deref(), LONG_TEXT_MAX)?,
                    },
                })
            }
            MatterCommand::AddDocument(add) => add_document(add)?,
            MatterCommand::AddDocumentVersion {
                document_id,
                content,
            } => {
                let document = self
                    .documents
                    .get(document_id)
                    .ok_or(DomainError::EntityNotFound { kind: "document" })?;
                let next = u32::try_from(document.versions.len() + 1)
                    .map_err(|_| DomainError::invalid("documentId", "too many versions"))?;
                let (content, filename) = document_content(content, next)?;
                DomainEvent::DocumentVersionAdded(DocumentVersionAdded {
                    document_id: document_id.clone(),
                    content,
                    private: DocumentPrivate {
                        title: None,
                        description: None,
                        filename,
                    },
                })
            }
            MatterCommand::AddNote(add) => DomainEvent::NoteAdded(NoteAdded {
                note_id: new_entity_id(),
                privileged: add.privileged,
                private: NotePrivate {
                    subject: optional_text("subject", add.subject.as_deref(), TITLE_MAX)?,
                    body: required_text("body", &add.body, NOTE_MAX)?,
                },
            }),
            MatterCommand::EditNote {
                note_id,
                subject,
                body,
            } => {
                if !self.has_note(note_id) {
                    return Err(DomainError::EntityNotFound { kind: "note" });
                }
                DomainEvent::NoteEdited(NoteEdited {
                    note_id: note_id.clone(),
                    private: NotePrivate {
                        subject: optional_text("subject", subject.as_deref(), TITLE_MAX)?,
                        body: required_text("body", body, NOTE_MAX)?,
                    },
                })
            }
            MatterCommand::CreateTask(create) => {
                if let Some(assignee) = &create.assignee {
                    check_user_id("assignee", assignee)?;
                }
                DomainEvent::TaskCreated(TaskCreated {
                    task_id: new_entity_id(),
                    title: required_text("title", &create.title, TITLE_MAX)?,
                    assignee: create.assignee.clone(),
                    due_on: optional_date("dueOn", create.due_on.as_deref())?,
                })
            }
            MatterCommand::SetTaskStatus { task_id, to } => self.set_task_status(task_id, *to)?,
            MatterCommand::ScheduleCalendarEntry(entry) => schedule(entry)?,
            MatterCommand::CancelCalendarEntry { entry_id, reason } => {
                let entry = self
                    .calendar
                    .get(entry_id)
                    .ok_or(DomainError::EntityNotFound {
                        kind: "calendar entry",
                    })?;
                if entry.cancelled {
                    return Err(DomainError::invalid(
                        "entryId",
                        "the entry is already cancelled",
                    ));
                }
                DomainEvent::CalendarEntryCancelled(CalendarEntryCancelled {
                    entry_id: entry_id.clone(),
                    reason: optional_text("reason", reason.as_deref(), LONG_TEXT_MAX)?,
                })
            }
            MatterCommand::SetVisibility { firm_visible } => {
                if *firm_visible == self.firm_visible {
                    return Err(DomainError::invalid(
                        "firmVisible",
                        "the matter already has this visibility",
                    ));
                }
                DomainEvent::MatterVisibilityChanged(
                    crate::domain::identity::MatterVisibilityChanged {
                        firm_visible: *firm_visible,
                    },
                )
            }
            MatterCommand::RecordTime(time) => {
                check_user_id("userId", &time.user_id)?;
                if time.minutes == 0 || time.minutes > 24 * 60 {
                    return Err(DomainError::invalid("minutes", "must be 1 to 1440"));
                }
                DomainEvent::TimeRecorded(TimeRecorded {
                    time_entry_id: new_entity_id(),
                    user_id: time.user_id.clone(),
                    worked_on: date("workedOn", &time.worked_on)?,
                    minutes: time.minutes,
                    billable: time.billable,
                    private: TimePrivate {
                        description: required_text(
                            "description",
                            &time.description,
                            LONG_TEXT_MAX,
                        )?,
                    },
                })
            }
        };
        Ok(vec![event])
    }

    /// A details change naming a new responsible or originating attorney also puts them on the
    /// team, in the same append.
    fn with_attorneys_on_team(&self, change: DomainEvent) -> Vec<DomainEvent> {
        let mut events = vec![change];
        let DomainEvent::MatterDetailsChanged(details) = &events[0] else {
            return events;
        };
        let mut joining = Vec::new();
        for (user, capacity) in [
            (
                &details.responsible_attorney,
                TeamCapacity::ResponsibleAttorney,
            ),
            (
                &details.originating_attorney,
                TeamCapacity::OriginatingAttorney,
            ),
        ] {
            if let Some(user) = user
                && !self.team.contains_key(user)
                && !joining.iter().any(|(joined, _)| joined == user)
            {
                joining.push((user.clone(), capacity));
            }
        }
        events.extend(joining.into_iter().map(|(user_id, capacity)| {
            DomainEvent::TeamMemberAdded(TeamMemberAdded { user_id, capacity })
        }));
        events
    }

    /// Freezes the matter for an incident: from then on it takes no command but
    /// [`Matter::unfreeze`], whatever its status. An erased matter has nothing left to keep.
    pub fn freeze(&self, reason: &str) -> Result<Vec<DomainEvent>, DomainError> {
        if self.erased {
            return Err(DomainError::Erased);
        }
        if self.frozen {
            return Err(DomainError::MatterFrozen);
        }
        Ok(vec![DomainEvent::MatterFrozen(MatterFrozen {
            reason: required_text("reason", reason, FREEZE_REASON_MAX)?,
        })])
    }

    /// Lifts a freeze; the matter's own rules (closed, archived) apply again.
    pub fn unfreeze(&self, reason: &str) -> Result<Vec<DomainEvent>, DomainError> {
        if !self.frozen {
            return Err(DomainError::MatterNotFrozen);
        }
        Ok(vec![DomainEvent::MatterUnfrozen(MatterUnfrozen {
            reason: required_text("reason", reason, FREEZE_REASON_MAX)?,
        })])
    }

    /// Erased and frozen matters take nothing; archived ones nothing; closed ones only status
    /// changes.
    fn check_accepts(&self, command: &MatterCommand) -> Result<(), DomainError> {
        if self.erased {
            return Err(DomainError::Erased);
        }
        // Before every other rule: a frozen matter is evidence, whatever its status.
        if self.frozen {
            return Err(DomainError::MatterFrozen);
        }
        match (self.status, command) {
            (MatterStatus::Archived, _) => Err(DomainError::MatterArchived),
            (MatterStatus::Closed, MatterCommand::ChangeStatus(_)) => Ok(()),
            (MatterStatus::Closed, _) => Err(DomainError::MatterClosed),
            _ => Ok(()),
        }
    }

    fn change_details(&self, change: &ChangeMatterDetails) -> Result<DomainEvent, DomainError> {
        let differs = |new: &Option<String>, old: Option<&String>| -> Option<String> {
            new.as_ref().filter(|new| Some(*new) != old).cloned()
        };
        for (field, user) in [
            ("responsibleAttorney", &change.responsible_attorney),
            ("originatingAttorney", &change.originating_attorney),
        ] {
            if let Some(user) = user {
                check_user_id(field, user)?;
            }
        }
        let title = change
            .title
            .as_deref()
            .map(|title| required_text("title", title, TITLE_MAX))
            .transpose()?;
        let practice_area = change
            .practice_area
            .as_deref()
            .map(|area| required_text("practiceArea", area, SHORT_MAX))
            .transpose()?;
        let description =
            optional_text("description", change.description.as_deref(), LONG_TEXT_MAX)?;
        let limitation = optional_date(
            "statuteOfLimitationsOn",
            change.statute_of_limitations_on.as_deref(),
        )?;

        let event = MatterDetailsChanged {
            title: differs(&title, Some(&self.title)),
            practice_area: differs(&practice_area, Some(&self.practice_area)),
            responsible_attorney: differs(
                &change.responsible_attorney,
                Some(&self.responsible_attorney),
            ),
            originating_attorney: differs(
                &change.originating_attorney,
                self.originating_attorney.as_ref(),
            ),
            statute_of_limitations_on: differs(
                &limitation,
                self.statute_of_limitations_on.as_ref(),
            ),
            private: differs(&description, self.description.as_ref()).map(|description| {
                MatterPrivate {
                    description: Some(description),
                }
            }),
        };
        if event == MatterDetailsChanged::default() {
            return Err(DomainError::NothingToChange);
        }
        Ok(DomainEvent::MatterDetailsChanged(event))
    }

    fn change_status(&self, change: &ChangeMatterStatus) -> Result<DomainEvent, DomainError> {
        use MatterStatus::*;
        let allowed = matches!(
            (self.status, change.to),
            (Intake, Open)
                | (Intake, Closed)
                | (Open, Pending)
                | (Pending, Open)
                | (Open, Closed)
                | (Pending, Closed)
                | (Closed, Open)
                | (Closed, Archived)
        );
        if !allowed {
            return Err(DomainError::InvalidTransition {
                from: self.status.as_str(),
                to: change.to.as_str(),
            });
        }
        let reason = optional_text("reason", change.reason.as_deref(), LONG_TEXT_MAX)?;
        let mut forced = false;
        if change.to == Closed {
            let open = self.open_tasks();
            if open > 0 {
                if !change.force {
                    return Err(DomainError::OpenTasks { open });
                }
                if reason.is_none() {
                    return Err(DomainError::invalid(
                        "reason",
                        "a forced close needs a reason",
                    ));
                }
                forced = true;
            }
        }
        if self.status == Closed && change.to == Open && reason.is_none() {
            return Err(DomainError::invalid(
                "reason",
                "reopening a matter needs a reason",
            ));
        }
        Ok(DomainEvent::MatterStatusChanged(MatterStatusChanged {
            from: self.status,
            to: change.to,
            effective_on: match &change.effective_on {
                Some(day) => date("effectiveOn", day)?,
                None => today(),
            },
            reason,
            forced,
        }))
    }

    fn set_custom_field(
        &self,
        set: &SetCustomField,
        lookups: &Lookups,
    ) -> Result<DomainEvent, DomainError> {
        let field = lookups
            .custom_field
            .as_ref()
            .filter(|field| field.key == set.key)
            .ok_or(DomainError::CustomFieldNotDefined)?;
        let value = set
            .value
            .as_ref()
            .map(|value| field.check_value(value))
            .transpose()?;
        if value.is_none() && !self.custom_fields.contains_key(&set.key) {
            return Err(DomainError::NothingToChange);
        }
        let value = value.unwrap_or(serde_json::Value::Null);
        Ok(DomainEvent::MatterCustomFieldSet(if field.sensitive {
            MatterCustomFieldSet {
                key: set.key.clone(),
                value: None,
                private: Some(PrivateValue { value }),
            }
        } else {
            MatterCustomFieldSet {
                key: set.key.clone(),
                value: Some(value),
                private: None,
            }
        }))
    }

    fn set_task_status(&self, task_id: &str, to: TaskStatus) -> Result<DomainEvent, DomainError> {
        let task = self
            .tasks
            .get(task_id)
            .ok_or(DomainError::EntityNotFound { kind: "task" })?;
        if task.status == to {
            return Err(DomainError::TaskAlreadyInState {
                status: to.as_str(),
            });
        }
        let reference = TaskRef {
            task_id: task_id.to_owned(),
        };
        Ok(match to {
            TaskStatus::Completed => DomainEvent::TaskCompleted(reference),
            TaskStatus::Open => DomainEvent::TaskReopened(reference),
            TaskStatus::Cancelled => DomainEvent::TaskCancelled(reference),
        })
    }
}

fn add_document(add: &AddDocument) -> Result<DomainEvent, DomainError> {
    let (content, filename) = document_content(&add.content, 1)?;
    Ok(DomainEvent::DocumentAdded(DocumentAdded {
        document_id: new_entity_id(),
        document_type: required_text("documentType", &add.document_type, SHORT_MAX)?,
        content,
        private: DocumentPrivate {
            title: Some(required_text("title", &add.title, TITLE_MAX)?),
            description: optional_text("description", add.description.as_deref(), LONG_TEXT_MAX)?,
            filename,
        },
    }))
}

fn document_content(
    content: &UploadedContent,
    version: u32,
) -> Result<(DocumentContent, Option<String>), DomainError> {
    let hash_ok = content.content_hash.len() == 64
        && content
            .content_hash
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if content.size > crate::log::limits::MAX_SAFE_INTEGER {
        return Err(DomainError::invalid("content", "content is too large"));
    }
    check_user_id("uploadedBy", &content.uploaded_by)?;
    if !hash_ok {
        return Err(DomainError::invalid(
            "content",
            "content hash must be 64 lowercase hex digits",
        ));
    }
    let media_ok = content.media_type.len() <= 127
        && content
            .media_type
            .split_once('/')
            .is_some_and(|(kind, sub)| {
                !kind.is_empty()
                    && !sub.is_empty()
                    && !sub.contains('/')
                    && content
                        .media_type
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/+-.".contains(c))
            });
    if !media_ok {
        return Err(DomainError::invalid(
            "mediaType",
            "must be a media type such as application/pdf",
        ));
    }
    Ok((
        DocumentContent {
            version,
            content_hash: content.content_hash.clone(),
            size: content.size,
            media_type: content.media_type.to_ascii_lowercase(),
            uploaded_by: content.uploaded_by.clone(),
        },
        optional_text("filename", content.filename.as_deref(), 255)?,
    ))
}

fn schedule(entry: &ScheduleCalendarEntry) -> Result<DomainEvent, DomainError> {
    let (starts_at, ends_at) = if entry.all_day {
        let ends = optional_date("endsAt", entry.ends_at.as_deref())?;
        (date("startsAt", &entry.starts_at)?, ends)
    } else {
        let ends = entry
            .ends_at
            .as_deref()
            .map(|end| instant("endsAt", end))
            .transpose()?;
        (instant("startsAt", &entry.starts_at)?, ends)
    };
    if ends_at.as_ref().is_some_and(|end| end < &starts_at) {
        return Err(DomainError::invalid(
            "endsAt",
            "must not be before the start",
        ));
    }
    if matches!(
        entry.kind,
        CalendarKind::FilingDeadline | CalendarKind::Deadline
    ) && entry
        .rule
        .as_deref()
        .is_none_or(|rule| rule.trim().is_empty())
    {
        return Err(DomainError::invalid(
            "rule",
            "a deadline needs the rule or reason that sets it",
        ));
    }
    Ok(DomainEvent::CalendarEntryScheduled(
        CalendarEntryScheduled {
            entry_id: new_entity_id(),
            kind: entry.kind,
            title: required_text("title", &entry.title, TITLE_MAX)?,
            starts_at,
            ends_at,
            all_day: entry.all_day,
            rule: optional_text("rule", entry.rule.as_deref(), LONG_TEXT_MAX)?,
            location: optional_text("location", entry.location.as_deref(), TITLE_MAX)?,
        },
    ))
}
