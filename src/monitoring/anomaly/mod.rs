//! Anomaly detection: rules over what the access chain and the log record, raising alerts
//! when someone reads many matters quickly, reads client data off hours, fails to log in
//! repeatedly, tries walled matters, breaks the glass, exports in bulk, or when an API
//! client's calls are refused in a burst.
//!
//! - [`signals`] turns access records and `auth.login_failed` events into observations.
//! - [`rules`] holds the rules, their thresholds and the [`rules::Detector`], a deterministic
//!   fold over observations.
//! - [`hours`] parses the firm's working hours.
//! - [`watcher`] is the task in `serve` that feeds the detector and appends each alert to the
//!   log's `alerts` stream ([`crate::monitoring::alert_log`]).

pub mod hours;
pub mod rules;
pub mod signals;
pub mod watcher;

use serde::Deserialize;
use thiserror::Error;

pub use hours::WorkingHours;
pub use rules::{Rule, Threshold, Thresholds};

/// The longest window a rule may have: a day.
pub const MAX_WINDOW_SECS: u64 = 24 * 60 * 60;

/// What `serve` watches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalySettings {
    /// On unless turned off.
    pub enabled: bool,
    pub thresholds: Thresholds,
}

impl Default for AnomalySettings {
    fn default() -> Self {
        AnomalySettings {
            enabled: true,
            thresholds: Thresholds::default(),
        }
    }
}

/// The `[anomaly]` table of the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    pub enabled: Option<bool>,
    /// `Mon-Fri 08:00-19:00 +01:00`; without it the off-hours rule is off.
    pub working_hours: Option<String>,
    pub many_matters: Option<ThresholdConfig>,
    pub off_hours: Option<ThresholdConfig>,
    pub failed_logins: Option<ThresholdConfig>,
    pub walled_attempts: Option<ThresholdConfig>,
    pub break_glass: Option<ThresholdConfig>,
    pub bulk_exports: Option<ThresholdConfig>,
    pub api_client_errors: Option<ThresholdConfig>,
}

/// One rule's threshold in the file: `{ count = 25, window_secs = 600 }`; count 0 turns the
/// rule off.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    pub count: u32,
    pub window_secs: u64,
}

/// Why an anomaly setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AnomalyConfigError {
    #[error("{0}")]
    WorkingHours(#[from] hours::WorkingHoursError),
    #[error("anomaly.{rule}.window_secs must be between 1 and {MAX_WINDOW_SECS}")]
    Window { rule: &'static str },
}

impl AnomalyConfig {
    /// The settings this table describes, on the defaults.
    pub fn settings(&self) -> Result<AnomalySettings, AnomalyConfigError> {
        let mut settings = AnomalySettings::default();
        if let Some(enabled) = self.enabled {
            settings.enabled = enabled;
        }
        if let Some(text) = &self.working_hours {
            settings.thresholds.working_hours = Some(WorkingHours::parse(text)?);
        }
        for (rule, configured) in [
            (Rule::ManyMatters, self.many_matters),
            (Rule::OffHours, self.off_hours),
            (Rule::FailedLogins, self.failed_logins),
            (Rule::WalledAttempts, self.walled_attempts),
            (Rule::BreakGlass, self.break_glass),
            (Rule::BulkExports, self.bulk_exports),
            (Rule::ApiClientErrors, self.api_client_errors),
        ] {
            let Some(configured) = configured else {
                continue;
            };
            if !(1..=MAX_WINDOW_SECS).contains(&configured.window_secs) {
                return Err(AnomalyConfigError::Window {
                    rule: rule.as_str(),
                });
            }
            settings.thresholds.set(
                rule,
                Threshold::new(configured.count, configured.window_secs),
            );
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_table_sets_thresholds_on_the_defaults() {
        let config: AnomalyConfig = toml::from_str(
            r#"
            working_hours = "Mon-Fri 08:00-19:00 +01:00"
            failed_logins = { count = 3, window_secs = 120 }
            break_glass = { count = 0, window_secs = 60 }
            "#,
        )
        .unwrap();
        let settings = config.settings().unwrap();
        assert!(settings.enabled);
        let thresholds = &settings.thresholds;
        assert_eq!(thresholds.of(Rule::FailedLogins), Threshold::new(3, 120));
        assert!(!thresholds.is_on(Rule::BreakGlass));
        assert!(thresholds.is_on(Rule::OffHours));
        assert_eq!(
            thresholds.of(Rule::ManyMatters),
            Thresholds::default().of(Rule::ManyMatters)
        );
    }

    #[test]
    fn bad_tables_are_refused() {
        let wide: AnomalyConfig =
            toml::from_str("many_matters = { count = 3, window_secs = 0 }").unwrap();
        assert_eq!(
            wide.settings(),
            Err(AnomalyConfigError::Window {
                rule: "many_matters"
            })
        );
        let hours: AnomalyConfig = toml::from_str(r#"working_hours = "always""#).unwrap();
        assert!(hours.settings().is_err());
        assert!(toml::from_str::<AnomalyConfig>("many_matter = { count = 1 }").is_err());
    }
}
