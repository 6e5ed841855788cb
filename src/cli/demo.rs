//! `docket demo`: fills an empty data directory with a small firm's case records, written
//! through the service exactly as the API writes them (so every rule is checked and every
//! event is signed), then brings the read models up to date.
//!
//! The content is fixed: the same matters, people, documents and history every time (only the
//! generated ids and recorded times differ).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use super::fail;
use crate::app::Docket;
use crate::config::Settings;
use crate::domain::DomainError;
use crate::domain::commands::*;
use crate::domain::events::*;
use crate::log::Actor;
use crate::projection::apply::PAGE;
use crate::service::{CommandContext, Service, ServiceError};
use crate::store::EventLog;

pub async fn run(settings: &Settings) -> ExitCode {
    let docket = match Docket::open_with(&settings.log_options(), Duration::ZERO).await {
        Ok(docket) => docket,
        Err(error) => return fail(error),
    };
    match domain_events(&docket.log).await {
        Ok(0) => {}
        Ok(count) => {
            return fail(format!(
                "the log in {} already has case records ({count} events); the demo only fills \
                 an empty data directory",
                settings.data_dir.display()
            ));
        }
        Err(error) => return fail(error),
    }
    let mut demo = Demo::new(&docket.service);
    if let Err(error) = demo.write().await {
        return fail(format!("writing the demo data failed: {error}"));
    }
    let users = match demo_users(&docket).await {
        Ok(users) => users,
        Err(error) => return fail(format!("adding the demo users failed: {error}")),
    };
    let progress = match docket.projector.catch_up().await {
        Ok(progress) => progress,
        Err(error) => return fail(error),
    };
    if !progress.failed.is_empty() {
        return fail(format!(
            "projections stopped: {}",
            progress.failed.join(", ")
        ));
    }
    match summary(&docket, settings).await {
        Ok(text) => {
            print!("{text}");
            print!("{users}");
            ExitCode::SUCCESS
        }
        Err(error) => fail(error),
    }
}

/// How many events of the domain (matters, contacts, custom fields) the log holds.
async fn domain_events(log: &EventLog) -> Result<u64, crate::store::StoreError> {
    let mut from = 1;
    let mut count = 0;
    loop {
        let page = log.store().read_page(from, PAGE).await?;
        let Some(last) = page.last().map(|event| event.position) else {
            return Ok(count);
        };
        count += page
            .iter()
            .filter(|event| DomainEvent::current_version(&event.event_type).is_some())
            .count() as u64;
        from = last + 1;
    }
}

/// One enrolled user per role, matching the demo matters' teams.
const DEMO_USERS: [(&str, &str, crate::domain::identity::Role); 6] = {
    use crate::domain::identity::Role::*;
    [
        ("demo.admin", "Demo Admin", Admin),
        ("a.okafor", "Adaeze Okafor", Partner),
        ("j.lindqvist", "Johan Lindqvist", Attorney),
        ("m.castellanos", "Marta Castellanos", Paralegal),
        ("h.sato", "Hiro Sato", Staff),
        ("demo.auditor", "Demo Auditor", Auditor),
    ]
};

/// Adds and enrols the demo users and returns their credentials as text. For local
/// exploration only: the passwords and TOTP secrets are printed.
async fn demo_users(docket: &Docket) -> Result<String, crate::identity::IdentityError> {
    use crate::identity::secret::{token, totp::TotpSecret};
    use zeroize::Zeroizing;
    let identity = &docket.identity;
    let mut out = String::from(
        "\ndemo users (for local exploration only; these credentials are now in your terminal):\n",
    );
    for (user_id, name, role) in DEMO_USERS {
        let email = format!("{user_id}@demo.docket.example");
        let added = identity
            .add_user(
                &Actor::system(),
                None,
                &email,
                name,
                role,
                &[],
                Some(user_id),
            )
            .await?;
        let start = identity.begin_enrolment(&added.enrolment_token).await?;
        let password = token::issue("")?.text;
        let secret = TotpSecret::from_base32(&start.secret_base32)?;
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        identity
            .complete_enrolment(
                &added.enrolment_token,
                Zeroizing::new(password.to_string()),
                &secret.code_at(now),
            )
            .await?;
        out.push_str(&format!(
            "  {:<10} {email}\n             password {}\n             TOTP secret {} ({})\n",
            role.as_str(),
            password.as_str(),
            start.secret_base32.as_str(),
            start.otpauth_uri.as_str(),
        ));
    }
    Ok(out)
}

async fn summary(docket: &Docket, settings: &Settings) -> Result<String, String> {
    let pool = docket.projector.db().pool();
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .map_err(|error| error.to_string())
    };
    let statuses: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM rm_matters GROUP BY status ORDER BY status")
            .fetch_all(pool)
            .await
            .map_err(|error| error.to_string())?;
    let by_status = statuses
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect::<Vec<_>>()
        .join(", ");
    let head = docket.log.head().await.map_err(|error| error.to_string())?;
    let minutes =
        count("SELECT CAST(COALESCE(SUM(minutes), 0) AS BIGINT) FROM rm_time_entries").await?;
    let dir =
        std::fs::canonicalize(&settings.data_dir).unwrap_or_else(|_| settings.data_dir.clone());
    let mut out = String::new();
    out.push_str(&format!("demo data written to {}\n", dir.display()));
    out.push_str(&format!(
        "  {} matters ({by_status})\n",
        count("SELECT COUNT(*) FROM rm_matters").await?
    ));
    out.push_str(&format!(
        "  {} contacts ({} organisations), {} parties on matters, {} conflict checks\n",
        count("SELECT COUNT(*) FROM rm_contacts").await?,
        count("SELECT COUNT(*) FROM rm_contacts WHERE kind = 'organisation'").await?,
        count("SELECT COUNT(*) FROM rm_parties").await?,
        count("SELECT COUNT(*) FROM rm_conflict_checks").await?,
    ));
    out.push_str(&format!(
        "  {} documents ({} versions), {} notes ({} privileged)\n",
        count("SELECT COUNT(*) FROM rm_documents").await?,
        count("SELECT COUNT(*) FROM rm_document_versions").await?,
        count("SELECT COUNT(*) FROM rm_notes").await?,
        count("SELECT COUNT(*) FROM rm_notes WHERE privileged = 1").await?,
    ));
    out.push_str(&format!(
        "  {} tasks ({} open), {} calendar entries ({} hearings, {} filing deadlines)\n",
        count("SELECT COUNT(*) FROM rm_tasks").await?,
        count("SELECT COUNT(*) FROM rm_tasks WHERE status = 'open'").await?,
        count("SELECT COUNT(*) FROM rm_calendar").await?,
        count("SELECT COUNT(*) FROM rm_calendar WHERE kind = 'hearing'").await?,
        count("SELECT COUNT(*) FROM rm_calendar WHERE kind = 'filing_deadline'").await?,
    ));
    out.push_str(&format!(
        "  {} time entries ({:.1} hours), {} custom fields\n",
        count("SELECT COUNT(*) FROM rm_time_entries").await?,
        minutes as f64 / 60.0,
        count("SELECT COUNT(*) FROM rm_custom_fields").await?,
    ));
    out.push_str(&format!("  log head at position {}\n", head.position));
    let database = if settings.database_url.is_some() {
        " --database-url <the same PostgreSQL URL>"
    } else {
        ""
    };
    out.push_str("serve it with (DOCKET_DEV=1 turns GraphiQL on):\n");
    out.push_str(&format!(
        "  DOCKET_DEV=1 docket serve --data-dir {}{database}\n",
        dir.display()
    ));
    out.push_str(&format!(
        "then open GraphiQL at http://{}/graphiql\n",
        settings.listen
    ));
    Ok(out)
}

