//! `docket replay`: a matter's forensic timeline, replayed from the log.
//!
//! After each event of the matter's stream (up to `--until`, inclusive) it shows the event's
//! position, recorded time, actor and type and the members of the matter's state the event
//! changed, before and after: as an aligned table, or with `--json` as one JSON document
//! (`matter`, `until`, `stream_version`, `steps`, `final_state`; see docs/replay.md). It is
//! the replay behind GraphQL's `matterAsOf`, so `final_state` is what time travel answers at
//! the same point.
//!
//! The log is opened as `docket verify` opens it: never created, only read. The output holds
//! the matter's client data (note bodies, descriptions): it is for an operator who can read
//! the database anyway. Exit 0 with the timeline, 1 when the log has no such matter, 2 for a
//! bad argument or a log that cannot be read.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use serde_json::{Value, json};

use super::fail;
use crate::config::Settings;
use crate::domain::DomainError;
use crate::domain::ids::MatterNumber;
use crate::log::time::format_timestamp;
use crate::service::replay::{self, Replay, ReplayStep, Until};
use crate::store::open_existing_store;

/// Longest value the table shows before cutting it short (the JSON has it whole).
const VALUE_WIDTH: usize = 40;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The matter's number, e.g. 2026-0042.
    #[arg(long, value_name = "NUMBER")]
    matter: String,
    /// Stop after this point, inclusive: a log position (a whole number) or an RFC 3339 time,
    /// compared with the events' recorded times [default: the stream's end].
    #[arg(long, value_name = "POSITION|TIME", allow_hyphen_values = true)]
    until: Option<String>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: ReplayArgs) -> ExitCode {
    // The arguments are checked before the log is opened.
    let number = match MatterNumber::parse(&args.matter) {
        Ok(number) => number,
        Err(DomainError::Invalid { message, .. }) => return fail(format!("--matter: {message}")),
        Err(error) => return fail(error),
    };
    let until = match args.until.as_deref().map(Until::parse).transpose() {
        Ok(until) => until,
        Err(_) => {
            return fail(
                "--until must be a log position (a whole number) or an RFC 3339 time, \
                 e.g. 2026-01-12T09:30:00Z",
            );
        }
    };

    let store = match open_existing_store(&settings.log_options()).await {
        Ok(store) => store,
        Err(error) => return fail(error),
    };
    let vault = match crate::vault::Vault::open_configured(store.clone(), &settings.data_dir).await
    {
        Ok(vault) => vault,
        Err(error) => return fail(error),
    };
    let replay = match replay::replay(&store, &vault, &number.stream(), until).await {
        Ok(replay) => replay,
        Err(error) => return fail(error),
    };
    if replay.stream_version == 0 {
        eprintln!("docket: the log has no matter {number}");
        return ExitCode::from(1);
    }

    let output = if args.json {
        let mut document = json_document(&number, until, &replay).to_string();
        document.push('\n');
        document
    } else {
        table(&number, until, &replay)
    };
    match std::io::stdout().lock().write_all(output.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => fail(error),
        _ => ExitCode::SUCCESS,
    }
}

fn json_document(number: &MatterNumber, until: Option<Until>, replay: &Replay) -> Value {
    let until = until.map(|until| match until {
        Until::Position(position) => json!({ "position": position }),
        Until::Time(at) => json!({ "time": format_timestamp(at) }),
    });
    json!({
        "matter": number.as_str(),
        "until": until,
        "stream_version": replay.stream_version,
        "steps": replay.steps,
        "final_state": replay.matter,
    })
}

