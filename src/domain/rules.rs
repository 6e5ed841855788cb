//! Field rules shared by the commands: bounded text, dates, instants.

use super::error::DomainError;

/// Trimmed, non-empty text of at most `max` characters.
pub fn required_text(field: &'static str, text: &str, max: usize) -> Result<String, DomainError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    bounded(field, trimmed, max)
}

/// Like [`required_text`], but `None` and blank text become `None`.
pub fn optional_text(
    field: &'static str,
    text: Option<&str>,
    max: usize,
) -> Result<Option<String>, DomainError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(trimmed) => bounded(field, trimmed, max).map(Some),
    }
}

fn bounded(field: &'static str, text: &str, max: usize) -> Result<String, DomainError> {
    if text.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

/// A calendar date, `YYYY-MM-DD`.
pub fn date(field: &'static str, text: &str) -> Result<String, DomainError> {
    let invalid = || DomainError::invalid(field, "must be a date, YYYY-MM-DD (years 1000-9999)");
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| invalid())?;
    let formatted = date.format("%Y-%m-%d").to_string();
    if formatted != text || !(1000..=9999).contains(&chrono::Datelike::year(&date)) {
        return Err(invalid());
    }
    Ok(formatted)
}

pub fn optional_date(
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<String>, DomainError> {
    text.map(|text| date(field, text)).transpose()
}

/// An RFC 3339 instant, normalised to UTC.
pub fn instant(field: &'static str, text: &str) -> Result<String, DomainError> {
    let invalid = || DomainError::invalid(field, "must be an RFC 3339 time (years 1000-9999)");
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|_| invalid())?
        .with_timezone(&chrono::Utc);
    if !(1000..=9999).contains(&chrono::Datelike::year(&at)) {
        return Err(invalid());
    }
    Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Today's date in UTC.
pub fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(required_text("t", "  a  ", 3).unwrap(), "a");
        assert!(required_text("t", "   ", 3).is_err());
        assert!(required_text("t", "abcd", 3).is_err());
        assert!(required_text("t", "a\u{7}", 3).is_err());
        assert_eq!(optional_text("t", Some(" "), 3).unwrap(), None);
    }

    #[test]
    fn dates_and_instants_are_checked() {
        assert_eq!(date("d", "2026-02-28").unwrap(), "2026-02-28");
        assert!(date("d", "2026-02-30").is_err());
        assert!(date("d", "-0001-01-01").is_err());
        assert!(date("d", "+2026-1-5").is_err());
        assert!(instant("i", "0999-12-31T23:00:00Z").is_err());
        assert_eq!(
            instant("i", "2026-03-01T10:00:00+01:00").unwrap(),
            "2026-03-01T09:00:00Z"
        );
        assert!(instant("i", "yesterday").is_err());
    }
}