// ---- the firm's people ---------------------------------------------------------------------

/// key, kind, display name, email, phone, address line, locality, postal code, country,
/// identifier (scheme, value).
type ContactRow = (
    &'static str,
    ContactKind,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

const ORG: ContactKind = ContactKind::Organisation;
const PERSON: ContactKind = ContactKind::Person;

#[rustfmt::skip]
const CONTACTS: &[ContactRow] = &[
    ("harbor", ORG, "Harbor Freight Lines Ltd", "legal@harborfreight.example", "+44 20 7946 0112", "Unit 7, Thameside Park", "London", "E16 2QA", "GB", Some(("company_number", "04127733"))),
    ("calder", ORG, "Calder Logistics plc", "company.secretary@calder.example", "+44 161 496 0733", "1 Ship Canal House", "Manchester", "M17 1SP", "GB", Some(("company_number", "02984410"))),
    ("marsh", ORG, "Marsh & Pennington LLP", "reception@marshpennington.example", "+44 20 7946 0840", "40 Chancery Lane", "London", "WC2A 1JE", "GB", Some(("sra_number", "612904"))),
    ("high_court", ORG, "High Court of Justice, Business and Property Courts", "listing.bpc@justice.example", "+44 20 7947 6000", "Rolls Building, 7 Rolls Buildings, Fetter Lane", "London", "EC4A 1NL", "GB", None),
    ("lumen", ORG, "Lumen Robotics Ltd", "founders@lumenrobotics.example", "+44 1223 496 021", "Building 3, Cambridge Science Park", "Cambridge", "CB4 0FX", "GB", Some(("company_number", "12884301"))),
    ("northgate", ORG, "Northgate Ventures LP", "deals@northgate.example", "+44 20 7946 0555", "12 Berkeley Square", "London", "W1J 6BS", "GB", Some(("lp_number", "LP019877"))),
    ("quayside", ORG, "Quayside Estates Ltd", "lettings@quayside.example", "+44 191 498 0300", "Quayside Chambers, 5 Sandhill", "Newcastle upon Tyne", "NE1 3AF", "GB", Some(("company_number", "07733190"))),
    ("hollis", ORG, "Hollis Foods Ltd", "hr@hollisfoods.example", "+44 113 496 0190", "Aire Valley Works", "Leeds", "LS10 1DJ", "GB", Some(("company_number", "03310072"))),
    ("tribunal", ORG, "Employment Tribunal, London Central", "londoncentralet@justice.example", "+44 20 7273 8603", "Victory House, 30-34 Kingsway", "London", "WC2B 6EX", "GB", None),
    ("solent", ORG, "Solent Photonics Ltd", "ip@solentphotonics.example", "+44 23 8049 6077", "2 Ocean Way, Ocean Village", "Southampton", "SO14 3JZ", "GB", Some(("company_number", "09455128"))),
    ("northwind", ORG, "Northwind Outdoor GmbH", "recht@northwind-outdoor.example", "+49 89 2019 4420", "Leopoldstrasse 118", "Munich", "80802", "DE", Some(("hrb", "HRB 245117"))),
    ("meridian", ORG, "Meridian Bank plc", "recoveries@meridianbank.example", "+44 20 7946 0999", "1 Meridian Place", "London", "EC2M 4AA", "GB", Some(("company_number", "00981221"))),
    ("pell", ORG, "Pell & Rowe Ltd", "board@pellrowe.example", "+44 121 496 0450", "88 Colmore Row", "Birmingham", "B3 2AB", "GB", Some(("company_number", "05577310"))),
    ("family_court", ORG, "Family Court at Central London", "cfc.enquiries@justice.example", "+44 20 7421 8594", "First Avenue House, 42-49 High Holborn", "London", "WC1V 6NP", "GB", None),
    ("kestrel", ORG, "Kestrel Forensic Accounting LLP", "instructions@kestrelfa.example", "+44 20 7946 0271", "3 Bishopsgate Court", "London", "EC2N 4BQ", "GB", Some(("company_number", "OC402817"))),
    ("okonjo", PERSON, "Daniel Okonjo", "d.okonjo@mail.example", "+44 7700 900121", "14 Alder Road", "Salford", "M6 8HD", "GB", Some(("ni_number", "QQ123456C"))),
    ("raman", PERSON, "Priya Raman", "p.raman@marshpennington.example", "+44 20 7946 0841", "40 Chancery Lane", "London", "WC2A 1JE", "GB", Some(("sra_number", "488201"))),
    ("grant", PERSON, "Oliver Grant", "o.grant@marshpennington.example", "+44 20 7946 0845", "40 Chancery Lane", "London", "WC2A 1JE", "GB", Some(("sra_number", "530917"))),
    ("h_brandt", PERSON, "Helen Brandt", "helen.brandt@mail.example", "+44 7700 900345", "9 Elm Park Gardens", "London", "SW10 9QE", "GB", None),
    ("m_brandt", PERSON, "Marcus Brandt", "marcus.brandt@mail.example", "+44 7700 900346", "22 Cheyne Walk", "London", "SW3 5HL", "GB", None),
    ("achterberg", PERSON, "Ruth Achterberg", "r.achterberg@achterberg-family.example", "+44 20 7946 0620", "5 Gray's Inn Square", "London", "WC1R 5AH", "GB", Some(("sra_number", "401276"))),
    ("s_ferreira", PERSON, "Sofia Ferreira", "sofia.ferreira@mail.example", "+44 7700 900512", "31 Marlowe Close", "Croydon", "CR0 6TB", "GB", None),
    ("t_ferreira", PERSON, "Tomás Ferreira", "tomas.ferreira@mail.example", "+44 7700 900513", "Flat 4, 18 Queens Road", "Brighton", "BN1 3XA", "GB", None),
    ("voss", PERSON, "Eleanor Voss", "eleanor.voss@mail.example", "+44 7700 900618", "The Old Forge, Mill Lane", "Hexham", "NE46 3RA", "GB", Some(("passport", "533380006"))),
    ("tosh", PERSON, "George Tosh", "g.tosh@mail.example", "+44 7700 900733", "67 Harrow View", "Harrow", "HA1 4TE", "GB", None),
    ("mercer", PERSON, "Dr Alan Mercer", "alan.mercer@mercer-engineering.example", "+44 117 496 0802", "Temple Quay House", "Bristol", "BS1 6EG", "GB", None),
    ("castell", PERSON, "Naomi Castell", "n.castell@harborfreight.example", "+44 20 7946 0119", "Unit 7, Thameside Park", "London", "E16 2QA", "GB", None),
    ("halvorsen", PERSON, "Ingrid Halvorsen", "ingrid@halvorsen-ip.example", "+47 22 12 34 56", "Karl Johans gate 27", "Oslo", "0159", "NO", Some(("bar_number", "NO-20418"))),
    ("al_sayed", PERSON, "Fatima Al-Sayed", "fatima.alsayed@mail.example", "+44 7700 900842", "5 Canal Street", "Manchester", "M1 3HE", "GB", None),
    ("li_wei", PERSON, "Dr Li Wei", "li.wei@photonics-experts.example", "+44 1865 496 0033", "Begbroke Science Park", "Oxford", "OX5 1PF", "GB", None),
    ("lamb", PERSON, "Beatrice Lamb", "b.lamb@lambco-solicitors.example", "+44 1434 496 011", "2 Market Place", "Hexham", "NE46 1XQ", "GB", Some(("sra_number", "377105"))),
    ("ortiz", PERSON, "Samuel Ortiz", "s.ortiz@ortiz-tm.example", "+44 20 7946 0388", "18 Hanover Square", "London", "W1S 1JY", "GB", Some(("ipreg_number", "TM-4417"))),
];

fn contact_details(row: &ContactRow) -> ContactDetails {
    let (_, kind, name, email, phone, line, locality, postal_code, country, identifier) = *row;
    let (given_name, family_name) = match kind {
        ContactKind::Person => {
            let plain = name.trim_start_matches("Dr ");
            match plain.split_once(' ') {
                Some((given, family)) => (Some(given.to_owned()), Some(family.to_owned())),
                None => (None, Some(plain.to_owned())),
            }
        }
        ContactKind::Organisation => (None, None),
    };
    let label = match kind {
        ContactKind::Person => "personal",
        ContactKind::Organisation => "office",
    };
    ContactDetails {
        display_name: name.to_owned(),
        given_name,
        family_name,
        emails: vec![LabelledValue {
            value: email.to_owned(),
            label: Some("work".into()),
        }],
        phones: vec![LabelledValue {
            value: phone.to_owned(),
            label: Some(label.into()),
        }],
        addresses: vec![PostalAddress {
            lines: vec![line.to_owned()],
            locality: Some(locality.to_owned()),
            region: None,
            postal_code: Some(postal_code.to_owned()),
            country: Some(country.to_owned()),
            label: Some(label.into()),
        }],
        identifiers: identifier
            .map(|(scheme, value)| Identifier {
                scheme: scheme.to_owned(),
                value: value.to_owned(),
            })
            .into_iter()
            .collect(),
    }
}

// ---- documents -----------------------------------------------------------------------------

/// A document and the text of each of its versions.
struct Doc {
    kind: &'static str,
    title: &'static str,
    filename: &'static str,
    pdf: bool,
    versions: &'static [&'static str],
}