/// The timeline as aligned columns, one line per change (a step without changes shows `-`).
fn table(number: &MatterNumber, until: Option<Until>, replay: &Replay) -> String {
    const HEADINGS: [&str; 4] = ["POSITION", "RECORDED", "ACTOR", "TYPE"];
    let rows: Vec<([String; 4], Vec<String>)> = replay.steps.iter().map(row).collect();
    let mut widths = HEADINGS.map(str::len);
    for (cells, _) in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4], change: &str| {
        let mut text = String::new();
        for (cell, width) in cells.iter().zip(widths) {
            text.push_str(&format!("{cell:<width$}  "));
        }
        text.push_str(change);
        text.trim_end().to_owned() + "\n"
    };

    let mut out = line(HEADINGS, "CHANGES");
    for (cells, changes) in &rows {
        let mut changes = changes.iter();
        let first = changes.next().map_or("-", String::as_str);
        out.push_str(&line(cells.each_ref().map(String::as_str), first));
        for change in changes {
            out.push_str(&line(["", "", "", ""], change));
        }
    }
    let cut = until.map_or_else(String::new, |until| format!(", until {until}"));
    out.push_str(&format!(
        "matter {number}: {} of {} events{cut}\n",
        replay.steps.len(),
        replay.stream_version
    ));
    out
}

fn row(step: &ReplayStep) -> ([String; 4], Vec<String>) {
    let cells = [
        step.position.to_string(),
        step.recorded_at.clone(),
        step.actor.clone(),
        step.event_type.clone(),
    ];
    let changes = step
        .changes
        .iter()
        .map(|change| {
            let (before, after) = shown_pair(&change.before, &change.after);
            format!("{}: {before} -> {after}", change.field())
        })
        .collect();
    (cells, changes)
}

/// Both sides of a change for the table. Two long texts that begin alike are shown from a
/// little before where they part, so that cutting them short does not hide the difference.
fn shown_pair(before: &Value, after: &Value) -> (String, String) {
    if let (Some(old), Some(new)) = (plain(before), plain(after)) {
        let common = old
            .chars()
            .zip(new.chars())
            .take_while(|(a, b)| a == b)
            .count();
        if common > VALUE_WIDTH / 2 {
            let from = |text: &str| {
                let rest: String = text.chars().skip(common - CONTEXT).collect();
                cut_short(format!("…{rest}"))
            };
            return (from(old), from(new));
        }
    }
    (shown(before), shown(after))
}

/// Characters kept before the point where two texts part.
const CONTEXT: usize = 12;

/// A value for the table: plain text as it is, anything else (or text with control
/// characters, which could upset a terminal) as JSON; cut to [`VALUE_WIDTH`] characters.
fn shown(value: &Value) -> String {
    cut_short(plain(value).map_or_else(|| value.to_string(), str::to_owned))
}

/// Text that the table can show without quotes.
fn plain(value: &Value) -> Option<&str> {
    match value {
        Value::String(text)
            if !text.is_empty() && text.trim() == text && !text.chars().any(char::is_control) =>
        {
            Some(text)
        }
        _ => None,
    }
}

fn cut_short(text: String) -> String {
    if text.chars().count() <= VALUE_WIDTH {
        return text;
    }
    let mut cut: String = text.chars().take(VALUE_WIDTH - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_text_plainly_and_cuts_long_values() {
        assert_eq!(shown(&json!("closed")), "closed");
        assert_eq!(shown(&json!(null)), "null");
        assert_eq!(shown(&json!("line\nbreak")), "\"line\\nbreak\"");
        assert_eq!(shown(&json!("\u{1b}[31mred")), "\"\\u001b[31mred\"");
        let long = shown(&json!("x".repeat(100)));
        assert_eq!(long.chars().count(), VALUE_WIDTH);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn long_texts_that_begin_alike_are_shown_from_where_they_part() {
        let before = json!("Naomi can give evidence on the redelivery schedule.");
        let after =
            json!("Naomi can give evidence on the redelivery schedule; she is away in April.");
        let (old, new) = shown_pair(&before, &after);
        assert_eq!(old, "…ery schedule.");
        assert!(new.starts_with("…ery schedule; she is away"), "{new}");
        assert_eq!(new, "…ery schedule; she is away in April.");
        assert_eq!(shown_pair(&json!("open"), &json!("closed")).0, "open");
    }
}
