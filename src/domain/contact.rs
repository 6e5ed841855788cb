//! Contacts: the people and organisations the firm deals with. Everything about them except
//! their id and kind is client data, carried under `private`.

use super::commands::CreateContact;
use super::error::DomainError;
use super::events::{
    ContactCreated, ContactDetails, ContactKind, ContactUpdated, DomainEvent, Identifier,
    LabelledValue, PostalAddress, RecordedEvent,
};
use super::ids::new_entity_id;
use super::rules::{optional_text, required_text};

const NAME_MAX: usize = 300;
const ITEM_MAX: usize = 20;

/// A contact folded from its stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub contact_id: String,
    pub kind: ContactKind,
    pub details: ContactDetails,
    pub version: u64,
    pub position: u64,
    pub created_at: String,
    pub updated_at: String,
    /// Its details were erased (its data key destroyed): it accepts no further change.
    pub erased: bool,
}

impl Contact {
    pub fn apply(contact: &mut Option<Contact>, recorded: &RecordedEvent) {
        match (&recorded.event, contact.as_mut()) {
            (DomainEvent::ContactCreated(created), _) => {
                *contact = Some(Contact {
                    contact_id: created.contact_id.clone(),
                    kind: created.kind,
                    details: created.private.clone(),
                    version: recorded.stream_version,
                    position: recorded.position,
                    created_at: recorded.recorded_at.clone(),
                    updated_at: recorded.recorded_at.clone(),
                    erased: false,
                });
            }
            (DomainEvent::SubjectErased(_), Some(contact)) => {
                contact.erased = true;
                contact.details = ContactDetails::default();
                contact.version = recorded.stream_version;
                contact.position = recorded.position;
                contact.updated_at = recorded.recorded_at.clone();
            }
            (DomainEvent::ContactUpdated(updated), Some(contact)) => {
                contact.details = updated.private.clone();
                contact.version = recorded.stream_version;
                contact.position = recorded.position;
                contact.updated_at = recorded.recorded_at.clone();
            }
            _ => {}
        }
    }

    /// Replaces the details; refused when nothing would change.
    pub fn update(&self, details: &ContactDetails) -> Result<DomainEvent, DomainError> {
        if self.erased {
            return Err(DomainError::Erased);
        }
        let details = check_details(self.kind, details)?;
        if details == self.details {
            return Err(DomainError::NothingToChange);
        }
        Ok(DomainEvent::ContactUpdated(ContactUpdated {
            private: details,
        }))
    }
}

/// A new contact with a fresh id.
pub fn create(command: &CreateContact) -> Result<DomainEvent, DomainError> {
    Ok(DomainEvent::ContactCreated(ContactCreated {
        contact_id: new_entity_id(),
        kind: command.kind,
        private: check_details(command.kind, &command.details)?,
    }))
}

fn check_details(
    kind: ContactKind,
    details: &ContactDetails,
) -> Result<ContactDetails, DomainError> {
    let (given_name, family_name) = match kind {
        ContactKind::Person => (
            optional_text("givenName", details.given_name.as_deref(), NAME_MAX)?,
            optional_text("familyName", details.family_name.as_deref(), NAME_MAX)?,
        ),
        ContactKind::Organisation => {
            if details.given_name.is_some() || details.family_name.is_some() {
                return Err(DomainError::invalid(
                    "givenName",
                    "an organisation has a display name only",
                ));
            }
            (None, None)
        }
    };
    for (field, count) in [
        ("emails", details.emails.len()),
        ("phones", details.phones.len()),
        ("addresses", details.addresses.len()),
        ("identifiers", details.identifiers.len()),
    ] {
        if count > ITEM_MAX {
            return Err(DomainError::invalid(
                field,
                format!("at most {ITEM_MAX} entries"),
            ));
        }
    }
    Ok(ContactDetails {
        display_name: required_text("displayName", &details.display_name, NAME_MAX)?,
        given_name,
        family_name,
        emails: details
            .emails
            .iter()
            .map(|email| {
                let value = required_text("emails", &email.value, 254)?;
                if !is_plausible_email(&value) {
                    return Err(DomainError::invalid("emails", "not an email address"));
                }
                labelled(value.to_lowercase(), email.label.as_deref(), "emails")
            })
            .collect::<Result<_, _>>()?,
        phones: details
            .phones
            .iter()
            .map(|phone| {
                let value = required_text("phones", &phone.value, 40)?;
                if !value
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-().x".contains(c))
                {
                    return Err(DomainError::invalid(
                        "phones",
                        "digits, spaces and + - ( ) . x only",
                    ));
                }
                labelled(value, phone.label.as_deref(), "phones")
            })
            .collect::<Result<_, _>>()?,
        addresses: details
            .addresses
            .iter()
            .map(check_address)
            .collect::<Result<_, _>>()?,
        identifiers: details
            .identifiers
            .iter()
            .map(|identifier| {
                Ok(Identifier {
                    scheme: required_text("identifiers", &identifier.scheme, 60)?,
                    value: required_text("identifiers", &identifier.value, 120)?,
                })
            })
            .collect::<Result<_, DomainError>>()?,
    })
}

fn labelled(
    value: String,
    label: Option<&str>,
    field: &'static str,
) -> Result<LabelledValue, DomainError> {
    Ok(LabelledValue {
        value,
        label: optional_text(field, label, 60)?,
    })
}

fn check_address(address: &PostalAddress) -> Result<PostalAddress, DomainError> {
    if address.lines.is_empty() || address.lines.len() > 6 {
        return Err(DomainError::invalid(
            "addresses",
            "an address has 1 to 6 lines",
        ));
    }
    Ok(PostalAddress {
        lines: address
            .lines
            .iter()
            .map(|line| required_text("addresses", line, 200))
            .collect::<Result<_, _>>()?,
        locality: optional_text("addresses", address.locality.as_deref(), 120)?,
        region: optional_text("addresses", address.region.as_deref(), 120)?,
        postal_code: optional_text("addresses", address.postal_code.as_deref(), 20)?,
        country: optional_text("addresses", address.country.as_deref(), 60)?,
        label: optional_text("addresses", address.label.as_deref(), 60)?,
    })
}

fn is_plausible_email(text: &str) -> bool {
    match text.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !text.contains(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str) -> CreateContact {
        CreateContact {
            kind: ContactKind::Person,
            details: ContactDetails {
                display_name: name.into(),
                emails: vec![LabelledValue {
                    value: "A@Example.com".into(),
                    label: None,
                }],
                ..ContactDetails::default()
            },
        }
    }

    #[test]
    fn emails_are_checked_and_lower_cased() {
        let DomainEvent::ContactCreated(created) = create(&person("Ann")).unwrap() else {
            panic!("expected contact.created");
        };
        assert_eq!(created.private.emails[0].value, "a@example.com");
        let mut bad = person("Ann");
        bad.details.emails[0].value = "not-an-address".into();
        assert_eq!(create(&bad).unwrap_err().code(), "INVALID_INPUT");
    }

    #[test]
    fn a_contact_needs_a_name() {
        assert_eq!(
            create(&person("  ")).unwrap_err().field(),
            Some("displayName")
        );
    }
}