/// A small but well-formed single-page PDF showing `lines`.
fn pdf(lines: &[String]) -> Vec<u8> {
    let escape = |text: &str| {
        text.replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)")
    };
    let mut stream = String::from("BT /F1 11 Tf 72 770 Td 14 TL\n");
    for line in lines {
        stream.push_str(&format!("({}) '\n", escape(line)));
    }
    stream.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}endstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{object}\nendobj\n", index + 1));
    }
    let xref = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.into_bytes()
}

fn document_bytes(number: &str, doc: &Doc, version: usize, text: &str) -> Vec<u8> {
    let lines = vec![
        doc.title.to_owned(),
        format!("Matter {number} - version {version}"),
        String::new(),
        text.to_owned(),
    ];
    if doc.pdf {
        pdf(&lines)
    } else {
        let mut out = lines.join("\n");
        out.push('\n');
        out.into_bytes()
    }
}

// ---- the matters ---------------------------------------------------------------------------

/// One matter's opening facts.
struct Opening {
    number: &'static str,
    title: &'static str,
    area: &'static str,
    responsible: &'static str,
    originating: Option<&'static str>,
    opened_on: &'static str,
    description: &'static str,
    intake: bool,
}

/// A custom field value.
enum Field {
    Text(&'static str),
    Number(i64),
}

/// One thing that happens on a matter, in the order the script lists them. Entities made by an
/// earlier step (tasks, notes, calendar entries, parties) are named by their title or contact.
enum Step {
    /// Later steps are done by this user.
    By(&'static str),
    Party(&'static str, PartyRole),
    RemoveParty(&'static str),
    /// A conflict search for these contacts over the parties of the matters before this one.
    Check(&'static [&'static str], ConflictOutcome, &'static str),
    Status(MatterStatus, &'static str, &'static str),
    Team(&'static str, TeamCapacity),
    Title(&'static str),
    Description(&'static str),
    Limitation(&'static str),
    Set(&'static str, Field),
    Document(Doc),
    /// subject, body, privileged
    Note(&'static str, &'static str, bool),
    EditNote(&'static str, &'static str),
    /// title, assignee, due on, completed (by the assignee)
    Task(&'static str, &'static str, &'static str, bool),
    CancelTask(&'static str),
    /// title, start, hours, location
    Hearing(&'static str, &'static str, i64, &'static str),
    /// title, day, the rule that sets it
    Deadline(&'static str, &'static str, &'static str),
    /// title, start, location
    Meeting(&'static str, &'static str, &'static str),
    /// title, reason
    Cancel(&'static str, &'static str),
    /// user, day, minutes, billable, narrative
    Time(&'static str, &'static str, u32, bool, &'static str),
}

struct Script {
    opening: Opening,
    steps: &'static [Step],
}

use ConflictOutcome::{Cleared, PotentialConflict};
use MatterStatus::{Archived, Closed, Open, Pending};
use PartyRole::{Client, CoCounsel, Court, Expert, OpposingCounsel, OpposingParty, Witness};
use Step::*;

/// The firm's matters, oldest first.
#[rustfmt::skip]
const MATTERS: &[Script] = &[
    Script {
        opening: Opening {
            number: "2025-0107", title: "Ferreira: child arrangements", area: "family",
            responsible: "r.adeyemi", originating: None, opened_on: "2025-06-16", intake: false,
            description: "Child arrangements order for the parties' two children.",
        },
        steps: &[
            Party("s_ferreira", Client), Party("t_ferreira", OpposingParty), Party("family_court", Court),
            Check(&["s_ferreira", "t_ferreira"], Cleared, "No matches."),
            Hearing("Dispute resolution appointment", "2025-09-18T09:30:00Z", 2, "Croydon County Court"),
            Document(Doc { kind: "order", title: "Consent order", filename: "consent-order.pdf", pdf: true,
                versions: &["Lives with the mother; alternate weekends and half of the holidays with the father."] }),
            Task("Lodge the consent order", "r.adeyemi", "2025-10-03", true),
            Time("r.adeyemi", "2025-09-18", 240, true, "Attending the dispute resolution appointment"),
            Status(Closed, "2025-10-10", "Consent order approved"),
            Status(Open, "2026-02-12", "Father applied to vary the order (C100 received)"),
            Note("Variation application",
                "Father seeks midweek overnight contact. Client is open to one overnight a fortnight.", true),
            Task("Respond to the C100", "r.adeyemi", "2026-03-04", false),
            Time("r.adeyemi", "2026-02-13", 45, true, "Reviewing the C100 with the client"),
        ],
    },
    Script {
        opening: Opening {
            number: "2025-0142", title: "Meridian Bank plc v. Tosh", area: "litigation",
            responsible: "a.okafor", originating: None, opened_on: "2025-09-01", intake: false,
            description: "Recovery of an unsecured business loan and enforcement of the judgment.",
        },
        steps: &[
            Party("meridian", Client), Party("tosh", OpposingParty), Party("high_court", Court),
            Check(&["meridian", "tosh"], Cleared, "No matches."),
            Team("s.whitfield", TeamCapacity::Paralegal),
            Document(Doc { kind: "order", title: "Default judgment", filename: "default-judgment.pdf", pdf: true,
                versions: &["Judgment for the claimant in the sum of GBP 48,210.55 plus costs."] }),
            Note("Enforcement", "Debtor owns 67 Harrow View outright; a charging order is the obvious route.", false),
            Task("Apply for a charging order", "s.whitfield", "2025-11-14", true),
            Time("a.okafor", "2025-09-02", 60, true, "Review of the loan file"),
            Time("s.whitfield", "2025-11-10", 75, true, "Charging order application"),
            Status(Closed, "2026-01-09", "Judgment debt paid in full"),
            Status(Archived, "2026-02-02", "File archived after the retention review"),
        ],
    },
    Script {
        opening: Opening {
            number: "2025-0163", title: "Purchase of The Old Forge, Mill Lane, Hexham", area: "real_estate",
            responsible: "m.castellanos", originating: None, opened_on: "2025-10-06", intake: false,
            description: "Freehold residential purchase with a mortgage; chain of two.",
        },
        steps: &[
            Party("voss", Client), Party("lamb", OpposingCounsel),
            Check(&["voss"], Cleared, "No matches."),
            Team("t.ebert", TeamCapacity::Staff),
            Document(Doc { kind: "contract", title: "Contract for sale", filename: "contract-for-sale.pdf", pdf: true,
                versions: &["Seller's draft.", "Agreed form, exchanged on 2025-12-05."] }),
            Document(Doc { kind: "title", title: "Official copy of the register NT412233", filename: "register-NT412233.pdf",
                pdf: true, versions: &["Title absolute; no restrictions."] }),
            Note("Survey", "Surveyor flags damp in the north wall; seller agreed a GBP 4,000 reduction.", false),
            Task("Local authority searches", "t.ebert", "2025-10-24", true),
            Task("Exchange contracts", "m.castellanos", "2025-12-05", true),
            Task("Register the transfer", "t.ebert", "2026-01-16", true),
            Time("m.castellanos", "2025-10-06", 45, true, "Instructions and client care letter"),
            Time("t.ebert", "2025-10-20", 60, true, "Searches"),
            Time("m.castellanos", "2025-12-05", 90, true, "Exchange of contracts"),
            Status(Closed, "2026-01-19", "Completed and registered"),
        ],
    },
    Script {
        opening: Opening {
            number: "2025-0171", title: "Hollis Foods: staff handbook review", area: "employment",
            responsible: "j.lindqvist", originating: None, opened_on: "2025-11-03", intake: false,
            description: "Review of the staff handbook for the 2025 flexible-working changes.",
        },
        steps: &[
            Party("hollis", Client),
            Check(&["hollis"], Cleared, "Existing client; no adverse parties."),
            Document(Doc { kind: "advice", title: "Staff handbook (marked up)", filename: "staff-handbook.txt", pdf: false,
                versions: &["Section 7 (flexible working) rewritten for day-one requests.",
                    "Client comments on section 9 (hybrid working) incorporated."] }),
            Note("Scope", "Fixed fee agreed; the disciplinary procedure is out of scope.", false),
            Task("Send the final handbook to HR", "j.lindqvist", "2025-12-12", true),
            Time("j.lindqvist", "2025-11-20", 180, true, "Handbook review"),
            Status(Closed, "2025-12-15", "Advice delivered"),
        ],
    },
    Script {
        opening: Opening {
            number: "2026-0001", title: "Brandt: financial remedy", area: "family",
            responsible: "r.adeyemi", originating: None, opened_on: "2026-01-08", intake: true,
            description: "Financial remedy proceedings following the divorce application.",
        },
        steps: &[
            Party("h_brandt", Client), Party("m_brandt", OpposingParty),
            Check(&["h_brandt", "m_brandt"], Cleared, "No matches for either spouse."),
            Status(Open, "2026-01-09", "Conflict check cleared"),
            Party("achterberg", OpposingCounsel), Party("family_court", Court), Party("kestrel", Expert),
            Set("estimated_value", Field::Number(2_150_000)),
            Note("Assets",
                "Client believes Mr Brandt's consultancy income is routed through a Jersey company. \
                 Ask Kestrel to trace it.", true),
            Document(Doc { kind: "form", title: "Form E (client)", filename: "form-e.pdf", pdf: true,
                versions: &["Draft from the client's figures.", "Final, sworn on 2026-02-19."] }),
            Task("Exchange Form E", "r.adeyemi", "2026-03-05", false),
            Task("Questionnaire and chronology", "r.adeyemi", "2026-03-26", false),
            Deadline("Form E exchange", "2026-03-05", "FPR 9.14(1): at least 35 days before the first appointment"),
            Hearing("First directions appointment", "2026-04-09T09:00:00Z", 1, "First Avenue House, Court 3"),
            Time("r.adeyemi", "2026-01-08", 90, true, "First meeting"),
            Time("r.adeyemi", "2026-02-16", 150, true, "Settling Form E"),
        ],
    },
    Script {
        opening: Opening {
            number: "2026-0002", title: "Harbor Freight v. Calder", area: "litigation",
            responsible: "a.okafor", originating: Some("j.lindqvist"), opened_on: "2026-01-12", intake: true,
            description: "Claim for unpaid haulage invoices and damages for the late redelivery of 42 \
                          containers under the 2023 framework agreement.",
        },
        steps: &[
            Party("harbor", Client), Party("calder", OpposingParty),
            Check(&["harbor", "calder"], Cleared,
                "No prior dealings with Calder Logistics; Harbor Freight is a new client."),
            Status(Open, "2026-01-13", "Conflict check cleared"),
            Team("s.whitfield", TeamCapacity::Paralegal),
            Party("marsh", OpposingCounsel), Party("grant", OpposingCounsel), Party("high_court", Court),
            Party("mercer", Expert),
            By("s.whitfield"), Party("castell", Witness), By("a.okafor"),
            Title("Harbor Freight Lines Ltd v. Calder Logistics plc"),
            Limitation("2029-06-30"),
            Set("referral_source", Field::Text("referral")),
            Set("court_case_number", Field::Text("BL-2026-000214")),
            Set("estimated_value", Field::Number(385_000)),
            Document(Doc { kind: "correspondence", title: "Letter before action", filename: "letter-before-action.txt",
                pdf: false, versions: &["We act for Harbor Freight Lines Ltd. Unless the invoices are paid within \
                    14 days, proceedings will be issued without further notice."] }),
            Document(Doc { kind: "pleading", title: "Particulars of claim", filename: "particulars-of-claim.pdf", pdf: true,
                versions: &["Draft for client review.", "Amended after the client's comments on the redelivery dates.",
                    "Final, as served on 2026-02-10."] }),
            Note("Strategy",
                "Calder's delay defence is weak: their own depot logs show the containers idle for nine days. \
                 Consider an early Part 36 offer at 80%.", true),
            By("s.whitfield"),
            Note("Call with N. Castell", "Naomi can give evidence on the redelivery schedule.", false),
            EditNote("Call with N. Castell",
                "Naomi can give evidence on the redelivery schedule; she is away from 3 to 14 April."),
            By("a.okafor"),
            Task("Serve the particulars of claim", "s.whitfield", "2026-02-10", true),
            Task("Instruct a forensic engineering expert", "a.okafor", "2026-02-20", true),
            Task("Witness statement of Naomi Castell", "s.whitfield", "2026-03-27", false),
            Task("Disclosure review", "j.lindqvist", "2026-04-15", false),
            Deadline("Defence due", "2026-03-10",
                "CPR 15.4(1)(b): 28 days after service of the particulars of claim where an acknowledgment \
                 of service is filed"),
            Hearing("Case management conference", "2026-04-21T09:00:00Z", 2, "Rolls Building, Court 12"),
            Deadline("Standard disclosure", "2026-05-29", "CPR 31.10; paragraph 4 of the case management order"),
            Time("a.okafor", "2026-01-12", 90, true, "Initial instructions; review of the framework agreement"),
            Time("s.whitfield", "2026-01-20", 120, true, "Chronology of container movements"),
            Time("a.okafor", "2026-02-06", 210, true, "Settling the particulars of claim"),
            Time("j.lindqvist", "2026-02-07", 30, false, "Second review of the particulars (not billed)"),
        ],
    },
    Script {
        opening: Opening {
            number: "2026-0003", title: "Opposition to the NORTHWIND trade mark", area: "intellectual_property",
            responsible: "h.sato", originating: Some("p.nair"), opened_on: "2026-01-14", intake: true,
            description: "Opposition to UK application UK00004012345 (NORTHWIND, classes 9 and 25) based on \
                          the client's earlier NORTHWINDOW mark.",
        },
        steps: &[
            Party("solent", Client), Party("northwind", OpposingParty),
            Check(&["solent", "northwind"], Cleared, "No matches."),
            Status(Open, "2026-01-15", "Conflict check cleared"),
            Party("ortiz", OpposingCounsel), Party("halvorsen", CoCounsel), Party("li_wei", Expert),
            Set("referral_source", Field::Text("directory_listing")),
            Document(Doc { kind: "pleading", title: "Notice of opposition (TM7)", filename: "tm7.pdf", pdf: true,
                versions: &["Grounds: sections 5(2)(b) and 5(3) of the Trade Marks Act 1994."] }),
            Note("Evidence of reputation", "Sales figures for NORTHWINDOW since 2019 are with the client's CFO.", true),
            Deadline("Applicant's counter-statement (TM8) due", "2026-04-14",
                "Trade Marks Rules 2008, rule 18(3): two months from the notification of the opposition"),
            Meeting("Evidence strategy with Dr Li Wei", "2026-03-03T15:00:00Z", "Video call"),
            Task("File the TM7", "h.sato", "2026-02-13", true),
            Task("Collate evidence of use of NORTHWINDOW", "h.sato", "2026-04-30", false),
            Time("h.sato", "2026-01-14", 60, true, "Clearance search and advice"),
            Time("h.sato", "2026-02-12", 120, true, "Drafting the TM7"),
        ],
    },
    Script {
        opening: Opening {
            number: "2026-0004", title: "Okonjo v. Calder Logistics plc", area: "employment",
            responsible: "j.lindqvist", originating: Some("a.okafor"), opened_on: "2026-01-19", intake: true,
            description: "Unfair dismissal and whistleblowing detriment claim following the claimant's \
                          safety report.",
        },
        steps: &[
            Party("okonjo", Client), Party("calder", OpposingParty),
            Check(&["okonjo", "calder"], Cleared,
                "Calder Logistics is also the opposing party in 2026-0002: same side, no conflict."),
            Status(Open, "2026-01-20", "Conflict check cleared"),
            Party("tribunal", Court), Party("raman", OpposingCounsel), Party("al_sayed", Witness),
            Set("referral_source", Field::Text("website")),
            Set("court_case_number", Field::Text("2201734/2026")),
            Document(Doc { kind: "pleading", title: "ET1 claim form", filename: "et1-claim.pdf", pdf: true,
                versions: &["Draft grounds of complaint.", "As presented to the tribunal on 2026-02-03."] }),
            Note("Merits",
                "The protected disclosure is well documented (email of 4 November). Causation is the \
                 battleground: the dismissal came five weeks later.", true),
            Task("Present the ET1", "j.lindqvist", "2026-02-03", true),
            Task("Schedule of loss", "j.lindqvist", "2026-03-20", false),
            Deadline("ET3 response due from the respondent", "2026-03-03",
                "Employment Tribunal Procedure Rules 2024, rule 16(1): 28 days from the date the claim \
                 was sent to the respondent"),
            Hearing("Preliminary hearing (case management)", "2026-04-28T08:30:00Z", 1, "Victory House, by video"),
            Cancel("Preliminary hearing (case management)", "Postponed by the tribunal for lack of a judge"),
            Hearing("Preliminary hearing (case management)", "2026-05-12T08:30:00Z", 1, "Victory House, by video"),
            Time("j.lindqvist", "2026-01-19", 75, true, "First meeting with Mr Okonjo"),
            Time("j.lindqvist", "2026-02-02", 150, true, "Drafting the grounds of complaint"),
            Status(Pending, "2026-02-04", "Awaiting the respondent's ET3 and the tribunal's listing"),
        ],
    },
    Script {
        opening: Opening {
            number: "2026-0005", title: "Series A financing: Lumen Robotics", area: "corporate",
            responsible: "p.nair", originating: Some("p.nair"), opened_on: "2026-01-26", intake: false,
            description: "GBP 6m Series A led by Northgate Ventures.",
        },
        steps: &[
            Party("lumen", Client), Party("northgate", OpposingParty), Party("marsh", OpposingCounsel),
            Check(&["lumen", "northgate", "marsh"], Cleared,
                "Marsh & Pennington act against us in 2026-0002; they are counsel, not a party."),
            Team("m.castellanos", TeamCapacity::Attorney),
            Description("GBP 7.5m Series A led by Northgate Ventures (the round was enlarged on 2026-02-09)."),
            Set("estimated_value", Field::Number(7_500_000)),
            Set("referral_source", Field::Text("referral")),
            Document(Doc { kind: "term_sheet", title: "Term sheet", filename: "term-sheet.pdf", pdf: true,
                versions: &["Investor's first draft: 1x participating preference.",
                    "Our mark-up: 1x non-participating.", "Agreed: 1x non-participating, 10% option pool."] }),
            By("m.castellanos"),
            Document(Doc { kind: "agreement", title: "Shareholders' agreement", filename: "shareholders-agreement.txt",
                pdf: false, versions: &["First draft, circulated to Marsh & Pennington."] }),
            By("p.nair"),
            Note("Founder vesting", "Investor wants four-year reverse vesting; founders will accept three.", true),
            Task("Investor rights letter", "m.castellanos", "2026-02-20", false),
            CancelTask("Investor rights letter"),
            Task("Disclosure letter", "m.castellanos", "2026-03-06", false),
            Task("Board minutes approving the allotment", "p.nair", "2026-03-13", false),
            Meeting("Completion call", "2026-03-16T11:00:00Z", "Video call"),
            Time("p.nair", "2026-01-27", 120, true, "Term sheet negotiation"),
            Time("m.castellanos", "2026-02-11", 240, true, "Drafting the shareholders' agreement"),
        ],
    },
    Script {
        opening: Opening {
            number: "2026-0006", title: "Lease renewal, Quayside Unit 4", area: "real_estate",
            responsible: "m.castellanos", originating: Some("a.okafor"), opened_on: "2026-02-02", intake: false,
            description: "Renewal of the warehouse lease under the Landlord and Tenant Act 1954.",
        },
        steps: &[
            Party("harbor", Client), Party("quayside", OpposingParty),
            Party("castell", Witness), RemoveParty("castell"),
            Check(&["harbor", "quayside"], Cleared, "Harbor Freight is our client in 2026-0002 too."),
            Set("referral_source", Field::Text("existing_client")),
            Team("t.ebert", TeamCapacity::Staff),
            Note("Heads of terms",
                "Landlord proposes a ten-year term with a break at five and an upward-only rent review. \
                 The client wants a five-year term.", false),
            Task("Serve the section 26 request", "m.castellanos", "2026-03-02", false),
            Meeting("Negotiation with the landlord's agents", "2026-03-11T14:00:00Z", "Quayside Chambers"),
            Time("m.castellanos", "2026-02-03", 60, true, "Review of the existing lease"),
        ],
    },
    Script {
        opening: Opening {
            number: "2026-0007", title: "Acquisition of Pell & Rowe Ltd", area: "corporate",
            responsible: "p.nair", originating: None, opened_on: "2026-02-09", intake: false,
            description: "Share purchase of a Birmingham machine-vision supplier.",
        },
        steps: &[
            Party("lumen", Client), Party("pell", OpposingParty),
            Check(&["lumen", "pell"], Cleared, "Lumen Robotics is our client in 2026-0005."),
            Document(Doc { kind: "due_diligence", title: "Legal due diligence report", filename: "dd-report.pdf",
                pdf: true, versions: &["Red-flag report: two change-of-control clauses in customer contracts."] }),
            Note("Price", "Client's ceiling is GBP 11m including the earn-out.", true),
            Task("NSI Act notification", "p.nair", "2026-02-27", true),
            Time("p.nair", "2026-02-10", 180, true, "Due diligence"),
            Status(Pending, "2026-02-27", "Awaiting clearance under the National Security and Investment Act"),
        ],
    },
    Script {
        opening: Opening {
            number: "2026-0008", title: "Northwind Outdoor: UK licensing enquiry", area: "intellectual_property",
            responsible: "h.sato", originating: None, opened_on: "2026-02-16", intake: true,
            description: "Prospective client asks for advice on licensing its brand to a UK distributor.",
        },
        steps: &[
            Party("northwind", Client),
            Check(&["northwind"], PotentialConflict,
                "Northwind Outdoor is the opposing party in our opposition for Solent Photonics (2026-0003). \
                 Referred to the general counsel before the matter is accepted."),
            Note("Intake", "The enquiry came through the website form. Holding reply sent; no advice given.", false),
        ],
    },
];

// ---- writing -------------------------------------------------------------------------------

fn context(user: &str) -> Result<CommandContext, ServiceError> {
    let actor = Actor::parse(&format!("user:{user}"))
        .map_err(|_| DomainError::invalid("actor", "not a valid user id"))?;
    Ok(CommandContext::new(actor))
}

fn missing(kind: &'static str) -> ServiceError {
    ServiceError::Domain(DomainError::EntityNotFound { kind })
}

fn calendar_entry(step: &Step) -> Option<ScheduleCalendarEntry> {
    let entry = |kind, title: &str, starts_at: &str, all_day| ScheduleCalendarEntry {
        kind,
        title: title.to_owned(),
        starts_at: starts_at.to_owned(),
        ends_at: None,
        all_day,
        rule: None,
        location: None,
    };
    Some(match *step {
        Hearing(title, starts_at, hours, location) => ScheduleCalendarEntry {
            ends_at: chrono::DateTime::parse_from_rfc3339(starts_at)
                .ok()
                .map(|start| (start + chrono::Duration::hours(hours)).to_rfc3339()),
            location: Some(location.to_owned()),
            ..entry(CalendarKind::Hearing, title, starts_at, false)
        },
        Deadline(title, day, rule) => ScheduleCalendarEntry {
            rule: Some(rule.to_owned()),
            ..entry(CalendarKind::FilingDeadline, title, day, true)
        },
        Meeting(title, starts_at, location) => ScheduleCalendarEntry {
            location: Some(location.to_owned()),
            ..entry(CalendarKind::Meeting, title, starts_at, false)
        },
        _ => return None,
    })
}

/// A party added by the demo, for the conflict searches of later matters.
struct PartyRecord {
    matter: &'static str,
    party_id: String,
    contact: &'static str,
    role: PartyRole,
}

struct Demo<'a> {
    service: &'a Service,
    contacts: BTreeMap<&'static str, String>,
    parties: Vec<PartyRecord>,
}

impl<'a> Demo<'a> {
    fn new(service: &'a Service) -> Self {
        Demo {
            service,
            contacts: BTreeMap::new(),
            parties: Vec::new(),
        }
    }

    async fn write(&mut self) -> Result<(), ServiceError> {
        self.define_fields().await?;
        for row in CONTACTS {
            let command = CreateContact {
                kind: row.1,
                details: contact_details(row),
            };
            let (id, _) = self
                .service
                .create_contact(&context("s.whitfield")?, &command)
                .await?;
            self.contacts.insert(row.0, id);
        }
        for script in MATTERS {
            self.open(&script.opening).await?;
            let mut by = script.opening.responsible;
            for step in script.steps {
                if let By(user) = step {
                    by = user;
                } else {
                    self.step(by, script.opening.number, step).await?;
                }
            }
        }
        // Mr Okonjo moves house while his claim is pending.
        self.move_house("okonjo", "3 Weaste Lane", "Salford", "M5 2JJ")
            .await
    }

    async fn define_fields(&self) -> Result<(), ServiceError> {
        let field = |key: &str, label: &str, kind, choices: &[&str], sensitive| DefineCustomField {
            key: key.to_owned(),
            label: label.to_owned(),
            kind,
            choices: choices.iter().map(|choice| (*choice).to_owned()).collect(),
            sensitive,
        };
        let referral = [
            "existing_client",
            "referral",
            "website",
            "directory_listing",
        ];
        let fields = [
            field(
                "referral_source",
                "Referral source",
                FieldKind::Choice,
                &referral,
                false,
            ),
            field(
                "court_case_number",
                "Court case number",
                FieldKind::Text,
                &[],
                false,
            ),
            field(
                "estimated_value",
                "Estimated value (GBP)",
                FieldKind::Number,
                &[],
                true,
            ),
        ];
        for field in &fields {
            self.service
                .define_custom_field(&context("a.okafor")?, field)
                .await?;
        }
        Ok(())
    }

    async fn open(&self, opening: &Opening) -> Result<(), ServiceError> {
        let command = OpenMatter {
            matter_number: opening.number.to_owned(),
            title: opening.title.to_owned(),
            description: Some(opening.description.to_owned()),
            practice_area: opening.area.to_owned(),
            responsible_attorney: opening.responsible.to_owned(),
            originating_attorney: opening.originating.map(str::to_owned),
            opened_on: Some(opening.opened_on.to_owned()),
            statute_of_limitations_on: None,
            intake: opening.intake,
        };
        self.service
            .open_matter(&context(opening.responsible)?, &command)
            .await
            .map(|_| ())
    }

    async fn on(&self, by: &str, number: &str, command: MatterCommand) -> Result<(), ServiceError> {
        self.service
            .change_matter(&context(by)?, number, &command)
            .await
            .map(|_| ())
    }

    async fn step(
        &mut self,
        by: &str,
        number: &'static str,
        step: &Step,
    ) -> Result<(), ServiceError> {
        let details = |change: ChangeMatterDetails| MatterCommand::ChangeDetails(change);
        let command = match *step {
            By(_) => return Ok(()),
            Party(key, role) => return self.party(by, number, key, role).await,
            RemoveParty(key) => {
                let index = self
                    .parties
                    .iter()
                    .position(|party| party.matter == number && party.contact == key)
                    .ok_or(missing("party"))?;
                let party = self.parties.remove(index);
                MatterCommand::RemoveParty {
                    party_id: party.party_id,
                }
            }
            Check(keys, outcome, notes) => self.conflict_check(by, number, keys, outcome, notes),
            Status(to, on, reason) => MatterCommand::ChangeStatus(ChangeMatterStatus {
                to,
                effective_on: Some(on.to_owned()),
                reason: Some(reason.to_owned()),
                force: false,
            }),
            Team(user, capacity) => MatterCommand::AddTeamMember(AddTeamMember {
                user_id: user.to_owned(),
                capacity,
            }),
            Title(title) => details(ChangeMatterDetails {
                title: Some(title.to_owned()),
                ..ChangeMatterDetails::default()
            }),
            Description(text) => details(ChangeMatterDetails {
                description: Some(text.to_owned()),
                ..ChangeMatterDetails::default()
            }),
            Limitation(day) => details(ChangeMatterDetails {
                statute_of_limitations_on: Some(day.to_owned()),
                ..ChangeMatterDetails::default()
            }),
            Set(key, ref value) => MatterCommand::SetCustomField(SetCustomField {
                key: key.to_owned(),
                value: Some(match value {
                    Field::Text(text) => json!(text),
                    Field::Number(number) => json!(number),
                }),
            }),
            Document(ref doc) => return self.document(by, number, doc).await,
            Note(subject, body, privileged) => MatterCommand::AddNote(AddNote {
                privileged,
                subject: Some(subject.to_owned()),
                body: body.to_owned(),
            }),
            EditNote(subject, body) => {
                let matter = self.matter(number).await?;
                let note_id = matter
                    .notes
                    .values()
                    .find(|note| note.subject.as_deref() == Some(subject))
                    .map(|note| note.note_id.clone())
                    .ok_or(missing("note"))?;
                MatterCommand::EditNote {
                    note_id,
                    subject: Some(subject.to_owned()),
                    body: body.to_owned(),
                }
            }
            Task(title, assignee, due_on, done) => {
                let create = CreateTask {
                    title: title.to_owned(),
                    assignee: Some(assignee.to_owned()),
                    due_on: Some(due_on.to_owned()),
                };
                self.on(by, number, MatterCommand::CreateTask(create))
                    .await?;
                if !done {
                    return Ok(());
                }
                return self
                    .set_task(assignee, number, title, TaskStatus::Completed)
                    .await;
            }
            CancelTask(title) => {
                return self
                    .set_task(by, number, title, TaskStatus::Cancelled)
                    .await;
            }
            Hearing(..) | Deadline(..) | Meeting(..) => {
                let entry = calendar_entry(step).ok_or(missing("calendar entry"))?;
                MatterCommand::ScheduleCalendarEntry(entry)
            }
            Cancel(title, reason) => {
                let matter = self.matter(number).await?;
                let entry_id = matter
                    .calendar
                    .values()
                    .find(|entry| entry.title == title && !entry.cancelled)
                    .map(|entry| entry.entry_id.clone())
                    .ok_or(missing("calendar entry"))?;
                MatterCommand::CancelCalendarEntry {
                    entry_id,
                    reason: Some(reason.to_owned()),
                }
            }
            Time(user, worked_on, minutes, billable, description) => {
                let time = RecordTime {
                    user_id: user.to_owned(),
                    worked_on: worked_on.to_owned(),
                    minutes,
                    billable,
                    description: description.to_owned(),
                };
                return self.on(user, number, MatterCommand::RecordTime(time)).await;
            }
        };
        self.on(by, number, command).await
    }

    async fn matter(&self, number: &str) -> Result<crate::domain::matter::Matter, ServiceError> {
        self.service
            .matter(number)
            .await?
            .ok_or(ServiceError::Domain(DomainError::MatterNotFound))
    }

    fn contact_id(&self, key: &'static str) -> Result<String, ServiceError> {
        self.contacts
            .get(key)
            .cloned()
            .ok_or(ServiceError::Domain(DomainError::ContactNotFound))
    }

    async fn party(
        &mut self,
        by: &str,
        number: &'static str,
        key: &'static str,
        role: PartyRole,
    ) -> Result<(), ServiceError> {
        let contact_id = self.contact_id(key)?;
        let add = AddParty {
            contact_id: contact_id.clone(),
            role,
        };
        self.on(by, number, MatterCommand::AddParty(add)).await?;
        let party_id = self
            .matter(number)
            .await?
            .parties
            .values()
            .find(|party| party.contact_id == contact_id && party.role == role)
            .map(|party| party.party_id.clone())
            .ok_or(missing("party"))?;
        self.parties.push(PartyRecord {
            matter: number,
            party_id,
            contact: key,
            role,
        });
        Ok(())
    }

    /// What the conflict search finds for these contacts among the parties of other matters.
    fn conflict_check(
        &self,
        by: &str,
        number: &str,
        keys: &[&'static str],
        outcome: ConflictOutcome,
        notes: &str,
    ) -> MatterCommand {
        let hits = self
            .parties
            .iter()
            .filter(|party| party.matter != number && keys.contains(&party.contact))
            .map(|party| ConflictHit {
                matter_number: party.matter.to_owned(),
                party_id: party.party_id.clone(),
                role: party.role,
            })
            .collect();
        let names: Vec<&str> = keys
            .iter()
            .filter_map(|key| CONTACTS.iter().find(|row| row.0 == *key).map(|row| row.2))
            .collect();
        MatterCommand::RecordConflictCheck(RecordConflictCheck {
            query: names.join("; "),
            outcome,
            reviewer: by.to_owned(),
            hits,
            notes: Some(notes.to_owned()),
        })
    }

    async fn document(&self, by: &str, number: &str, doc: &Doc) -> Result<(), ServiceError> {
        let media_type = if doc.pdf {
            "application/pdf"
        } else {
            "text/plain"
        };
        let mut document_id = None;
        for (index, text) in doc.versions.iter().enumerate() {
            let version = index + 1;
            let bytes = document_bytes(number, doc, version, text);
            let filename = match (version, doc.filename.rsplit_once('.')) {
                (1, _) => doc.filename.to_owned(),
                (n, Some((stem, extension))) => format!("{stem}-v{n}.{extension}"),
                (n, None) => format!("{}-v{n}", doc.filename),
            };
            let content = self
                .service
                .store_content(number, &bytes, media_type, Some(filename), by)
                .await?;
            let Some(document_id) = &document_id else {
                let add = AddDocument {
                    document_type: doc.kind.to_owned(),
                    title: doc.title.to_owned(),
                    description: None,
                    content,
                };
                self.on(by, number, MatterCommand::AddDocument(add)).await?;
                document_id = self
                    .matter(number)
                    .await?
                    .documents
                    .values()
                    .find(|document| document.title.as_deref() == Some(doc.title))
                    .map(|document| document.document_id.clone());
                continue;
            };
            let command = MatterCommand::AddDocumentVersion {
                document_id: document_id.clone(),
                content,
            };
            self.on(by, number, command).await?;
        }
        Ok(())
    }

    async fn set_task(
        &self,
        by: &str,
        number: &str,
        title: &str,
        to: TaskStatus,
    ) -> Result<(), ServiceError> {
        let task_id = self
            .matter(number)
            .await?
            .tasks
            .values()
            .find(|task| task.title == title)
            .map(|task| task.task_id.clone())
            .ok_or(missing("task"))?;
        self.on(by, number, MatterCommand::SetTaskStatus { task_id, to })
            .await
    }

    /// A contact's details change: here, a new home address.
    async fn move_house(
        &self,
        key: &'static str,
        line: &str,
        locality: &str,
        postal_code: &str,
    ) -> Result<(), ServiceError> {
        let row = CONTACTS
            .iter()
            .find(|row| row.0 == key)
            .ok_or(ServiceError::Domain(DomainError::ContactNotFound))?;
        let mut details = contact_details(row);
        details.addresses = vec![PostalAddress {
            lines: vec![line.to_owned()],
            locality: Some(locality.to_owned()),
            region: None,
            postal_code: Some(postal_code.to_owned()),
            country: Some("GB".into()),
            label: Some("home".into()),
        }];
        let id = self.contact_id(key)?;
        self.service
            .update_contact(&context("s.whitfield")?, &id, &details)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_pdf_has_a_correct_cross_reference_table() {
        let bytes = pdf(&["Title (draft)".to_owned(), "Line two".to_owned()]);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("%PDF-1.4\n") && text.ends_with("%%EOF\n"));
        let start: usize = text
            .rsplit_once("startxref\n")
            .and_then(|(_, rest)| rest.lines().next())
            .and_then(|line| line.parse().ok())
            .unwrap();
        assert!(text[start..].starts_with("xref\n"));
        let offsets: Vec<usize> = text[start..]
            .lines()
            .skip(3)
            .take(5)
            .map(|line| line[..10].parse().unwrap())
            .collect();
        for (index, offset) in offsets.iter().enumerate() {
            assert!(text[*offset..].starts_with(&format!("{} 0 obj", index + 1)));
        }
        assert!(text.contains("(Title \\(draft\\)) '"));
    }

    #[test]
    fn every_contact_is_valid_and_unique() {
        let mut keys = std::collections::BTreeSet::new();
        for row in CONTACTS {
            assert!(keys.insert(row.0), "{}", row.0);
            let command = CreateContact {
                kind: row.1,
                details: contact_details(row),
            };
            crate::domain::contact::create(&command).unwrap();
        }
        assert!(CONTACTS.len() >= 30);
    }

    #[test]
    fn the_matters_cover_every_practice_area_and_status() {
        let areas: std::collections::BTreeSet<&str> =
            MATTERS.iter().map(|script| script.opening.area).collect();
        assert_eq!(areas.len(), 6);
        assert_eq!(MATTERS.len(), 12);
        for script in MATTERS {
            for step in script.steps {
                let keys: Vec<&str> = match step {
                    Party(key, _) | RemoveParty(key) => vec![key],
                    Check(keys, ..) => keys.to_vec(),
                    _ => continue,
                };
                for key in keys {
                    assert!(CONTACTS.iter().any(|row| row.0 == key), "{key}");
                }
            }
        }
    }
}
